"""Reads for the CLI, the operators' views and the tests."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import func, select

from schemas import Kind
from workers.db.models import AuditEvent, Base, DeadLetter, Rejection, Result
from workers.db.store.base import StoreBase, _as_dict
from workers.security import audit_chain


class QueryStore(StoreBase):
    def count(self, table: type[Base]) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(table)) or 0


    def counts(self) -> dict[str, int]:
        with self.sessions() as session:
            current = session.execute(select(Result.kind, func.count()).where(Result.is_current).group_by(Result.kind))
            counts = {f"{kind} results": count for kind, count in current.tuples()}
            producer_side = Rejection.source == "producer"
            counts["rejections (by workers)"] = session.scalar(
                select(func.count()).select_from(Rejection).where(~producer_side)) or 0
            counts["rejections (by producers)"] = session.scalar(
                select(func.count()).select_from(Rejection).where(producer_side)) or 0
            counts["dead letters"] = session.scalar(
                select(func.count()).select_from(DeadLetter).where(DeadLetter.replayed_at.is_(None))) or 0
            return counts


    def iter_rows(self, table: type[Base], limit: int | None = None) -> Iterator[dict[str, Any]]:
        with self.sessions() as session:
            query = select(table).limit(limit)
            for row in session.scalars(query):
                yield _as_dict(row)


    def current_results(self, kind: Kind, item_ids: Sequence[str] | None = None, review_status: str | None = None,
                        limit: int | None = None) -> list[dict[str, Any]]:
        """The current version of each item (all items, or these), oldest first."""
        query = select(Result).where(Result.kind == kind.value, Result.is_current)
        if item_ids is not None:
            query = query.where(Result.item_id.in_(list(item_ids)))
        if review_status is not None:
            query = query.where(Result.review_status == review_status)
        with self.sessions() as session:
            return [_as_dict(row) for row in session.scalars(query.order_by(Result.id).limit(limit))]


    def history(self, kind: Kind, item_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Every version, of one item or of all, in the order they were stored."""
        query = select(Result).where(Result.kind == kind.value)
        if item_id is not None:
            query = query.where(Result.item_id == item_id)
        with self.sessions() as session:
            return [_as_dict(row) for row in session.scalars(query.order_by(Result.item_id, Result.version).limit(limit))]


    def rejections(self, kind: str | None = None, message_ids: Sequence[str] | None = None,
                   limit: int | None = None) -> list[Rejection]:
        with self.sessions() as session:
            query = select(Rejection).order_by(Rejection.rejected_at.desc())
            if kind:
                query = query.where(Rejection.kind == kind)
            if message_ids:
                query = query.where(Rejection.message_id.in_(message_ids))
            return list(session.scalars(query.limit(limit)))


    def dead_letters(self, ids: Sequence[str] | None = None, include_replayed: bool = False) -> list[DeadLetter]:
        with self.sessions() as session:
            query = select(DeadLetter).order_by(DeadLetter.failed_at)
            if ids:
                query = query.where(DeadLetter.message_id.in_(ids))
            if not include_replayed:
                query = query.where(DeadLetter.replayed_at.is_(None))
            return list(session.scalars(query))


    def audit_rows(self) -> list[dict[str, Any]]:
        with self.sessions() as session:
            return [_as_dict(row) for row in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


    def verify_audit(self, key: bytes, head: audit_chain.ChainHead | None) -> audit_chain.ChainReport:
        """Check the chain of rows that carry an HMAC; rows without one after the first chained row are
        reported too (clearing a row's HMAC is an edit)."""
        rows = self.audit_rows()
        first = next((index for index, row in enumerate(rows) if row["hmac"]), len(rows))
        report = audit_chain.verify_chain([row for row in rows if row["hmac"]], key, head)
        report.problems += [f"row id {row['id']}: has no HMAC (cleared?)" for row in rows[first:] if not row["hmac"]]
        report.rows_checked = len(rows) - first
        return report

