"""The summarizer seam: any ``summarizer.*`` component takes texts (and their languages) and returns one
:class:`Summary` each. An abstractive summarizer fills ``text`` with generated prose and keeps, in
``sentences``, the source spans it is grounded on; an extractive one returns source spans only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import BaseModel


class SummarySentence(BaseModel):
    """A span of the source, verbatim: ``source[start:end] == text``."""

    text: str
    start: int
    end: int
    score: float  # how central the sentence is to the document (cosine to the document's centroid)


class Summary(BaseModel):
    method: Literal["extractive", "abstractive"]
    model: str
    sentences: list[SummarySentence]
    text: str  # extractive: the chosen sentences joined in document order


class Summarizer(Protocol):
    def __call__(self, texts: Sequence[str], languages: Sequence[str | None]) -> list[Summary]:
        """One summary per text, same order; ``languages`` are ISO 639-1 codes (None: unknown)."""
        ...

    def warm_up(self) -> dict[str, float]:
        ...
