"""Reads for ``slimline report`` (workers/report/): batch statistics, enqueue-to-stored latencies, and what
people decided (the human tier, analysts' flag reviews, product approvals) beside what the models said.

Every read is bounded by a period ``[since, until)``: batches by when they started, results by when they were
stored. Datetimes come back timezone-aware (UTC), whichever database stored them."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from schemas import Kind
from workers.db.models import Result
from workers.db.models_report import BatchStat
from workers.db.store.base import StoreBase, _as_dict

MACHINE_TIERS = ("compact", "escalated")
FLAG_LABELS = ("confirmed_fraud", "dismissed")  # what an analyst's review says of a transaction


def utc(value: datetime | None) -> datetime | None:
    """SQLite gives naive datetimes (stored as UTC); PostgreSQL gives aware ones."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


class ReportStore(StoreBase):
    def batch_stats(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Every batch that started in the period, oldest first."""
        query = select(BatchStat).where(BatchStat.started_at >= since, BatchStat.started_at < until) \
            .order_by(BatchStat.started_at)
        with self.sessions() as session:
            rows = [_as_dict(row) for row in session.scalars(query)]
        for row in rows:
            row["started_at"] = utc(row["started_at"])
        return rows


    def latencies(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Enqueue-to-stored seconds of every machine result stored in the period that knows its send time
        (producer clock at the send, worker clock at the write), with its group: kind, tier, model version,
        and the result's ``language`` where it has one."""
        query = select(Result.kind, Result.tier, Result.model, Result.model_version, Result.sent_at,
                       Result.processed_at, Result.result["language"].as_string().label("language")) \
            .where(Result.tier.in_(MACHINE_TIERS), Result.sent_at.is_not(None),
                   Result.processed_at >= since, Result.processed_at < until)
        with self.sessions() as session:
            rows = [row._asdict() for row in session.execute(query)]
        for row in rows:
            stored, sent = utc(row.pop("processed_at")), utc(row.pop("sent_at"))
            row["stored_at"] = stored
            row["seconds"] = max((stored - sent).total_seconds(), 0.0)
        return rows


    def reviewed_versions(self, kind: Kind, since: datetime, until: datetime) -> dict[str, list[dict[str, Any]]]:
        """Items of this kind that a person reviewed (a version of tier ``human``) whose machine result was
        stored in the period: every version of each, oldest first, by item id."""
        reviewed = select(Result.item_id).where(Result.kind == kind.value, Result.tier == "human")
        in_period = select(Result.item_id).where(
            Result.kind == kind.value, Result.tier.in_(MACHINE_TIERS), Result.processed_at >= since,
            Result.processed_at < until, Result.item_id.in_(reviewed))
        query = select(Result).where(Result.kind == kind.value, Result.item_id.in_(in_period)) \
            .order_by(Result.item_id, Result.version)
        items: dict[str, list[dict[str, Any]]] = {}
        with self.sessions() as session:
            for row in session.scalars(query):
                items.setdefault(row.item_id, []).append(_as_dict(row))
        return items


    def labelled_flags(self, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Transactions an analyst labelled (``slimline flags review``: confirmed_fraud or dismissed) whose
        decision was stored in the period: the label, and the decision's action and risk score."""
        query = select(Result.item_id, Result.review_status, Result.model_version,
                       Result.result["action"].as_string().label("action"),
                       Result.result["score"].as_float().label("score")) \
            .where(Result.kind == Kind.transactions.value, Result.is_current, Result.review_status.in_(FLAG_LABELS),
                   Result.processed_at >= since, Result.processed_at < until)
        with self.sessions() as session:
            return [row._asdict() for row in session.execute(query)]


    def machine_results(self, kind: Kind, since: datetime, until: datetime) -> list[dict[str, Any]]:
        """Every machine result of this kind stored in the period (``result`` in full), oldest first."""
        query = select(Result.item_id, Result.tier, Result.model_version, Result.result) \
            .where(Result.kind == kind.value, Result.tier.in_(MACHINE_TIERS), Result.processed_at >= since,
                   Result.processed_at < until).order_by(Result.id)
        with self.sessions() as session:
            return [row._asdict() for row in session.execute(query)]


    def current_reviewed(self, kind: Kind, review_status: str, item_ids: list[str]) -> list[dict[str, Any]]:
        """The current version of these items, where its review status is this one."""
        rows: list[dict[str, Any]] = []
        with self.sessions() as session:
            for start in range(0, len(item_ids), 500):  # bounded IN lists
                query = select(Result).where(Result.kind == kind.value, Result.is_current,
                                             Result.review_status == review_status,
                                             Result.item_id.in_(item_ids[start:start + 500]))
                rows += [_as_dict(row) for row in session.scalars(query)]
        return rows
