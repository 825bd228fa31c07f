"""What every part of the outcome store shares: the engine and its sessions, dialect-aware inserts, and the
audit chain (a change by a person or a purge is audited in the same transaction)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from schemas import Kind
from workers.db.engine import make_engine, make_session_factory
from workers.db.models import AuditChain, AuditEvent, Base, utcnow
from workers.security import audit_chain

log = logging.getLogger(__name__)


def _unique_by_key(table: type[Base], rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop repeats of a key within one statement (a message redelivered into the same batch):
    PostgreSQL refuses an upsert that touches one row twice."""
    key_columns = [column.key for column in table.__table__.primary_key.columns]
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(tuple(row.get(column) for column in key_columns), row)
    return list(unique.values())


def item_hash(kind: Kind | str, item_id: str) -> str:
    """What a tombstone keeps of an erased item: the SHA-256 of kind and id, not the id."""
    kind_value = kind.value if isinstance(kind, Kind) else kind
    return hashlib.sha256(f"{kind_value}\n{item_id}".encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class AuditSigning:
    """The audit chain's key (kept outside the database) and where its head is also written."""

    key: bytes
    head_file: Path


def audit_signing_from_settings() -> AuditSigning | None:
    """None when no audit key is configured (rows are then stored unchained); a configured key that
    cannot be read raises AuditKeyError."""
    from workers.settings import get_settings

    settings = get_settings()
    if settings.audit_key is None and settings.audit_key_file is None:
        return None
    key = audit_chain.load_audit_key(settings.audit_key, settings.audit_key_file)
    return AuditSigning(key, settings.audit_head_file or settings.data_dir / "audit-head.json")


class StoreBase:
    """The engine, its sessions and the audit chain; each concern of the store builds on it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_session_factory(engine)
        if engine.dialect.name == "sqlite" and not event.contains(engine, "connect", _secure_delete):
            event.listen(engine, "connect", _secure_delete)


    @cached_property
    def audit_signing(self) -> AuditSigning | None:
        return audit_signing_from_settings()


    @classmethod
    def from_url(cls, url: str, pre_ping: bool = True) -> Any:
        return cls(make_engine(url, pre_ping))


    def _insert_ignoring_duplicates(self, session: Session, table: type[Base], rows: Sequence[dict[str, Any]]) -> None:
        rows = _unique_by_key(table, rows)
        if not rows:
            return
        session.execute(self._insert(table).on_conflict_do_nothing(), list(rows))


    def _insert(self, table: type[Base]) -> Any:
        """An INSERT of this database's dialect, which has ON CONFLICT (SQLite and PostgreSQL)."""
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)


    def audit(self, actor: str, action: str, kind: Kind | str | None, detail: dict[str, Any]) -> None:
        with self.sessions.begin() as session:
            head = self._append_audit(session, actor, action, kind, detail)
        self._publish_head(head)


    def _append_audit(self, session: Session, actor: str, action: str, kind: Kind | str | None,
                      detail: dict[str, Any]) -> audit_chain.ChainHead | None:
        """Add an audit row in ``session``, chained to the newest one: the one-row ``audit_chain`` is
        updated first, which locks it (SQLite: the write lock; PostgreSQL: the row) until commit, so
        appenders take turns and ids follow the chain. Returns the new head (publish it after commit)."""
        kind_value = kind.value if isinstance(kind, Kind) else kind
        row = {"at": utcnow(), "actor": actor[:200], "action": action[:60], "kind": kind_value, "detail": detail}
        signing = self.audit_signing
        if signing is None:
            session.add(AuditEvent(**row))
            return None
        session.execute(update(AuditChain).where(AuditChain.id == 1).values(rows=AuditChain.rows + 1))
        rows = session.scalar(select(AuditChain.rows).where(AuditChain.id == 1)) or 0
        previous = session.scalar(select(AuditEvent.hmac).where(AuditEvent.hmac.is_not(None))
                                  .order_by(AuditEvent.id.desc()).limit(1)) or audit_chain.GENESIS
        row["hmac"] = audit_chain.row_hmac(signing.key, previous, row)
        session.add(AuditEvent(**row))
        session.flush()
        return audit_chain.ChainHead(rows, row["hmac"])


    def _publish_head(self, head: audit_chain.ChainHead | None) -> None:
        """The head also goes where database users cannot rewrite it: a file, and this process's log."""
        if head is None or self.audit_signing is None:
            return
        try:
            audit_chain.update_head(self.audit_signing.head_file, head)
        except OSError as error:
            log.error("could not write the audit head file %s: %s", self.audit_signing.head_file, error.strerror)
        log.info(head.log_line())


def _secure_delete(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    """Deleted rows are overwritten with zeros, not merely unlinked (erasure must leave no bytes)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _as_dict(row: Base) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}

