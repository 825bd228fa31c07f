"""A steady producer and the ledger that scale-out and failover tests check: what was accepted, what is
stored, what was lost, what was stored twice, and what was processed more than once (at-least-once delivery
processes an item again after a fault; the store keeps one outcome)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from tests.support.model_free import processed_counts
from workers.db.models import DeadLetter, Rejection, Result
from workers.db.store import OutcomeStore


def model_free_documents(count: int, prefix: str) -> list[dict[str, str]]:
    """Documents whose text starts with their id (the processed log records it); varied enough to be real."""
    subjects = ["invoice overdue", "card charged twice", "loan request", "audit finding", "patient referral"]
    return [{"id": f"{prefix}-{index:06d}", "language": "en",
             "text": f"{prefix}-{index:06d} {subjects[index % len(subjects)]} number {index * 7919 % 100_000}"}
            for index in range(count)]


class SteadyProducer:
    """Enqueues documents at about ``rate`` per second from a thread, in small chunks, until stopped or out of
    documents. An enqueue that raises leaves its chunk *uncertain* (some messages may have been sent)."""

    def __init__(self, enqueue: Callable[[list[dict[str, str]]], object], documents: list[dict[str, str]],
                 rate: float, chunk: int = 10) -> None:
        self.enqueue = enqueue
        self.documents = documents
        self.rate = rate
        self.chunk = chunk
        self.accepted: list[str] = []
        self.resent = 0  # messages the producer sent again after a failover (EnqueueReport.resent)
        self.uncertain: list[str] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-producer", daemon=True)

    def start(self) -> SteadyProducer:
        self._thread.start()
        return self

    def _run(self) -> None:
        started = time.monotonic()
        for start in range(0, len(self.documents), self.chunk):
            if self._stop.is_set():
                return
            batch = self.documents[start:start + self.chunk]
            try:
                report = self.enqueue(batch)
                self.resent += getattr(report, "resent", 0)
                self.accepted.extend(document["id"] for document in batch)
            except Exception as error:  # noqa: BLE001 - recorded; the test decides
                self.uncertain.extend(document["id"] for document in batch)
                self.errors.append(repr(error))
            ahead = started + (start + len(batch)) / self.rate - time.monotonic()
            if ahead > 0:
                self._stop.wait(ahead)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def stop(self, timeout: float = 120.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def join(self, timeout: float = 300.0) -> None:
        self._thread.join(timeout)


@dataclass
class Ledger:
    accepted: int
    stored: int  # distinct items with a result
    lost: list[str]  # accepted, no result
    doubled: dict[str, int]  # items with more than one result row
    other_outcomes: int  # rejections and dead letters (none expected)
    processed_again: int  # items the pipeline ran more than once (redeliveries)
    processed_by_host: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        return (f"accepted {self.accepted}, stored {self.stored}, lost {len(self.lost)}, doubled {len(self.doubled)}, "
                f"processed more than once {self.processed_again}, processed per host {self.processed_by_host}")


def ledger(store: OutcomeStore, accepted: list[str], processed_log: Path | None = None) -> Ledger:
    with store.sessions() as session:
        rows = {item_id: count for item_id, count in
                session.execute(select(Result.item_id, func.count()).group_by(Result.item_id))}
        other = sum(session.scalar(select(func.count()).select_from(table)) or 0 for table in (Rejection, DeadLetter))
    wanted = set(accepted)
    counts = processed_counts(processed_log) if processed_log else {}
    per_host: dict[str, int] = {}
    for item_id in wanted:
        for host, times in counts.get(item_id, {}).items():
            per_host[host] = per_host.get(host, 0) + times
    return Ledger(
        accepted=len(wanted),
        stored=len(wanted & set(rows)),
        lost=sorted(wanted - set(rows)),
        doubled={item_id: count for item_id, count in rows.items() if count > 1},
        other_outcomes=other,
        processed_again=sum(1 for item_id in wanted if sum(counts.get(item_id, {}).values()) > 1),
        processed_by_host=dict(sorted(per_host.items())),
    )


def wait_for(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.1) -> float:
    """Seconds it took ``condition`` to hold; AssertionError after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(poll)
    return time.monotonic() - started
