"""The database tables (SQLAlchemy 2 typed ORM). Every outcome table has a natural key,
so a redelivered message can never add a second row."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JsonColumn = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class DocumentResult(Base):
    """One row per producer document id."""

    __tablename__ = "document_results"

    document_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    language: Mapped[str | None] = mapped_column(String(8))
    language_score: Mapped[float | None] = mapped_column(Float)
    language_model: Mapped[str | None] = mapped_column(String(100))  # None when the producer gave the language
    entities: Mapped[list[dict[str, Any]]] = mapped_column(JsonColumn)
    text_chars: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(100))
    batch_size: Mapped[int] = mapped_column(Integer)
    batch_seconds: Mapped[float] = mapped_column(Float)
    attempt: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[str] = mapped_column(String(64))
    producer: Mapped[str | None] = mapped_column(String(200))
    worker: Mapped[str] = mapped_column(String(200))
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Rejection(Base):
    """Input that can never succeed (malformed, too large, unknown kind): one row per message."""

    __tablename__ = "rejections"

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    item_id: Mapped[str | None] = mapped_column(String(200))
    producer: Mapped[str | None] = mapped_column(String(200))
    field: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JsonColumn)
    payload_excerpt: Mapped[str] = mapped_column(Text)
    rejected_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeadLetter(Base):
    """A valid item that kept failing in the pipeline; kept whole so it can be replayed."""

    __tablename__ = "dead_letters"

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    item_id: Mapped[str | None] = mapped_column(String(200))
    producer: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEvent(Base):
    """Who did what: enqueues, replays, reviews."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
