"""How rule entities and spaCy's entities become one list: rules never lower spaCy's precision on what
spaCy finds.

Policy (applied per text; the result is sorted by offset and never overlaps). A rule entity R that
overlaps no spaCy entity is added. One that overlaps spaCy entities replaces them only if every one of
them *yields* to R; otherwise all of them stay unchanged and R is dropped. A spaCy entity S yields to R if

1. R is a code (validated, or an invoice/order/reference number) and S lies entirely inside R (a
   fragment: "EUR" tagged ORG inside "EUR 4,250.00"), or
2. R is validated (``VALIDATED_LABELS``: a library checked it and it carries a normalized value: IBAN,
   BIC, MONEY, DATE, EMAIL, PHONE) and S has a numeric or temporal label (``WEAK_SPACY_LABELS``: spaCy
   finds those by shape; "approximately $2.3 billion" MONEY gives way to "$2.3 billion"), or
3. R is a code and S is a misreading of that code:
   every digit of S is inside R and S adds at most one word outside R ("Invoice INV-2024-0117" tagged
   ORG, "558213" tagged DATE, "BIC BNPAFRPPXXX" tagged ORG), or
4. R is a lexicon term and S has a catch-all label (``CATCH_ALL_SPACY_LABELS``: MISC, PRODUCT, or a
   numeric one): the lexicon's SYMPTOM or MEDICATION is the more specific reading of "some other name".

So a spaCy PERSON, ORG, GPE, LOC, ... is removed only when it is a fragment or a misreading of a code,
every spaCy entity that is kept is unchanged, and a lexicon term never removes a person, organisation or
place ("Parkinson" the person stays a PERSON).
"""

from __future__ import annotations

import bisect
import re

from workers.documents.entities.entity import EntityDict, RULE_LABELS

VALIDATED_LABELS = frozenset({"IBAN", "BIC", "MONEY", "DATE", "EMAIL", "PHONE"})
CODE_LABELS = RULE_LABELS
WEAK_SPACY_LABELS = frozenset({"CARDINAL", "ORDINAL", "QUANTITY", "MONEY", "DATE", "TIME", "PERCENT"})
CATCH_ALL_SPACY_LABELS = WEAK_SPACY_LABELS | {"MISC", "PRODUCT"}


def _misreads_code(spacy_entity: EntityDict, rule_entity: EntityDict) -> bool:
    """Every digit of the spaCy span is inside the code, and the span adds at most one word to it."""
    offset = spacy_entity["start"]
    text = spacy_entity["text"]
    inside_from = max(rule_entity["start"], offset) - offset
    inside_to = min(rule_entity["end"], spacy_entity["end"]) - offset
    outside = text[:inside_from] + " " + text[inside_to:]
    return not re.search(r"\d", outside) and len(outside.split()) <= 1


def _yields(spacy_entity: EntityDict, rule_entity: EntityDict) -> bool:
    label = rule_entity["label"]
    if label not in CODE_LABELS:  # a lexicon term
        return spacy_entity["label"] in CATCH_ALL_SPACY_LABELS
    if rule_entity["start"] <= spacy_entity["start"] and spacy_entity["end"] <= rule_entity["end"]:
        return True
    if label in VALIDATED_LABELS and spacy_entity["label"] in WEAK_SPACY_LABELS:
        return True
    return _misreads_code(spacy_entity, rule_entity)


def merge(spacy_entities: list[EntityDict], rule_entities: list[EntityDict]) -> list[EntityDict]:
    """One non-overlapping list by the policy above. Neither input may overlap itself (spaCy's entities
    never do; the rule layer resolves its own overlaps)."""
    spacy_sorted = sorted(spacy_entities, key=lambda e: e["start"])
    ends = [e["end"] for e in spacy_sorted]  # sorted too, as the entities do not overlap
    removed: set[int] = set()
    added: list[EntityDict] = []
    for rule_entity in sorted(rule_entities, key=lambda e: e["start"]):
        first = bisect.bisect_right(ends, rule_entity["start"])
        overlapping = []
        for index in range(first, len(spacy_sorted)):
            if spacy_sorted[index]["start"] >= rule_entity["end"]:
                break
            if index not in removed:
                overlapping.append(index)
        if all(_yields(spacy_sorted[index], rule_entity) for index in overlapping):
            removed.update(overlapping)
            added.append(rule_entity)
    kept = [entity for index, entity in enumerate(spacy_sorted) if index not in removed]
    return sorted(kept + added, key=lambda e: e["start"])
