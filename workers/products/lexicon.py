"""The grounding check's word lists (``data/claims.json``, ``fluff.json``, ``features.json``), compiled.

A ``Concept`` is something a description may say only when the facts support it ("waterproof", "fast
charging", "aloe vera"): regular expressions per language, searched in a text of one language together with
the English ones (small models slip into English), and what in the facts supports it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
CLAIMS_PATH = DATA / "claims.json"
FLUFF_PATH = DATA / "fluff.json"
FEATURES_PATH = DATA / "features.json"
NAMES_PATH = DATA / "names.json"

# Claim classes and the reason code each one reports.
CLAIM_CODES = {
    "health": "claim_health",
    "environment": "claim_environment",
    "guarantee": "claim_guarantee",
    "superlative": "claim_superlative",
    "feature": "unsupported_claim",
}


def whole_words(patterns: list[str], prefixes: bool = False) -> re.Pattern[str]:
    """One case-insensitive pattern matching any of ``patterns`` as whole words (``prefixes``: as the start of
    words, for claim stems such as "recycelt" in "recyceltem")."""
    alternatives = "|".join(f"(?:{pattern})" for pattern in patterns)
    end = "" if prefixes else r"(?!\w)"
    return re.compile(rf"(?<!\w)(?:{alternatives}){end}", re.IGNORECASE)


@dataclass(frozen=True)
class Concept:
    name: str
    kind: str  # a claim class, "feature", "ingredient" or "part"
    patterns: dict[str, re.Pattern[str]]
    support: re.Pattern[str] | None = None

    def search(self, text: str, language: str) -> re.Match[str] | None:
        for lang in dict.fromkeys((language, "en")):
            pattern = self.patterns.get(lang)
            match = pattern.search(text) if pattern else None
            if match:
                return match
        return None

    def supported(self, facts_text: str) -> bool:
        if self.support and self.support.search(facts_text):
            return True
        return any(pattern.search(facts_text) for pattern in self.patterns.values())


def _concept(name: str, kind: str, entry: dict[str, Any], prefixes: bool = False) -> Concept:
    patterns = {lang: whole_words(regexes, prefixes) for lang, regexes in entry.items()
                if lang not in ("class", "supported_by")}
    support = entry.get("supported_by")
    return Concept(name=name, kind=kind, patterns=patterns,
                   support=re.compile("|".join(support), re.IGNORECASE) if support else None)


def load_claims(path: Path = CLAIMS_PATH) -> list[Concept]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [_concept(name, entry["class"], entry, prefixes=True) for name, entry in raw.items() if not name.startswith("_")]


@dataclass(frozen=True)
class Fluff:
    """Superlatives and fluff, one shop's list; taste words only where the category is food."""

    superlatives: Concept
    fluff: Concept
    taste: Concept
    taste_allowed_for: frozenset[str]

    @classmethod
    def from_file(cls, path: Path = FLUFF_PATH) -> Fluff:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(superlatives=_concept("superlative", "superlative", raw.get("superlatives", {})),
                   fluff=_concept("fluff", "superlative", raw.get("fluff", {})),
                   taste=_concept("taste", "superlative", raw.get("taste", {})),
                   taste_allowed_for=frozenset(c.lower() for c in raw.get("taste_allowed_for", ())))

    def search(self, text: str, language: str, category: str | None) -> list[tuple[str, str]]:
        found = []
        for concept in (self.superlatives, self.fluff, self.taste):
            if concept is self.taste and (category or "").lower() in self.taste_allowed_for:
                continue
            match = concept.search(text, language)
            if match:
                found.append((concept.name, match.group(0)))
        return found


@dataclass(frozen=True)
class FeatureLexicon:
    features: list[Concept]  # features, functions and components
    ingredients: list[Concept]
    parts: list[Concept]  # parts a material can be bound to ("mesh armrests")
    negations: dict[str, re.Pattern[str]]  # per language: a feature said to be absent ("câble non fourni")
    material_senses: dict[str, frozenset[str]]  # per language: material words that also mean something else
    material_prepositions: dict[str, frozenset[str]]  # per language: "de piel", "in pelle", "aus Leder"

    @classmethod
    def from_file(cls, path: Path = FEATURES_PATH) -> FeatureLexicon:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            features=[_concept(name, "feature", entry) for name, entry in raw["features"].items()],
            ingredients=[_concept(name, "ingredient", entry) for name, entry in raw["ingredients"].items()],
            parts=[_concept(name, "part", entry) for name, entry in raw["parts"].items()],
            negations={lang: re.compile(rf"(?<!\S)(?:{'|'.join(words)})(?!\S)", re.IGNORECASE)
                       for lang, words in raw.get("negations", {}).items()},
            material_senses={lang: frozenset(word.lower() for word in words)
                             for lang, words in raw.get("material_senses", {}).items() if lang != "_comment"},
            material_prepositions={lang: frozenset(words)
                                   for lang, words in raw.get("material_prepositions", {}).items()},
        )

    def negated(self, text: str, match: re.Match[str], language: str) -> bool:
        """The feature is said to be absent: a negation inside the match or among the two words before it."""
        before = " ".join(text[max(0, match.start() - 40):match.start()].split()[-2:])
        for lang in dict.fromkeys((language, "en")):
            pattern = self.negations.get(lang)
            if pattern and (pattern.search(match.group(0)) or pattern.search(before)):
                return True
        return False


@dataclass(frozen=True)
class NameLexicon:
    terms: frozenset[str]  # capitalised words that are not names, lower-cased
    slot: dict[str, re.Pattern[str]]  # "by", "von", "de"… right after the product's name
    attribution: dict[str, re.Pattern[str]]  # "designed by", "entworfen von"…
    countries: tuple[tuple[str, str], ...] = ()  # country names CLDR spells otherwise ("Turkey"), to their code

    @classmethod
    def from_file(cls, path: Path = NAMES_PATH) -> NameLexicon:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            terms=frozenset(term.lower() for term in raw["terms"]),
            slot={lang: re.compile(rf"^[\s,]*(?:{'|'.join(words)})(?:\s+|(?<=['’]))", re.IGNORECASE)
                  for lang, words in raw["slot"].items()},
            attribution={lang: whole_words(patterns) for lang, patterns in raw["attribution"].items()},
            countries=tuple(sorted((name, code) for name, code in raw.get("country_aliases", {}).items()
                                   if not name.startswith("_"))),
        )
