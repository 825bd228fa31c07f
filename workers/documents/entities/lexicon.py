"""A domain lexicon read from a JSON Lines file: one concept per line, its label and its terms per
language, e.g.::

    {"id": "chest_pain", "label": "SYMPTOM", "terms": {"en": ["chest pain"], "de": ["Brustschmerzen"]}}
    {"id": "ibuprofen", "label": "MEDICATION", "terms": {"any": ["ibuprofen", "Nurofen"]}}

Terms are matched case-insensitively as whole words (inflected forms are listed as terms of their own:
matching stems would find "Husten" inside "Hustensaft"), longest first. Terms under ``"any"`` apply to
every language (drug names); a document in a language the lexicon does not cover is matched against all
terms. ``normalized`` is the concept id, the same in every language.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from workers.documents.entities.entity import EntityDict, make_entity
from workers.documents.entities.trie import trie_pattern

_ANY = "any"


def _key(term: str) -> str:
    return " ".join(term.lower().split())


@dataclass(frozen=True)
class _Concept:
    id: str
    label: str


class Lexicon:
    def __init__(self, path: Path) -> None:
        """Read and check the lexicon file; a malformed line raises ``ValueError`` naming it."""
        self.path = path
        self._concepts: dict[str, dict[str, _Concept]] = {}  # language -> term key -> concept
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                concept = _Concept(id=str(record["id"]), label=str(record["label"]).upper())
                terms: dict[str, list[str]] = record["terms"]
            except (json.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(f"{path}:{number}: not a lexicon entry ({error})") from None
            for language, words in terms.items():
                for word in words:
                    self._concepts.setdefault(language, {})[_key(word)] = concept
        self._patterns: dict[str | None, re.Pattern[str]] = {}

    def _pattern(self, language: str | None) -> re.Pattern[str]:
        covered = language if language in self._concepts else None
        if covered not in self._patterns:
            groups = [covered, _ANY] if covered else list(self._concepts)
            terms = {term for group in groups for term in self._concepts.get(group, {})}
            alternation = trie_pattern(terms, lambda char: r"\s+" if char == " " else re.escape(char))
            self._patterns[covered] = re.compile(rf"(?<!\w){alternation}(?!\w)", re.IGNORECASE)
        return self._patterns[covered]

    def _concept(self, term: str, language: str | None) -> _Concept:
        key = _key(term)
        for group in ([language, _ANY] if language in self._concepts else self._concepts):
            if key in self._concepts.get(group, {}):
                return self._concepts[group][key]
        raise KeyError(term)

    def find(self, text: str, language: str | None) -> Iterator[EntityDict]:
        if not self._concepts:
            return
        for match in self._pattern(language).finditer(text):
            concept = self._concept(match.group(), language)
            yield make_entity(text, match.start(), match.end(), concept.label, "lexicon", concept.id)
