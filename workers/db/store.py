"""Writes and reads of outcomes. Every write is an insert that ignores an existing key,
so redelivered messages and resent documents are harmless."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from schemas import Kind
from workers.db.engine import make_engine, make_session_factory
from workers.db.models import AuditEvent, Base, DeadLetter, DocumentResult, Rejection

RESULT_KEYS = {Kind.documents: DocumentResult.document_id}  # results are keyed by the producer's id
RESULT_TABLES: dict[Kind, type[Base]] = {kind: key.class_ for kind, key in RESULT_KEYS.items()}


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
        """One transaction. An item ends with one outcome: a result resolves (deletes) the item's dead
        letter, and a dead letter is not stored for an item that already has a result (two attempt
        chains of one item can exist after a lost acknowledgement)."""
        with self.sessions.begin() as session:
            dead_letters = outcomes.dead_letters
            if outcomes.results:
                key = RESULT_KEYS[kind]
                self._insert_ignoring_duplicates(session, RESULT_TABLES[kind], outcomes.results)
                ids = [row[key.key] for row in outcomes.results]
                session.execute(delete(DeadLetter).where(DeadLetter.kind == kind.value, DeadLetter.item_id.in_(ids)))
            if dead_letters and kind in RESULT_KEYS:
                key = RESULT_KEYS[kind]
                item_ids = [row["item_id"] for row in dead_letters if row["item_id"] is not None]
                done = set(session.scalars(select(key).where(key.in_(item_ids)))) if item_ids else set()
                dead_letters = [row for row in dead_letters if row["item_id"] not in done]
            self._insert_ignoring_duplicates(session, Rejection, outcomes.rejections)
            self._upsert_dead_letters(session, dead_letters)

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
        return {
            "document_results": self.count(DocumentResult),
            "rejections": self.count(Rejection),
            "dead_letters": self.count(DeadLetter),
        }

    def iter_rows(self, table: type[Base], limit: int | None = None) -> Iterator[dict[str, Any]]:
        with self.sessions() as session:
            query = select(table).limit(limit)
            for row in session.scalars(query):
                yield {column.key: getattr(row, column.key) for column in table.__table__.columns}

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
