"""The generator and the products pipeline on the real small model (SmolLM2-135M, llama.cpp):
batched decoding, reproducibility, grammar-constrained numbers, fallbacks and rejections."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="llama-cpp-python is installed by scripts/install-models.sh")

from schemas import Product  # noqa: E402
from workers.models.integrity import ModelIntegrityError, write_manifest  # noqa: E402
from workers.pipelines.base import Rejected  # noqa: E402
from workers.shared.generator import GenerationRequest  # noqa: E402
from workers.shared.generator.grammar import numbers_only_grammar  # noqa: E402
from workers.shared.generator.llama_cpp import LlamaCppGenerator, make_llama_cpp_generator  # noqa: E402
from workers.shared.generator.model_file import resolve_model_file  # noqa: E402
from workers.products.grounding import REASON_CODES  # noqa: E402
from workers.products.pipeline import ProductPipeline, build_pipeline, escalated_settings  # noqa: E402
from workers.shared.quantities import find_numbers  # noqa: E402
from workers.shared.vocabulary import default_vocabulary  # noqa: E402
from workers.settings import Settings  # noqa: E402

SAMPLES = Path(__file__).parents[1] / "workers" / "products" / "data" / "sample_products.jsonl"
PRODUCTS = {p.id: p for p in (Product.model_validate_json(line) for line in SAMPLES.read_text().splitlines())}
# Short budgets keep the suite fast; one thread is safe on a shared CI machine.
FAST_GENERATOR = {"threads": 1, "sequences_in_flight": 8, "context_tokens": 4096}
FAST = {"generator": FAST_GENERATOR, "products": {"max_new_tokens": {"en": 48}}}


@pytest.fixture(scope="module")
def pipeline(generator: LlamaCppGenerator) -> ProductPipeline:
    return ProductPipeline(Settings(**FAST), generator=generator)


def _request(key: str, seed: int, text: str = "Describe a blue teapot in two sentences.") -> GenerationRequest:
    return GenerationRequest(key=key, messages=(("user", text),), max_tokens=32, seed=seed)


def test_the_default_model_is_verified_and_described(generator: LlamaCppGenerator) -> None:
    assert generator.name == "SmolLM2-135M-Instruct.Q4_1+q8_0"  # converted at load from the verified file
    assert generator.sha256 == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def test_the_same_seed_gives_the_same_text_and_other_seeds_differ(generator: LlamaCppGenerator) -> None:
    first = generator.generate([_request("a", seed=7)])
    again = generator.generate([_request("a", seed=7)])
    others = generator.generate([_request("b", seed=8), _request("c", seed=9)])
    assert first[0].text == again[0].text and first[0].tokens > 0
    assert {g.text for g in others} != {first[0].text}


def test_a_product_alone_gets_the_same_descriptions_each_time(pipeline: ProductPipeline) -> None:
    product = PRODUCTS["ki-kettle"]
    first, second = pipeline([product]), pipeline([product])
    assert first == second
    assert first[0]["descriptions"]["en"]["attempts"][0]["seed"] is not None


def test_sequences_are_decoded_together_and_share_their_prompt_prefix(generator: LlamaCppGenerator) -> None:
    before_prompt, before_decoded = generator.stats.prompt_tokens, generator.stats.prompt_tokens_decoded
    before_calls = generator.stats.decode_calls
    generations = generator.generate([_request(str(i), seed=i, text=f"Describe a blue teapot, number {i}.")
                                      for i in range(6)])
    assert [g.key for g in generations] == [str(i) for i in range(6)]
    assert all(g.finish in ("stop", "length") and g.tokens > 0 for g in generations)
    decoded = generator.stats.prompt_tokens_decoded - before_decoded
    assert decoded < generator.stats.prompt_tokens - before_prompt  # the common prefix was computed once
    # One decode call per step for all six, not six calls per step.
    assert generator.stats.decode_calls - before_calls <= 1 + max(g.tokens for g in generations)


def test_the_grammar_lets_the_model_write_only_the_products_numbers(generator: LlamaCppGenerator) -> None:
    prompt = "A kettle holds 1.7 litres and has 2200 watts. List five numbers about kettles, with units."
    allowed = {"1.7", "2200"}
    [constrained] = generator.generate([GenerationRequest(
        key="g", messages=(("user", prompt),), max_tokens=64, seed=3, grammar=numbers_only_grammar(allowed))])
    numbers = [m.raw for m in find_numbers(constrained.text, "en", default_vocabulary())]
    assert numbers, constrained.text  # the prompt makes it write numbers…
    assert set(numbers) <= allowed, constrained.text  # …and only these can be written


def test_a_grammar_that_rejects_every_likely_token_does_not_abort_the_process(generator: LlamaCppGenerator) -> None:
    # None of the model's top-k tokens for this prompt fits the grammar: llama.cpp alone would pick one anyway and
    # abort the process with a C++ exception when accepting it (a benchmark worker died so).
    for greedy in (False, True):
        [generation] = generator.generate([GenerationRequest(
            key="z", messages=(("user", "Describe a blue teapot."),), max_tokens=6, seed=1, greedy=greedy,
            grammar='root ::= "zq"+\n')])
        assert generation.text == "zqzqzq" and generation.finish == "length"


def test_every_product_gets_a_stored_description_or_a_rejection(pipeline: ProductPipeline,
                                                                 generator: LlamaCppGenerator) -> None:
    products = [PRODUCTS[i] for i in ("ap-merino-crew", "ki-skillet", "el-earbuds", "co-beard-oil")]
    outcomes = pipeline(products)
    assert len(outcomes) == 4
    assert isinstance(outcomes[3], Rejected) and outcomes[3].errors[0].field == "languages.3"
    for product, outcome in zip(products[:3], outcomes[:3], strict=True):
        assert isinstance(outcome, dict) and outcome["review_status"] == "draft"
        assert list(outcome["descriptions"]) == product.languages
        for language, description in outcome["descriptions"].items():
            assert description["text"].startswith(product.localized_names.get(language, product.name))
            if description["path"] == "model":
                assert language == "en" and description["model_sha256"] == generator.sha256
                assert pipeline.checker.check(description["text"], product, language).passed
            else:
                assert description["path"] == "template" and description["template_version"]
                [reason] = description["reasons"]
                assert reason["code"] in {"language_not_supported_by_model", "failed_check"}
            for attempt in description["attempts"]:
                assert {r["code"] for r in attempt["reasons"]} <= REASON_CODES
        # German and French: no model configured for them, so the template, and the result says so.
        for language in set(product.languages) - {"en"}:
            assert outcome["descriptions"][language]["reasons"][0]["code"] == "language_not_supported_by_model"


def test_a_generation_failure_falls_back_to_the_template_after_one_retry() -> None:
    # The prompt (with its worked example) does not fit a 256-token context: llama.cpp cannot generate.
    tiny = build_pipeline(Settings(**{**FAST, "generator": {**FAST_GENERATOR, "context_tokens": 256}}))
    [outcome] = tiny([PRODUCTS["ki-kettle"]])
    english = outcome["descriptions"]["en"]
    assert english["path"] == "template" and english["reasons"][0]["code"] == "generation_error"
    assert [a["verdict"] for a in english["attempts"]] == ["error", "error"]
    assert "Capacity: 1.7 L." in english["text"]


def test_the_batch_token_budget_sends_what_does_not_fit_to_the_template(generator: LlamaCppGenerator) -> None:
    budgeted = ProductPipeline(Settings(**{**FAST, "products": {**FAST["products"], "batch_token_budget": 60}}), generator=generator)
    outcomes = budgeted([PRODUCTS["ki-kettle"], PRODUCTS["el-speaker"]])
    speaker = outcomes[1]["descriptions"]["en"]
    assert speaker["path"] == "template" and speaker["reasons"][0]["code"] == "batch_token_budget"
    assert outcomes[0]["descriptions"]["en"]["attempts"]  # the first one was generated


def test_a_users_own_gguf_is_verified_against_its_manifest(tmp_path: Path) -> None:
    default = resolve_model_file(None, None, None, None)
    models, manifests = tmp_path / "models", tmp_path / "manifests"
    models.mkdir(), manifests.mkdir()
    own = models / "my-model.gguf"
    shutil.copyfile(default.path, own)
    write_manifest("my-model", "1", models, manifests)
    resolved = resolve_model_file(own, "my-model", "1", manifests)
    assert resolved.sha256 == default.sha256 and resolved.model_name == "my-model"
    with own.open("ab") as file:
        file.write(b"tampered")
    with pytest.raises(ModelIntegrityError, match="does not match its manifest"):
        resolve_model_file(own, "my-model", "1", manifests)


def test_the_file_as_shipped_runs_too_and_no_converted_file_is_left(generator: LlamaCppGenerator) -> None:
    shipped = make_llama_cpp_generator(threads=1, context_tokens=1024, max_sequences=2, runtime_type=None)
    try:
        assert shipped.name == "SmolLM2-135M-Instruct.Q4_1" and shipped.sha256 == generator.sha256
        first, again = shipped.generate([_request("a", seed=5)]), shipped.generate([_request("a", seed=5)])
        assert first[0].text == again[0].text and first[0].tokens > 0
        assert not list(Path(tempfile.gettempdir()).glob("slimline-gguf-*"))  # the converted file is gone
    finally:
        shipped.close()


def test_with_escalation_on_what_the_templates_wrote_is_sent_to_the_escalated_tier() -> None:
    templates_only = {"generator": {"languages": []}}
    product = PRODUCTS["ap-merino-crew"]  # en, de, fr
    [kept] = ProductPipeline(Settings(**templates_only))([product])
    assert kept["review_status"] == "draft" and "escalation" not in kept  # escalation is off by default
    escalating = ProductPipeline(Settings(**templates_only, products={"escalate": True,
                                                                      "escalated_languages": ["de", "fr", "it"]}))
    [sent] = escalating([product])
    assert sent["review_status"] == "needs_review" and sent["escalation"]["languages"] == ["de", "fr"]


def test_the_escalated_tier_has_its_own_model_languages_and_budgets() -> None:
    compact = Settings(generator={"model_path": "/models/own.gguf", "languages": ["en"]},
                       products={"escalate": True, "escalated_model": "qwen2.5-coder-0.5b",
                                 "escalated_languages": ["de", "it"], "escalated_max_new_tokens": {"de": 99}})
    escalated = escalated_settings(compact)
    assert (escalated.generator.model, escalated.generator.model_path) == ("qwen2.5-coder-0.5b", None)
    assert escalated.generator.languages == ["de", "it"] and escalated.generator.runtime_type is None
    assert escalated.products.max_new_tokens == {"de": 99} and not escalated.products.escalate

