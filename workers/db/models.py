"""The database tables (SQLAlchemy 2 typed ORM). Every outcome table has a natural key,
so a redelivered message can never add a second row."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JsonColumn = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Result(Base):
    """One version of one item's outcome, for every kind of work.

    An item (``kind``, ``item_id``) has one or more versions and exactly one current version:
    - a redelivery or a resend of the same content adds nothing (``dedup_key`` = tier + content hash);
    - a resend with different content adds a version, current if it was sent later than the current one;
    - a result of a higher tier (``escalated``, then ``human``) for the current content supersedes it;
    earlier versions are kept, never erased by a newer one (``slimline results --history``).
    """

    __tablename__ = "results"
    __table_args__ = (
        UniqueConstraint("kind", "item_id", "dedup_key", name="uq_results_item_dedup"),
        UniqueConstraint("kind", "item_id", "version", name="uq_results_item_version"),
        Index("ix_results_current", "kind", "is_current"),
        Index("ix_results_review", "kind", "review_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    item_id: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the item's canonical JSON
    tier: Mapped[str] = mapped_column(String(20))  # compact | escalated | human
    dedup_key: Mapped[str] = mapped_column(String(100))
    is_current: Mapped[bool] = mapped_column(Boolean)
    review_status: Mapped[str | None] = mapped_column(String(40))
    result: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    model: Mapped[str | None] = mapped_column(String(200))
    model_version: Mapped[str | None] = mapped_column(String(100))
    batch_size: Mapped[int | None] = mapped_column(Integer)
    batch_seconds: Mapped[float | None] = mapped_column(Float)
    attempt: Mapped[int | None] = mapped_column(Integer)
    message_id: Mapped[str | None] = mapped_column(String(64))
    producer: Mapped[str | None] = mapped_column(String(200))
    worker: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # set by the producer
    processed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)  # a reviewer's note


class Rejection(Base):
    """Input that can never succeed (malformed, too large, unknown kind): one row per message."""

    __tablename__ = "rejections"
    __table_args__ = (Index("ix_rejections_item", "kind", "item_id"),)

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    source: Mapped[str] = mapped_column(String(20), default="worker")  # worker | producer
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
    __table_args__ = (Index("ix_dead_letters_item", "kind", "item_id"),)

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    item_id: Mapped[str | None] = mapped_column(String(200))
    producer: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuditEvent(Base):
    """Who did what: enqueues, replays, reviews, authentication rejections, model loads, purges and
    erasures. ``hmac`` chains the row to the one before it (workers/security/audit_chain.py)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(JsonColumn)
    hmac: Mapped[str | None] = mapped_column(String(64))


class AuditChain(Base):
    """One row: appenders lock it so the chain stays in insertion order; ``rows`` counts chained rows."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)


class Tombstone(Base):
    """An erased item: the SHA-256 of its id (not the id), so a late copy of it is refused."""

    __tablename__ = "tombstones"

    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    item_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LegalHold(Base):
    """An item that must be kept (e.g. anti-money-laundering records): purge and erasure skip it."""

    __tablename__ = "legal_holds"

    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    item_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    held_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


from workers.db import models_report  # noqa: E402,F401 - batch_stats (slimline report), same Base
from workers.db import models_gateway  # noqa: E402,F401  (the gateway's API keys)
from workers.db import models_console  # noqa: E402,F401  (the review console's tables, same Base)
