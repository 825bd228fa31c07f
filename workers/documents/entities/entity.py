"""The entity shape every extractor in this package returns, and the one label set across languages.

An entity is a plain JSON-able dict::

    {"text": str, "label": str, "start": int, "end": int, "source": str, "normalized": str}

``text == document_text[start:end]`` always. ``source`` is ``"spacy"`` (a statistical NER model; which
one is reported per text), ``"rules"`` (a pattern validated by a library) or ``"lexicon"`` (a term of the
configured domain lexicon). ``normalized`` is present only where a canonical value exists (not for
names, nor for INVOICE_NUMBER, ORDER_NUMBER and REFERENCE_NUMBER, whose text is their value):

=================  ==========================================================================
label              normalized
=================  ==========================================================================
MONEY              ``"<decimal> <ISO 4217>"``, e.g. ``"1234.56 EUR"`` (point as decimal separator)
DATE               ISO 8601: ``"2024-03-12"``, or ``"2024-03"`` when the text names no day
IBAN               compact form, e.g. ``"DE89370400440532013000"``
BIC                compact upper case, e.g. ``"COBADEFFXXX"``
PHONE              E.164, e.g. ``"+493012345678"``
EMAIL              the address with its domain in lower case
SYMPTOM,           the lexicon's concept id (the same in every language), e.g. ``"chest_pain"``
MEDICATION
=================  ==========================================================================
"""

from __future__ import annotations

from typing import NotRequired, TypedDict


class EntityDict(TypedDict):
    text: str
    label: str
    start: int
    end: int
    source: str
    normalized: NotRequired[str]


# Labels the rule layer emits. MONEY and DATE are spaCy's own English labels, so a rule amount and a
# spaCy amount mean the same thing.
RULE_LABELS = frozenset(
    {"IBAN", "BIC", "MONEY", "DATE", "EMAIL", "PHONE", "INVOICE_NUMBER", "ORDER_NUMBER", "REFERENCE_NUMBER"}
)

# The unified label set is spaCy's English (OntoNotes) set, plus the rule and lexicon labels, plus MISC
# for models that only say "some other name" (WikiNER's MISC covers events, works, products and
# nationalities at once, so it cannot be mapped onto one OntoNotes label without guessing).
ONTONOTES_LABELS = frozenset(
    {"PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE",
     "DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL", "CARDINAL"}
)

# WikiNER scheme (spaCy's fr/es/it/pt `*_core_news_*` models) to the unified labels. WikiNER's LOC is
# mostly cities, countries and regions (places with a government), which OntoNotes calls GPE; in
# back-office letters (addresses, branches, places of residence) it is nearly always one of those.
WIKINER_TO_UNIFIED = {"PER": "PERSON", "ORG": "ORG", "LOC": "GPE", "MISC": "MISC"}


def unified_label(label: str) -> str:
    """The unified label for a model's label (OntoNotes labels are already unified)."""
    return WIKINER_TO_UNIFIED.get(label, label)


def make_entity(text: str, start: int, end: int, label: str, source: str,
                normalized: str | None = None) -> EntityDict:
    """An entity over ``text[start:end]``; offsets index the whole document text."""
    entity: EntityDict = {"text": text[start:end], "label": label, "start": start, "end": end, "source": source}
    if normalized is not None:
        entity["normalized"] = normalized
    return entity
