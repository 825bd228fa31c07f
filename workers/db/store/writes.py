"""Writing outcomes: a batch in one transaction, results versioned per item and de-duplicated by content
(see :class:`workers.db.models.Result`), rejections and dead letters keyed by message id."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from schemas import Kind
from workers.db.models import DeadLetter, Rejection, Result, Tombstone
from workers.db.models_report import BatchStat
from workers.db.store.base import StoreBase, _unique_by_key, item_hash, log
from workers.pipelines.base import MACHINE_REVIEW_STATUSES

# A result of a higher tier supersedes one of a lower tier for the same content.
TIER_RANK = {"compact": 0, "escalated": 1, "human": 2}


@dataclass
class Outcomes:
    """Everything one batch produced, written in one transaction."""

    results: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    # The batch's row of batch_stats, made inside the transaction (its persist timings end there).
    batch_stats: Callable[[], dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.results) + len(self.rejections) + len(self.dead_letters)


class WriteStore(StoreBase):
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
        if outcomes.batch_stats is not None:
            session.execute(insert(BatchStat), [outcomes.batch_stats()])


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
                       Result.content_hash, Result.sent_at, Result.review_status) \
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
                                     sent_at=row.get("sent_at"), review_status=new_row.get("review_status"),
                                     new_row=new_row))
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


    def save_versions(self, kind: Kind, rows: Sequence[dict[str, Any]]) -> int:
        """Store result rows outside a batch (escalations, reviews); returns how many were new."""
        with self.sessions.begin() as session:
            return len(self._add_versions(session, kind, rows))


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
    review_status: str | None = None
    new_row: dict[str, Any] | None = None


def _grouped_by_columns(rows: Sequence[dict[str, Any]]) -> Iterator[tuple[tuple[str, ...], list[dict[str, Any]]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    yield from groups.items()


def _supersedes(row: dict[str, Any], tier: str, current: _Version) -> bool:
    """Whether a new version becomes current: a person's review always does; for the same content, a
    higher tier does, unless a person has decided on the current version (approved, resolved…); for other
    content, the one the producer sent later does."""
    if tier == "human":
        return True
    if row["content_hash"] == current.content_hash:
        decided_by_a_person = current.review_status not in MACHINE_REVIEW_STATUSES
        return TIER_RANK.get(tier, 0) > TIER_RANK.get(current.tier, 0) and not decided_by_a_person
    sent_at, current_sent_at = row.get("sent_at"), current.sent_at
    if sent_at is None or current_sent_at is None:
        return True
    if current_sent_at.tzinfo is None:  # SQLite returns naive datetimes
        current_sent_at = current_sent_at.replace(tzinfo=sent_at.tzinfo)
    return sent_at >= current_sent_at

