"""Retention and erasure: purge by age per kind, erase items and leave tombstones, wipe freed bytes; legal
holds stop both. Audited without the data."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, or_, select, text
from sqlalchemy.orm import Session

from schemas import Kind
from workers.db.models import DeadLetter, LegalHold, Rejection, Result, Tombstone, utcnow
from workers.db.models_report import BatchStat
from workers.db.store.base import StoreBase, item_hash


class ItemsOnHold(RuntimeError):
    """Purge or erasure asked for items under a legal hold; the message gives each reason."""


@dataclass
class Removed:
    """How many rows a purge or an erasure removed, per table (batch statistics hold no item: purge only)."""

    results: int = 0
    rejections: int = 0
    dead_letters: int = 0
    batch_stats: int | None = None  # None: not a purge (an erasure has no batch statistics to remove)

    def as_dict(self) -> dict[str, int]:
        counts = {"results": self.results, "rejections": self.rejections, "dead_letters": self.dead_letters}
        return counts if self.batch_stats is None else counts | {"batch_stats": self.batch_stats}

    def __add__(self, other: Removed) -> Removed:
        batch_stats = None if self.batch_stats is None and other.batch_stats is None else \
            (self.batch_stats or 0) + (other.batch_stats or 0)
        return Removed(self.results + other.results, self.rejections + other.rejections,
                       self.dead_letters + other.dead_letters, batch_stats)


class RetentionStore(StoreBase):
    def tombstoned(self, kind: Kind, item_ids: Sequence[str]) -> set[str]:
        """Which of these items were erased: one statement outside a transaction (no BEGIN and ROLLBACK round
        trips: it runs before every batch)."""
        if not item_ids:
            return set()
        hashes = {item_hash(kind, item_id): item_id for item_id in item_ids}
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            found = connection.scalars(select(Tombstone.item_hash).where(
                Tombstone.kind == kind.value, Tombstone.item_hash.in_(list(hashes))))
            return {hashes[value] for value in found}


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
                    batch_stats=session.execute(delete(BatchStat).where(
                        BatchStat.kind == kind.value, BatchStat.started_at < cutoff)).rowcount,
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

