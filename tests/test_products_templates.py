"""The template fallback: every bundled product in every supported language, with correct numbers,
agreement, producer-localized values, and an honest list of what stayed untranslated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas import Product
from workers.products.grounding import GroundingChecker
from workers.shared.quantities import find_numbers
from workers.products.templates import TemplateRenderer
from workers.shared.vocabulary import default_vocabulary

SAMPLES = Path(__file__).parents[1] / "workers" / "products" / "data" / "sample_products.jsonl"
LANGUAGES = ["en", "de", "fr", "es", "it"]
PRODUCTS = [Product.model_validate_json(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines()]


def _product(product_id: str) -> Product:
    return next(product for product in PRODUCTS if product.id == product_id)


@pytest.fixture(scope="module")
def renderer() -> TemplateRenderer:
    return TemplateRenderer()


@pytest.fixture(scope="module")
def checker() -> GroundingChecker:
    return GroundingChecker(detect_language=lambda texts: [(None, None)] * len(texts), use_ner=False)


def test_the_samples_are_a_few_dozen_products_across_five_categories() -> None:
    assert len(PRODUCTS) >= 30
    assert {p.category for p in PRODUCTS} == {"apparel", "kitchen", "electronics", "furniture", "cosmetics"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_sample_renders_with_no_placeholder_and_only_its_own_correctly_written_numbers(
        renderer: TemplateRenderer, checker: GroundingChecker, language: str) -> None:
    vocabulary = default_vocabulary()
    for product in PRODUCTS:
        rendered = renderer.render(product, language)
        assert rendered.text.startswith(product.name)
        assert not re.search(r"[{}]|\bNone\b|\.\.", rendered.text), (product.id, rendered.text)
        # Verbatim values keep the producer's own writing; everything Slimline wrote must be in the locale's.
        written = rendered.text
        for kept in [entry.text for entry in rendered.untranslated] + [product.name]:
            written = written.replace(kept, " ")
        facts = checker.facts(product)
        for mention in find_numbers(written, language, vocabulary):
            if mention.unit:  # a quantity: in the locale's own writing
                assert mention.value is not None, (product.id, language, mention.raw, rendered.text)
                assert (mention.value, mention.unit) in facts.quantities, (product.id, language, mention.raw)
            else:  # a bare number (a version, a count) stays as the producer wrote it
                assert {mention.value, mention.other_value} & facts.values, (product.id, language, mention.raw)


@pytest.mark.parametrize(("language", "expected"), [
    ("en", ["Capacity: 1.7 L.", "Power: 2,200 W."]),
    ("de", ["Fassungsvermögen: 1,7 l.", "Leistung: 2.200 W."]),
    ("fr", ["Capacité\u00a0: 1,7\u202fl.", "Puissance\u00a0: 2\u202f200\u202fW."]),
    ("es", ["Capacidad: 1,7 l.", "Potencia: 2.200 W."]),
    ("it", ["Capacità: 1,7 l.", "Potenza: 2.200 W."]),
])
def test_decimal_separators_grouping_and_units_follow_the_locale(renderer: TemplateRenderer, language: str,
                                                                 expected: list[str]) -> None:
    text = renderer.render(_product("ki-kettle"), language).text
    for fragment in expected:
        assert fragment in text


@pytest.mark.parametrize(("product_id", "language", "phrase"), [
    ("fu-bedside", "de", "Gefertigt aus weißer Kiefer."),          # feminine dative
    ("el-desk-lamp", "de", "Gefertigt aus silbernem Aluminium."),  # neuter dative
    ("ki-espresso-cups", "de", "Gefertigt aus beige Porzellan."),  # invariable colour
    ("ap-linen-shirt", "de", "Gefertigt aus cremefarbenem Leinen."),
    ("fu-bedside", "fr", "Fabrication en pin blanc."),
    ("fu-bedside", "es", "Fabricación en pino blanco."),
    ("fu-bedside", "it", "Realizzazione in pino bianco."),
    ("el-desk-lamp", "fr", "Fabrication en aluminium argenté."),
    ("ap-linen-shirt", "it", "Realizzazione in lino crema."),
    ("ki-french-press", "es", "Fabricación en vidrio de borosilicato y acero inoxidable."),
])
def test_colour_adjectives_agree_with_the_materials_gender(renderer: TemplateRenderer, product_id: str,
                                                            language: str, phrase: str) -> None:
    assert phrase in renderer.render(_product(product_id), language).text


def test_counted_units_take_the_plural_of_their_language(renderer: TemplateRenderer) -> None:
    socks = _product("ap-hiking-socks")
    assert [f"3 {word}" in renderer.render(socks, lang).text for lang, word in
            [("en", "pairs"), ("de", "Paar"), ("fr", "paires"), ("es", "pares"), ("it", "paia")]] == [True] * 5


def test_values_localized_by_the_producer_win_and_are_not_untranslated(renderer: TemplateRenderer) -> None:
    french = renderer.render(_product("ki-dutch-oven"), "fr")
    assert "Matière\u00a0: fonte émaillée." in french.text and "Coloris\u00a0: rouge cerise." in french.text
    assert french.untranslated == []
    spanish = renderer.render(_product("ki-dutch-oven"), "es")
    assert {entry.text for entry in spanish.untranslated} == {"enamelled cast iron", "cherry red"}


def test_unknown_values_are_kept_verbatim_and_listed_except_in_the_source_language(renderer: TemplateRenderer) -> None:
    knife = _product("ki-chef-knife")
    german = renderer.render(knife, "de")
    assert "Handle: pakkawood." in german.text
    assert {(e.attribute, e.text, e.part) for e in german.untranslated} >= {
        ("handle", "Handle", "label"), ("handle", "pakkawood", "value")}
    assert ("steel", "X50CrMoV15", "value") not in {(e.attribute, e.text, e.part) for e in german.untranslated}
    assert renderer.render(knife, "en").untranslated == []


def test_a_language_without_template_is_refused(renderer: TemplateRenderer) -> None:
    with pytest.raises(KeyError, match="pl"):
        renderer.render(_product("co-beard-oil"), "pl")
