"""What the model is asked (no brand slot without a brand; the sentence plan is the template's own text in
the target language), and how a model split over several packages is joined and verified."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from schemas import Product
from workers.models.integrity import ModelIntegrityError
from workers.products.prompts import product_messages
from workers.products.templates import TemplateRenderer
from workers.shared.generator.catalogue import CatalogueModel
from workers.shared.generator.install import join, joined_path
from workers.shared.generator.model_file import resolve_model_file

RENDERER = TemplateRenderer()
UNBRANDED = Product(id="p1", name="Oslo Wool Throw", attributes={"material": "wool", "colour": "grey",
                                                                 "dimensions": "130 x 170 cm"}, languages=["de"])
BRANDED = UNBRANDED.model_copy(update={"attributes": {"brand": "Fjellro", **UNBRANDED.attributes}})


@pytest.mark.parametrize("style", ["plan", "facts"])
@pytest.mark.parametrize("language", ["en", "de", "fr", "es", "it"])
def test_without_a_brand_no_part_of_the_prompt_names_one(style: str, language: str) -> None:
    messages = product_messages(UNBRANDED, language, RENDERER, style)
    text = "\n".join(content for _, content in messages)
    assert "Terra Nova" not in text and "Brand" not in text  # neither the example nor the product has one
    branded = "\n".join(content for _, content in product_messages(BRANDED, language, RENDERER, style))
    assert "Terra Nova" in branded and "Fjellro" in branded


def test_the_plan_is_the_templates_text_in_the_target_language() -> None:
    [*_, (role, question)] = product_messages(UNBRANDED, "de", RENDERER, "plan")
    assert role == "user"
    assert RENDERER.render(UNBRANDED, "de").text in question
    assert "grauer Wolle" in question and "130 × 170 cm" in question  # translated, numbers per locale
    answer = product_messages(UNBRANDED, "de", RENDERER, "plan")[2]
    assert answer[0] == "assistant" and answer[1].startswith("Alba Stoneware Mug ist")  # the example, in German


def test_an_unknown_prompt_style_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown prompt style"):
        product_messages(UNBRANDED, "en", RENDERER, "poem")


def _split_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, parts: int = 3) -> tuple[
        CatalogueModel, Path]:
    """A model split over ``parts`` importable packages (as pip installs them), with its manifest."""
    site = tmp_path / "site"
    size = -(-len(content) // parts)
    for i in range(1, parts + 1):
        (site / f"fake_part{i}" / "data").mkdir(parents=True)
        (site / f"fake_part{i}" / "__init__.py").write_text("")
        (site / f"fake_part{i}" / "data" / f"part{i:02d}.bin").write_bytes(content[(i - 1) * size:i * size])
    monkeypatch.syspath_prepend(str(site))
    for i in range(1, parts + 1):
        sys.modules.pop(f"fake_part{i}", None)
    model = CatalogueModel(name="fake-model", file="Fake.gguf", version="1",
                           packages=tuple(f"fake-part{i}==1" for i in range(1, parts + 1)),
                           parts=tuple(f"fake_part{i}/data/part{i:02d}.bin" for i in range(1, parts + 1)))
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "fake-model-1.json").write_text(json.dumps({"Fake.gguf": hashlib.sha256(content).hexdigest()}))
    return model, manifests


def test_a_split_model_is_joined_once_into_the_cache_and_verified(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    content = bytes(range(256)) * 1000
    model, manifests = _split_model(tmp_path, monkeypatch, content)
    said: list[str] = []
    path = join(model, tmp_path / "cache", manifests, say=said.append)
    assert path == joined_path(model, tmp_path / "cache") and path.read_bytes() == content
    assert any("joining 3 parts" in line for line in said) and "verified" in said[-1]
    said.clear()
    assert join(model, tmp_path / "cache", manifests, say=said.append) == path
    assert not any("joining" in line for line in said)  # cached: checked, not joined again


def test_a_joined_file_that_does_not_match_its_manifest_is_not_kept(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    model, manifests = _split_model(tmp_path, monkeypatch, b"x" * 3000)
    (tmp_path / "site" / "fake_part2" / "data" / "part02.bin").write_bytes(b"y" * 1000)  # a corrupted part
    with pytest.raises(ModelIntegrityError, match="is not the manifest's"):
        join(model, tmp_path / "cache", manifests, say=lambda line: None)
    assert not joined_path(model, tmp_path / "cache").exists()
    assert not list((tmp_path / "cache").glob(".*partial"))


def test_a_split_model_that_was_never_joined_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="install-models.sh"):
        resolve_model_file(None, None, None, None, model="qwen2.5-coder-1.5b", cache_dir=tmp_path / "empty")
    with pytest.raises(ModelIntegrityError, match="unknown generator model"):
        resolve_model_file(None, None, None, None, model="gpt-9", cache_dir=tmp_path)
