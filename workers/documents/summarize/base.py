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
    # extractive: how central the sentence is to the document (cosine to the document's centroid);
    # abstractive: the highest support it gives a generated sentence
    score: float


class GeneratedSentence(BaseModel):
    """A sentence an abstractive summarizer wrote, and the source sentence that supports it."""

    text: str
    source: int  # index into ``Summary.sentences``: the most similar source sentence
    support: float  # cosine between this sentence and that source sentence


class Summary(BaseModel):
    method: Literal["extractive", "abstractive"]
    model: str
    sentences: list[SummarySentence]
    text: str  # extractive: the chosen sentences joined in document order; abstractive: the generated prose
    generated: list[GeneratedSentence] = []  # abstractive only: each generated sentence and its support
    # Set when an abstractive summarizer fell back to the extractive summary: a stable code and what was found.
    fallback_reason: str | None = None
    fallback_detail: str | None = None


class Summarizer(Protocol):
    def __call__(self, texts: Sequence[str], languages: Sequence[str | None]) -> list[Summary]:
        """One summary per text, same order; ``languages`` are ISO 639-1 codes (None: unknown)."""
        ...

    def warm_up(self) -> dict[str, float]:
        ...
