"""Writes and reads of outcomes. Redelivered messages and resent items are harmless: results are
versioned per item and de-duplicated by content (see :class:`workers.db.models.Result`), rejections
and dead letters are keyed by message id."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from schemas import Kind
from workers.db.engine import make_engine, make_session_factory
from workers.db.models import AuditEvent, Base, DeadLetter, Rejection, Result, utcnow

# A result of a higher tier supersedes one of a lower tier for the same content.
TIER_RANK = {"compact": 0, "escalated": 1, "human": 2}


@dataclass
class Outcomes:
    """Everything one batch produced, written in one transaction."""

    results: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.results) + len(self.rejections) + len(self.dead_letters)


def _unique_by_key(table: type[Base], rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop repeats of a key within one statement (a message redelivered into the same batch):
    PostgreSQL refuses an upsert that touches one row twice."""
    key_columns = [column.key for column in table.__table__.primary_key.columns]
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(tuple(row.get(column) for column in key_columns), row)
    return list(unique.values())


class OutcomeStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_session_factory(engine)

    @classmethod
    def from_url(cls, url: str) -> OutcomeStore:
        return cls(make_engine(url))

    def _insert_ignoring_duplicates(self, session: Session, table: type[Base], rows: Sequence[dict[str, Any]]) -> None:
        rows = _unique_by_key(table, rows)
        if not rows:
            return
        session.execute(self._insert(table).on_conflict_do_nothing(), list(rows))

    def _insert(self, table: type[Base]) -> Any:
        """An INSERT of this database's dialect, which has ON CONFLICT (SQLite and PostgreSQL)."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def save(self, kind: Kind, outcomes: Outcomes) -> None:
        """One transaction. An item ends with one current outcome: a result resolves (deletes) the
        item's dead letter, and a dead letter is not stored for content that already has a result
        (two attempt chains of one item can exist after a lost acknowledgement)."""
        for attempt in range(5):
            try:
                with self.sessions.begin() as session:
                    self._save(session, kind, outcomes)
                return
            except IntegrityError:
                # Two workers gave one item its next version at once (PostgreSQL): recompute.
                if attempt == 4:
                    raise

    def _save(self, session: Session, kind: Kind, outcomes: Outcomes) -> None:
        dead_letters = outcomes.dead_letters
        if outcomes.results:
            self._add_versions(session, kind, outcomes.results)
            ids = [row["item_id"] for row in outcomes.results]
            session.execute(delete(DeadLetter).where(DeadLetter.kind == kind.value, DeadLetter.item_id.in_(ids)))
        if dead_letters:
            item_ids = [row["item_id"] for row in dead_letters if row["item_id"] is not None]
            done = set(session.execute(
                select(Result.item_id, Result.content_hash).where(Result.kind == kind.value, Result.item_id.in_(item_ids))
            ).tuples()) if item_ids else set()
            dead_letters = [row for row in dead_letters if (row["item_id"], row.get("content_hash")) not in done]
        self._insert_ignoring_duplicates(session, Rejection, outcomes.rejections)
        self._upsert_dead_letters(session, dead_letters)

    def _add_versions(self, session: Session, kind: Kind, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store each row as the item's next version unless that tier already has this content;
        decide which version is current. Returns the rows actually added."""
        item_ids = sorted({row["item_id"] for row in rows})
        existing: dict[str, list[Result]] = {item_id: [] for item_id in item_ids}
        query = select(Result).where(Result.kind == kind.value, Result.item_id.in_(item_ids)).with_for_update()
        for stored in session.scalars(query):
            existing[stored.item_id].append(stored)
        added = []
        for row in rows:
            versions = existing[row["item_id"]]
            tier = row.get("tier", "compact")
            dedup_key = f"{tier}:{row['content_hash']}" if tier != "human" else f"human:{len(versions) + 1}"
            if any(stored.dedup_key == dedup_key for stored in versions):
                continue  # a redelivery or a resend of the same content
            current = next((stored for stored in versions if stored.is_current), None)
            becomes_current = current is None or _supersedes(row, tier, current)
            if becomes_current and current is not None:
                current.is_current = False
            version = Result(kind=kind.value, version=max((v.version for v in versions), default=0) + 1,
                             dedup_key=dedup_key, is_current=becomes_current, tier=tier,
                             **{key: value for key, value in row.items() if key != "tier"})
            session.add(version)
            versions.append(version)
            added.append(row)
        session.flush()
        return added

    def _upsert_dead_letters(self, session: Session, rows: Sequence[dict[str, Any]]) -> None:
        """A replayed item that fails again reopens its dead letter instead of adding one."""
        rows = _unique_by_key(DeadLetter, rows)
        if not rows:
            return
        statement = self._insert(DeadLetter)
        statement = statement.on_conflict_do_update(
            index_elements=[DeadLetter.message_id],
            set_={
                "error": statement.excluded.error,
                "attempts": statement.excluded.attempts,
                "failed_at": statement.excluded.failed_at,
                "replayed_at": None,
            },
        )
        session.execute(statement, list(rows))

    def save_rejections(self, outcomes: Outcomes) -> None:
        """Rejections of messages that never reached a task (they may have no kind)."""
        with self.sessions.begin() as session:
            self._insert_ignoring_duplicates(session, Rejection, outcomes.rejections)

    def audit(self, actor: str, action: str, kind: Kind | str | None, detail: dict[str, Any]) -> None:
        kind_value = kind.value if isinstance(kind, Kind) else kind
        with self.sessions.begin() as session:
            session.add(AuditEvent(actor=actor, action=action, kind=kind_value, detail=detail))

    # Reads for the CLI and tests.

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

    def save_versions(self, kind: Kind, rows: Sequence[dict[str, Any]]) -> int:
        """Store result rows outside a batch (escalations, reviews); returns how many were new."""
        with self.sessions.begin() as session:
            return len(self._add_versions(session, kind, rows))

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
            session.add(AuditEvent(actor=actor, action="review", kind=kind.value, detail={
                "item_id": item_id, "version": reviewed.version, "from": previous_status, "to": review_status,
                "edited": result is not None}))
            session.flush()
            return _as_dict(reviewed)

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

    def mark_replayed(self, message_ids: Sequence[str], replayed: bool = True) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(DeadLetter)
                .where(DeadLetter.message_id.in_(message_ids))
                .values(replayed_at=datetime.now(timezone.utc) if replayed else None)
            )


def _supersedes(row: dict[str, Any], tier: str, current: Result) -> bool:
    """Whether a new version becomes current: a person's review always does; for the same content, a
    higher tier does; for other content, the one the producer sent later does."""
    if tier == "human":
        return True
    if row["content_hash"] == current.content_hash:
        return TIER_RANK.get(tier, 0) > TIER_RANK.get(current.tier, 0)
    sent_at, current_sent_at = row.get("sent_at"), current.sent_at
    if sent_at is None or current_sent_at is None:
        return True
    if current_sent_at.tzinfo is None:  # SQLite returns naive datetimes
        current_sent_at = current_sent_at.replace(tzinfo=sent_at.tzinfo)
    return sent_at >= current_sent_at


def _as_dict(row: Base) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}
