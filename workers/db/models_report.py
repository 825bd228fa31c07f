"""The table behind ``slimline report``: one row per batch a worker stored, written in the batch's own
transaction (workers/runtime/batching.py), so a batch's outcomes and its statistics land together or not at all."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from workers.db.models import Base, JsonColumn, utcnow


class BatchStat(Base):
    """One batch: who ran it (kind, tier, model and version, worker), how many messages and what became of them,
    wall seconds per stage (validate, pipeline, persist, total) and CPU seconds of the pool process per stage
    (``time.process_time``). ``persist`` runs until this row is written, the last statement before the commit:
    the commit itself is not in it. ``languages`` counts the stored results per language, with the characters of
    their input, where the kind's results carry a ``language`` (documents); null otherwise."""

    __tablename__ = "batch_stats"
    __table_args__ = (Index("ix_batch_stats_started", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(40))
    tier: Mapped[str] = mapped_column(String(20))
    model: Mapped[str | None] = mapped_column(String(200))
    model_version: Mapped[str | None] = mapped_column(String(100))
    worker: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    size: Mapped[int] = mapped_column(Integer)  # messages in the batch
    results: Mapped[int] = mapped_column(Integer)  # stored as results
    rejected: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)  # dead-lettered or sent back for a retry
    input_chars: Mapped[int] = mapped_column(Integer)  # the valid items as JSON: what a prompt would carry
    validate_seconds: Mapped[float] = mapped_column(Float)
    pipeline_seconds: Mapped[float] = mapped_column(Float)
    persist_seconds: Mapped[float] = mapped_column(Float)
    total_seconds: Mapped[float] = mapped_column(Float)
    validate_cpu_seconds: Mapped[float] = mapped_column(Float)
    pipeline_cpu_seconds: Mapped[float] = mapped_column(Float)
    persist_cpu_seconds: Mapped[float] = mapped_column(Float)
    cpu_seconds: Mapped[float] = mapped_column(Float)
    languages: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn)  # {"en": {"items": 3, "input_chars": 2100}}
