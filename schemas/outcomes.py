"""What Slimline stores: results, and errors that explain a rejection."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Entity(BaseModel):
    """A named entity; ``start``/``end`` are character offsets into the submitted text."""

    text: str
    label: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)


class DocumentResult(BaseModel):
    document_id: str
    language: str | None
    language_score: float | None
    entities: list[Entity]


class ItemError(BaseModel):
    """Why an item was rejected: the offending field (dotted path) and a readable reason."""

    field: str
    reason: str
