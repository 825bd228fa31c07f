"""Writes and reads of outcomes. Redelivered messages and resent items are harmless: results are
versioned per item and de-duplicated by content (see :class:`workers.db.models.Result`), rejections
and dead letters are keyed by message id."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, event, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from schemas import Kind
from workers.db.engine import make_engine, make_session_factory
from workers.db.models import (AuditChain, AuditEvent, Base, DeadLetter, LegalHold, Rejection, Result, Tombstone,
                               utcnow)
from workers.security import audit_chain

log = logging.getLogger(__name__)

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


def item_hash(kind: Kind | str, item_id: str) -> str:
    """What a tombstone keeps of an erased item: the SHA-256 of kind and id, not the id."""
    kind_value = kind.value if isinstance(kind, Kind) else kind
    return hashlib.sha256(f"{kind_value}\n{item_id}".encode("utf-8", "surrogatepass")).hexdigest()


class ItemsOnHold(RuntimeError):
    """Purge or erasure asked for items under a legal hold; the message gives each reason."""


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


@dataclass
class Removed:
    """How many rows a purge or an erasure removed, per table."""

    results: int = 0
    rejections: int = 0
    dead_letters: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"results": self.results, "rejections": self.rejections, "dead_letters": self.dead_letters}

    def __add__(self, other: Removed) -> Removed:
        return Removed(self.results + other.results, self.rejections + other.rejections,
                       self.dead_letters + other.dead_letters)


class OutcomeStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions: sessionmaker[Session] = make_session_factory(engine)
        if engine.dialect.name == "sqlite" and not event.contains(engine, "connect", _secure_delete):
            event.listen(engine, "connect", _secure_delete)

    @cached_property
    def audit_signing(self) -> AuditSigning | None:
        return audit_signing_from_settings()

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
        erased = self._tombstoned_in(session, kind, [row["item_id"] for row in (*outcomes.results, *outcomes.dead_letters)
                                                     if row.get("item_id") is not None])
        results = [row for row in outcomes.results if row["item_id"] not in erased]
        dead_letters = [row for row in outcomes.dead_letters if row.get("item_id") not in erased]
        if erased:
            log.warning("not storing %d outcome(s) of erased items", len(outcomes.results) - len(results)
                        + len(outcomes.dead_letters) - len(dead_letters))
        if results:
            self._add_versions(session, kind, results)
            ids = [row["item_id"] for row in results]
            session.execute(delete(DeadLetter).where(DeadLetter.kind == kind.value, DeadLetter.item_id.in_(ids)))
        if dead_letters:
            item_ids = [row["item_id"] for row in dead_letters if row["item_id"] is not None]
            done = set(session.execute(
                select(Result.item_id, Result.content_hash).where(Result.kind == kind.value, Result.item_id.in_(item_ids))
            ).tuples()) if item_ids else set()
            dead_letters = [row for row in dead_letters if (row["item_id"], row.get("content_hash")) not in done]
        self._insert_ignoring_duplicates(session, Rejection, outcomes.rejections)
        self._upsert_dead_letters(session, dead_letters)

    def _tombstoned_in(self, session: Session, kind: Kind, item_ids: Sequence[str]) -> set[str]:
        if not item_ids:
            return set()
        hashes = {item_hash(kind, item_id): item_id for item_id in item_ids}
        found = session.scalars(select(Tombstone.item_hash).where(Tombstone.kind == kind.value,
                                                                  Tombstone.item_hash.in_(list(hashes))))
        return {hashes[value] for value in found}

    def _add_versions(self, session: Session, kind: Kind, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Store each row as the item's next version unless that tier already has this content;
        decide which version is current. Returns the rows actually added. Core statements, not ORM
        objects: one multi-row INSERT for the batch (the ORM's unit of work cost ~0.5 ms a row)."""
        item_ids = sorted({row["item_id"] for row in rows})
        existing: dict[str, list[_Version]] = {item_id: [] for item_id in item_ids}
        query = select(Result.id, Result.item_id, Result.version, Result.dedup_key, Result.is_current, Result.tier,
                       Result.content_hash, Result.sent_at) \
            .where(Result.kind == kind.value, Result.item_id.in_(item_ids)).with_for_update()
        for stored in session.execute(query):
            existing[stored.item_id].append(_Version(**stored._asdict()))
        added, new_rows, superseded_ids = [], [], []
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
                if current.new_row is not None:  # added earlier in this batch
                    current.new_row["is_current"] = False
                else:
                    superseded_ids.append(current.id)
            new_row = {**row, "kind": kind.value, "version": max((v.version for v in versions), default=0) + 1,
                       "dedup_key": dedup_key, "is_current": becomes_current, "tier": tier}
            versions.append(_Version(id=None, item_id=row["item_id"], version=new_row["version"], dedup_key=dedup_key,
                                     is_current=becomes_current, tier=tier, content_hash=row["content_hash"],
                                     sent_at=row.get("sent_at"), new_row=new_row))
            new_rows.append(new_row)
            added.append(row)
        if superseded_ids:
            session.execute(update(Result).where(Result.id.in_(superseded_ids)).values(is_current=False))
        for _, group in _grouped_by_columns(new_rows):  # one executemany per set of columns
            session.execute(insert(Result), group)
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

    # Erasure, retention and legal holds.

    def tombstoned(self, kind: Kind, item_ids: Sequence[str]) -> set[str]:
        """Which of these items were erased."""
        if not item_ids:
            return set()
        hashes = {item_hash(kind, item_id): item_id for item_id in item_ids}
        with self.sessions() as session:
            found = session.scalars(select(Tombstone.item_hash).where(
                Tombstone.kind == kind.value, Tombstone.item_hash.in_(list(hashes))))
            return {hashes[value] for value in found}

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

    def erase(self, kind: Kind, item_ids: Sequence[str], *, actor: str) -> Removed:
        """GDPR Art. 17: delete every stored copy of these items (every version of their results, their
        rejections and dead letters) and tombstone them, in one transaction; audited with counts and
        the ids' hashes, never the data. Raises ItemsOnHold (and erases nothing) if any is held."""
        item_ids = sorted(set(item_ids))
        with self.sessions.begin() as session:
            held = session.scalars(select(LegalHold).where(LegalHold.kind == kind.value,
                                                           LegalHold.item_id.in_(item_ids))).all()
            if held:
                raise ItemsOnHold("; ".join(f"{hold.item_id} is under a legal hold: {hold.reason}" for hold in held))
            removed = self._delete_items(session, kind, item_ids)
            for item_id in item_ids:
                session.merge(Tombstone(kind=kind.value, item_hash=item_hash(kind, item_id), erased_at=utcnow()))
            head = self._append_audit(session, actor, "erase", kind, {
                "items": len(item_ids), "item_hashes": [item_hash(kind, item_id) for item_id in item_ids],
                "removed": removed.as_dict()})
        self._publish_head(head)
        return removed

    def erase_again(self, kind: Kind, item_ids: Sequence[str]) -> Removed:
        """A second sweep after Redis was cleaned: a batch that was being stored while the erasure ran
        cannot leave a copy behind."""
        with self.sessions.begin() as session:
            return self._delete_items(session, kind, sorted(set(item_ids)))

    def _delete_items(self, session: Session, kind: Kind, item_ids: list[str]) -> Removed:
        if not item_ids:
            return Removed()
        # A rejection by the consumer may carry no item id, only the message in its excerpt.
        mentions = [Rejection.payload_excerpt.contains(f'"id": "{item_id}"', autoescape=True) for item_id in item_ids]
        mentions += [Rejection.payload_excerpt.contains(f'"id":"{item_id}"', autoescape=True) for item_id in item_ids]
        return Removed(
            results=session.execute(delete(Result).where(Result.kind == kind.value,
                                                         Result.item_id.in_(item_ids))).rowcount,
            rejections=session.execute(delete(Rejection).where(or_(
                (Rejection.kind == kind.value) & Rejection.item_id.in_(item_ids),
                Rejection.item_id.is_(None) & or_(*mentions)))).rowcount,
            dead_letters=session.execute(delete(DeadLetter).where(DeadLetter.kind == kind.value,
                                                                  DeadLetter.item_id.in_(item_ids))).rowcount,
        )

    def purge(self, retention_days: dict[str, int], *, actor: str, now: datetime | None = None) -> dict[str, Removed]:
        """Delete what is older than each kind's retention (``"*"``: every kind not named), except items
        under a legal hold; audited per kind."""
        now = now or datetime.now(timezone.utc)
        removed: dict[str, Removed] = {}
        for kind in Kind:
            days = retention_days.get(kind.value, retention_days.get("*"))
            if days is None:
                continue
            cutoff = now - timedelta(days=days)
            with self.sessions.begin() as session:
                held = select(LegalHold.item_id).where(LegalHold.kind == kind.value)
                removed[kind.value] = Removed(
                    results=session.execute(delete(Result).where(
                        Result.kind == kind.value, Result.processed_at < cutoff,
                        Result.item_id.not_in(held))).rowcount,
                    rejections=session.execute(delete(Rejection).where(
                        Rejection.kind == kind.value, Rejection.rejected_at < cutoff,
                        or_(Rejection.item_id.is_(None), Rejection.item_id.not_in(held)))).rowcount,
                    dead_letters=session.execute(delete(DeadLetter).where(
                        DeadLetter.kind == kind.value, DeadLetter.failed_at < cutoff,
                        or_(DeadLetter.item_id.is_(None), DeadLetter.item_id.not_in(held)))).rowcount,
                )
                head = self._append_audit(session, actor, "purge", kind, {
                    "retention_days": days, "cutoff": cutoff.isoformat(), "removed": removed[kind.value].as_dict()})
            self._publish_head(head)
        return removed

    def wipe_freed_pages(self, timeout: float = 30.0) -> bool:
        """Make deleted bytes unrecoverable from the database files. SQLite: deleted cells are zeroed as
        they are deleted (``secure_delete``, on for every connection of this store); the WAL still holds
        earlier page images until a checkpoint copies it back and truncates it (readers can delay that:
        retried until ``timeout``). PostgreSQL: nothing to do here (README, "Retention and erasure").
        True when done."""
        if self.engine.dialect.name != "sqlite":
            return True
        deadline = time.monotonic() + timeout
        while True:
            with self.engine.connect() as connection:
                busy, _, _ = connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).one()
            if not busy:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)

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
            head = self._append_audit(session, actor, "review", kind, {
                "item_id": item_id, "version": reviewed.version, "from": previous_status, "to": review_status,
                "edited": result is not None})
            reviewed_row = _as_dict(reviewed)
        self._publish_head(head)
        return reviewed_row

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


@dataclass
class _Version:
    """What deciding the next version needs of a stored one (or of one added in this batch: ``new_row``)."""

    id: int | None
    item_id: str
    version: int
    dedup_key: str
    is_current: bool
    tier: str
    content_hash: str
    sent_at: datetime | None
    new_row: dict[str, Any] | None = None


def _grouped_by_columns(rows: Sequence[dict[str, Any]]) -> Iterator[tuple[tuple[str, ...], list[dict[str, Any]]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    yield from groups.items()


def _supersedes(row: dict[str, Any], tier: str, current: _Version) -> bool:
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


def _secure_delete(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    """Deleted rows are overwritten with zeros, not merely unlinked (erasure must leave no bytes)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _as_dict(row: Base) -> dict[str, Any]:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}
