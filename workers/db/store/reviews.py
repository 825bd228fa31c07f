"""What people decide: reviews of an item's outcome (a new human version, or a status) and legal holds; audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from schemas import Kind
from workers.db.models import LegalHold, Result, utcnow
from workers.db.store.base import _as_dict
from workers.db.store.writes import WriteStore


class ReviewStore(WriteStore):
    def review(self, kind: Kind, item_id: str, *, actor: str, review_status: str,
               result: dict[str, Any] | None = None, note: str | None = None) -> dict[str, Any]:
        """A person's decision on an item's current outcome, audited. With ``result`` it is a new
        version of tier ``human`` that becomes current; without, the current version's status changes."""
        with self.sessions.begin() as session:
            current = session.scalars(select(Result).where(
                Result.kind == kind.value, Result.item_id == item_id, Result.is_current).with_for_update()).first()
            if current is None:
                raise LookupError(f"no {kind.value} result with id {item_id!r}")
            previous_status = current.review_status
            if result is None:
                current.review_status = review_status
                current.note = note
                reviewed = current
            else:
                row = {"item_id": item_id, "content_hash": current.content_hash, "tier": "human",
                       "review_status": review_status, "result": result, "model": None, "model_version": None,
                       "producer": actor, "note": note, "sent_at": utcnow()}
                self._add_versions(session, kind, [row])
                reviewed = session.scalars(select(Result).where(
                    Result.kind == kind.value, Result.item_id == item_id, Result.is_current)).one()
            head = self._append_audit(session, actor, "review", kind, {
                "item_id": item_id, "version": reviewed.version, "from": previous_status, "to": review_status,
                "edited": result is not None})
            reviewed_row = _as_dict(reviewed)
        self._publish_head(head)
        return reviewed_row


    def hold(self, kind: Kind, item_id: str, *, reason: str, actor: str) -> None:
        with self.sessions.begin() as session:
            session.merge(LegalHold(kind=kind.value, item_id=item_id, reason=reason, actor=actor, held_at=utcnow()))
            head = self._append_audit(session, actor, "hold", kind, {"item_id": item_id, "reason": reason})
        self._publish_head(head)


    def release(self, kind: Kind, item_id: str, *, actor: str) -> bool:
        with self.sessions.begin() as session:
            released = session.execute(delete(LegalHold).where(
                LegalHold.kind == kind.value, LegalHold.item_id == item_id)).rowcount
            head = self._append_audit(session, actor, "release", kind, {"item_id": item_id}) if released else None
        self._publish_head(head)
        return bool(released)


    def holds(self, kind: Kind | None = None) -> list[dict[str, Any]]:
        query = select(LegalHold).order_by(LegalHold.held_at)
        if kind is not None:
            query = query.where(LegalHold.kind == kind.value)
        with self.sessions() as session:
            return [_as_dict(row) for row in session.scalars(query)]

