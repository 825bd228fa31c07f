"""The entity gold set and how extractors are scored on it.

``workers/documents/data/entities_gold.jsonl`` has one short back-office text per line (en, de, fr, es,
it) with hand-written annotations as surface strings: ``{"text": "1.234,56 €", "label": "MONEY",
"normalized": "1234.56 EUR"}``. Offsets are not written by hand: the loader finds each string in the text
(the n-th annotation of the same string is its n-th occurrence) and refuses a file where one is missing.

Annotation guide: MONEY is an amount with its currency (and scale word); a bare number is not. DATE is a
calendar date with a year (or a month with a year); "yesterday", "12 March" or "week 23" are not.
Reference numbers are the code without its keyword, labelled by what the keyword says (invoice, order,
anything else). SYMPTOM and MEDICATION are the words a triage nurse would highlight, negated or not.
An IBAN with a wrong checksum is not annotated. ``split`` is ``dev`` for the first ten texts of each
language (rules may be tuned on them) and ``test`` for the rest (never looked at while tuning).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from workers.documents.entities.entity import EntityDict

GOLD_PATH = Path(__file__).parents[1] / "data" / "entities_gold.jsonl"


@dataclass(frozen=True)
class GoldText:
    id: str
    language: str
    split: str
    text: str
    entities: list[EntityDict]


def _locate(text: str, annotations: list[dict[str, str]], item_id: str) -> list[EntityDict]:
    cursor: dict[str, int] = {}
    located: list[EntityDict] = []
    for annotation in annotations:
        surface = annotation["text"]
        start = text.find(surface, cursor.get(surface, 0))
        if start < 0:
            raise ValueError(f"gold {item_id}: {surface!r} not found in its text")
        cursor[surface] = start + len(surface)
        entity: EntityDict = {"text": surface, "label": annotation["label"], "start": start,
                              "end": start + len(surface), "source": "gold"}
        if "normalized" in annotation:
            entity["normalized"] = annotation["normalized"]
        located.append(entity)
    return located


def load_gold(path: Path = GOLD_PATH) -> list[GoldText]:
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            items.append(GoldText(record["id"], record["language"], record["split"], record["text"],
                                  _locate(record["text"], record["entities"], record["id"])))
    return items


@dataclass
class Score:
    """Exact-match counts (same start, end and label); normalization judged on true positives."""

    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    normalized_right: int = 0
    normalized_judged: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


@dataclass
class Errors:
    missed: list[tuple[str, EntityDict]] = field(default_factory=list)
    spurious: list[tuple[str, EntityDict]] = field(default_factory=list)
    misnormalized: list[tuple[str, EntityDict, str]] = field(default_factory=list)


def score(gold: Iterable[GoldText], predicted: Iterable[list[EntityDict]], labels: frozenset[str],
          key: str = "label") -> tuple[dict[str, Score], Errors]:
    """Scores grouped by ``key`` (``"label"`` or ``"language"``, plus ``"all"``), counting only ``labels``."""
    scores: dict[str, Score] = {}
    errors = Errors()
    for item, entities in zip(gold, predicted, strict=True):
        expected = {(e["start"], e["end"], e["label"]): e for e in item.entities if e["label"] in labels}
        found = {(e["start"], e["end"], e["label"]): e for e in entities if e["label"] in labels}
        for span in expected.keys() | found.keys():
            label = span[2]
            group = label if key == "label" else item.language
            for name in (group, "all"):
                counts = scores.setdefault(name, Score())
                if span in expected and span in found:
                    counts.true_positives += 1
                    if "normalized" in expected[span]:
                        counts.normalized_judged += 1
                        counts.normalized_right += found[span].get("normalized") == expected[span]["normalized"]
                elif span in found:
                    counts.false_positives += 1
                else:
                    counts.false_negatives += 1
            if span in expected and span in found and "normalized" in expected[span] \
                    and found[span].get("normalized") != expected[span]["normalized"]:
                errors.misnormalized.append((item.id, found[span], expected[span]["normalized"]))
            elif span in found and span not in expected:
                errors.spurious.append((item.id, found[span]))
            elif span in expected and span not in found:
                errors.missed.append((item.id, expected[span]))
    return scores, errors
