"""The translation vocabulary (``data/vocabulary.json``): attribute labels, materials with their
grammatical gender, colours with their inflections, common values, care instructions, and units."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

VOCABULARY_PATH = Path(__file__).parent / "data" / "vocabulary.json"


def normalize_key(text: str) -> str:
    """How attribute keys and values are looked up: case-insensitive, spaces and underscores alike."""
    return " ".join(text.replace("_", " ").strip().lower().split())


@dataclass(frozen=True)
class Unit:
    id: str
    cldr: str | None  # CLDR unit id for babel, when CLDR has one
    symbol: str | None  # written after the number when CLDR has no such unit
    count_words: dict[str, tuple[str, str]] | None  # counted nouns: language -> (singular, plural)
    aliases: tuple[str, ...]


@dataclass(frozen=True, eq=False)  # hashed by identity: one loaded vocabulary, cached helpers
class Vocabulary:
    source_language: str
    languages: dict[str, dict[str, str]]
    phrases: dict[str, dict[str, str]]
    attributes: dict[str, dict[str, Any]]
    materials: dict[str, dict[str, Any]]
    colours: dict[str, dict[str, Any]]
    values: dict[str, dict[str, Any]]
    units: dict[str, Unit]
    care: dict[str, dict[str, Any]] = field(default_factory=dict)  # care instructions ("hand wash cold")
    _index: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_file(cls, path: Path = VOCABULARY_PATH) -> Vocabulary:
        raw = json.loads(path.read_text(encoding="utf-8"))
        units = {
            unit_id: Unit(
                id=unit_id,
                cldr=entry.get("cldr"),
                symbol=entry.get("symbol"),
                count_words={lang: (words[0], words[1]) for lang, words in entry["count"].items()}
                if "count" in entry else None,
                aliases=tuple(entry["aliases"]),
            )
            for unit_id, entry in raw["units"].items()
        }
        vocabulary = cls(
            source_language=raw["source_language"], languages=raw["languages"], phrases=raw["phrases"],
            attributes=raw["attributes"], materials=raw["materials"], colours=raw["colours"],
            values=raw["values"], units=units, care=raw.get("care", {}),
        )
        for section in ("attributes", "materials", "colours", "values", "care"):
            entries: dict[str, dict[str, Any]] = getattr(vocabulary, section)
            vocabulary._index[section] = {
                normalize_key(alias): canonical
                for canonical, entry in entries.items()
                for alias in (canonical, *entry.get("aliases", ()))
            }
        return vocabulary

    def lookup(self, section: str, text: str) -> tuple[str, dict[str, Any]] | None:
        """The canonical name and entry of ``text`` in a section, or None if the vocabulary lacks it."""
        canonical = self._index[section].get(normalize_key(text))
        return None if canonical is None else (canonical, getattr(self, section)[canonical])

    def locale(self, language: str) -> str:
        return self.languages[language]["locale"]


@lru_cache(maxsize=1)
def default_vocabulary() -> Vocabulary:
    return Vocabulary.from_file()
