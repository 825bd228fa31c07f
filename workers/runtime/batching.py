"""One micro-batch, from messages to stored outcomes.

authenticate (when workers have producer keys) → refuse erased items → validate → run the pipeline (isolating items that make it fail) → persist in one transaction
→ reply to callers waiting for an item (``reply_to``, workers/runtime/replies.py) → schedule retries of failed items. Every message ends with exactly one of: a result, a
rejection (bad input), a dead letter (kept failing), a retry message, or — when the database
stays down past the retry budget — a requeue of the original message.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel

from schemas import ItemError, Kind
from workers.db.store import Outcomes, OutcomeStore
from workers.runtime import metrics
from workers.runtime import replies
from workers.runtime.envelope import Envelope, authenticate, validate
from workers.security.masking import mask
from workers.security.producers import Keyring
from workers.pipelines.base import Pipeline, Rejected
from workers.runtime.retry import RetryBudgetExhausted, backoff_delay, is_transient_database_error, retry_transient
from workers.settings import Settings
from workers.runtime.storable import storable_json, storable_text

log = logging.getLogger(__name__)

Republish = Callable[[Envelope, int, float], None]
"""Send the envelope's payload again as attempt N after a delay in seconds."""
Escalate = Callable[[Envelope], None]
"""Send the envelope's payload to the escalation queue of its kind (a bigger tier, or a person)."""


@dataclass
class BatchReport:
    """What the consumer must do with the original messages: ack all but ``requeue``."""

    size: int
    requeue: list[str] = field(default_factory=list)
    stored: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    retried: int = 0
    escalated: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "requeue": self.requeue, "stored": self.stored, "rejected": self.rejected,
                "dead_lettered": self.dead_lettered, "retried": self.retried, "escalated": self.escalated,
                "seconds": self.seconds}

    def log_line(self, queue: str) -> str:
        return (f"batch {queue}: {self.size} item(s) in {self.seconds:.3f}s, stored {self.stored} "
                f"(rejected {self.rejected}, dead-lettered {self.dead_lettered}), retried {self.retried}, "
                f"escalated {self.escalated}, "
                f"requeued {len(self.requeue)}")


def run_isolated(
    function: Callable[[list[Any]], list[Any]], items: Sequence[Any]
) -> tuple[list[tuple[Any, Any]], list[tuple[Any, BaseException]]]:
    """Run ``function`` on all items; if it raises, bisect until the failing items are alone.

    A batch with one poison item costs about 2·log2(n) extra calls; its batch-mates succeed.
    """
    if not items:
        return [], []
    try:
        outputs = function(list(items))
        if len(outputs) != len(items):
            raise RuntimeError(f"pipeline returned {len(outputs)} outputs for {len(items)} items")
        return list(zip(items, outputs)), []
    except Exception as error:
        if len(items) == 1:
            return [], [(items[0], error)]
        middle = len(items) // 2
        left_ok, left_failed = run_isolated(function, items[:middle])
        right_ok, right_failed = run_isolated(function, items[middle:])
        return left_ok + right_ok, left_failed + right_failed


def split_by_bytes(items: Sequence[tuple[Envelope, BaseModel]], budget: int) -> list[list[tuple[Envelope, BaseModel]]]:
    """Consecutive chunks whose payload text stays within ``budget`` bytes (an item larger than the
    budget goes alone), so one pipeline call's memory is bounded whatever the batch holds."""
    chunks: list[list[tuple[Envelope, BaseModel]]] = [[]]
    used = 0
    for pair in items:
        size = _text_bytes(pair[1])
        if chunks[-1] and used + size > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(pair)
        used += size
    return [chunk for chunk in chunks if chunk]


def _text_bytes(item: BaseModel) -> int:
    return sum(len(value.encode("utf-8", "surrogatepass")) for value in item.__dict__.values() if isinstance(value, str))


@dataclass(frozen=True)
class Authentication:
    """What a worker checks signatures with; absent when signing is off (SLIMLINE_ALLOW_UNSIGNED)."""

    keyring: Keyring
    workers_id: str
    max_age_seconds: int | None = None


def rejection_row(kind: Kind | str, envelope: Envelope, errors: list[ItemError]) -> dict[str, Any]:
    kind_value = kind.value if isinstance(kind, Kind) else kind
    return {
        "message_id": envelope.message_id,
        "kind": kind_value,
        "item_id": envelope.item_id(),
        "producer": envelope.producer,
        "field": storable_text(errors[0].field, 200),
        "reason": storable_text(errors[0].reason, 2000),
        "errors": storable_json([error.model_dump() for error in errors]),
        "payload_excerpt": envelope.excerpt(),
    }


def dead_letter_row(kind: Kind, envelope: Envelope, error: BaseException) -> dict[str, Any]:
    return {
        "message_id": envelope.message_id,
        "kind": kind.value,
        "item_id": envelope.item_id(),
        "producer": envelope.producer,
        "payload": storable_json(envelope.payload),
        "content_hash": envelope.content_hash(),
        "error": mask(storable_text(f"{type(error).__name__}: {error}", 2000)),
        "attempts": envelope.attempt,
    }


class BatchRunner:
    def __init__(self, pipeline: Pipeline, store: OutcomeStore, republish: Republish, settings: Settings,
                 escalate: Escalate | None = None, authentication: Authentication | None = None,
                 reply: replies.PushReplies | None = None) -> None:
        self.pipeline = pipeline
        self.store = store
        self.republish = republish
        self.escalate = escalate  # only for the compact tier of kinds that escalate
        self.reply = reply  # None: nobody can wait for an outcome (reply_to is ignored)
        self.settings = settings
        self.authentication = authentication
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        # Verified messages per producer, audited at most every SLIMLINE_AUDIT_RECEIPTS_SECONDS.
        self.receipts: Counter[str] = Counter()
        self.receipts_audited_at = time.monotonic()
        self.pending_audit: list[tuple[str, dict[str, Any]]] = []  # written once the batch is stored

    def _authenticate(self, envelopes: Sequence[Envelope], outcomes: Outcomes) -> list[Envelope]:
        """Verified envelopes; the others become rejections (field ``signature``) and an audit row."""
        if self.authentication is None:
            return list(envelopes)
        kind, auth = self.pipeline.kind, self.authentication
        verified, refused = [], Counter()
        for envelope in envelopes:
            checked = authenticate(kind, envelope, auth.keyring, auth.workers_id, auth.max_age_seconds)
            if isinstance(checked, Envelope):
                verified.append(checked)
                if not checked.signed_by_workers:
                    self.receipts[checked.producer or "?"] += 1
                continue
            row = rejection_row(kind, envelope, [checked.item_error])
            row["producer"] = None  # nobody proved who sent it
            outcomes.rejections.append(row)
            refused[checked.code] += 1
        if refused:
            log.warning("refused %d message(s) of %s that failed authentication: %s", sum(refused.values()),
                        kind.value, dict(refused))
            self.pending_audit.append(("auth.rejected", {"messages": sum(refused.values()), "reasons": dict(refused)}))
        return verified

    def _refuse_erased(self, envelopes: list[Envelope], outcomes: Outcomes) -> list[Envelope]:
        """An erased item that comes back (an old copy, a late retry) is refused, without its data."""
        try:
            erased = self.store.tombstoned(self.pipeline.kind, [item_id for envelope in envelopes
                                                                if (item_id := envelope.item_id()) is not None])
        except Exception as error:  # noqa: BLE001 - the database is down: saving checks tombstones again
            log.warning("could not check tombstones before the pipeline: %s", type(error).__name__)
            return envelopes
        if not erased:
            return envelopes
        for envelope in envelopes:
            if envelope.item_id() in erased:
                outcomes.rejections.append({
                    "message_id": envelope.message_id, "kind": self.pipeline.kind.value, "item_id": None,
                    "producer": envelope.producer, "field": "id", "reason": "the item was erased; it is not processed",
                    "errors": [{"field": "id", "reason": "erased"}], "payload_excerpt": ""})
        return [envelope for envelope in envelopes if envelope.item_id() not in erased]

    def _audit_pending(self) -> None:
        """Audit rows of this batch, and verified receipts when due; never fails the batch."""
        due = self.receipts and time.monotonic() - self.receipts_audited_at >= self.settings.audit_receipts_seconds
        try:
            for action, detail in self.pending_audit:
                self.store.audit(self.worker, action, self.pipeline.kind, detail)
            self.pending_audit.clear()
            if due:
                self.flush_receipts()
        except Exception as error:  # noqa: BLE001 - the outcomes are stored; the audit row is retried next batch
            log.error("could not write the audit log: %r", error)

    def flush_receipts(self) -> None:
        """One audit row per verified producer: who enqueued how many items of this kind."""
        for producer, count in sorted(self.receipts.items()):
            self.store.audit(producer, "enqueue", self.pipeline.kind, {"messages": count, "verified_by": self.worker})
        self.receipts.clear()
        self.receipts_audited_at = time.monotonic()

    def run_safely(self, envelopes: Sequence[Envelope]) -> BatchReport:
        """:meth:`run`, and if something outside the pipeline fails (the batch is not to blame as a
        whole), item by item; an item that still fails is dead-lettered, so no message can make its
        batch go round forever."""
        try:
            return self.run(envelopes)
        except Exception:
            log.exception("batch of %d failed outside the pipeline; processing it item by item", len(envelopes))
        report = BatchReport(size=len(envelopes))
        for envelope in envelopes:
            try:
                report.requeue += self.run([envelope]).requeue
            except Exception as error:
                try:
                    self.store.save(self.pipeline.kind, Outcomes(dead_letters=[
                        dead_letter_row(self.pipeline.kind, envelope, error)]))
                except Exception:
                    log.exception("could not store a dead letter for %s; returning it to the queue",
                                  envelope.message_id)
                    report.requeue.append(envelope.message_id)
        return report

    def run(self, envelopes: Sequence[Envelope]) -> BatchReport:
        kind = self.pipeline.kind
        started, started_cpu, started_at = time.perf_counter(), time.process_time(), datetime.now(timezone.utc)
        report = BatchReport(size=len(envelopes))
        outcomes = Outcomes()
        valid: list[tuple[Envelope, BaseModel]] = []
        accepted = self._refuse_erased(self._authenticate(envelopes, outcomes), outcomes)
        for envelope in accepted:
            checked = validate(kind, envelope, self.settings)
            if isinstance(checked, list):
                outcomes.rejections.append(rejection_row(kind, envelope, checked))
            else:
                valid.append((envelope, checked))
        validated, validated_cpu = time.perf_counter(), time.process_time()

        succeeded, failed = [], []
        for chunk in split_by_bytes(valid, self.settings.batch_text_bytes):
            chunk_ok, chunk_failed = run_isolated(lambda pairs: self.pipeline([item for _, item in pairs]), chunk)
            succeeded += chunk_ok
            failed += chunk_failed
        piped, piped_cpu = time.perf_counter(), time.process_time()
        report.seconds = piped - started
        for (envelope, item), outcome in succeeded:
            if isinstance(outcome, Rejected):
                outcomes.rejections.append(rejection_row(kind, envelope, outcome.errors))
            else:
                outcomes.results.append(self._versioned_row(envelope, item, outcome, len(envelopes), report.seconds))
        retry_later = []
        for (envelope, _), error in failed:
            log.warning("item %s failed on attempt %d: %r", envelope.message_id, envelope.attempt, error)
            if envelope.attempt >= self.settings.max_attempts:
                outcomes.dead_letters.append(dead_letter_row(kind, envelope, error))
            else:
                retry_later.append(envelope)
        marks = (started, validated, piped), (started_cpu, validated_cpu, piped_cpu)
        outcomes.batch_stats = self._stats_row(started_at, marks, len(envelopes), valid, succeeded, len(failed),
                                               outcomes)

        try:
            by_id = {envelope.message_id: envelope for envelope in envelopes} | {
                envelope.message_id: envelope for envelope in accepted}
            retry_transient(lambda: self._save(outcomes, by_id), self.settings.persist_retry_seconds)
        except RetryBudgetExhausted as error:
            log.error("batch of %d returned to the queue: %s", len(envelopes), error)
            self.pending_audit.clear()  # the messages come back and are audited then
            report.requeue = [envelope.message_id for envelope in envelopes]
            metrics.record_batch(kind.value, len(envelopes), {"total": time.perf_counter() - started},
                                 {"requeued": len(envelopes)})
            return report
        persisted = time.perf_counter()
        self._reply(outcomes, by_id)
        self._audit_pending()
        now = time.time()
        for row in outcomes.results:
            if row["sent_at"] is not None:
                metrics.record_latency(kind.value, now - row["sent_at"].timestamp())
        report.stored = len(outcomes)
        report.rejected = len(outcomes.rejections)
        report.dead_lettered = len(outcomes.dead_letters)

        # After the commit and before the ack: a failed send gives the original back (it is stored once,
        # and escalated again); an escalation sent twice is stored once by the bigger tier.
        for row in outcomes.results:
            if self.escalate is None or row["review_status"] != "needs_review":
                continue
            try:
                self.escalate(by_id[row["message_id"]])
                report.escalated += 1
            except Exception as error:
                log.error("could not escalate %s: %r", row["message_id"], error)
                report.requeue.append(row["message_id"])

        for envelope in retry_later:
            next_attempt = envelope.attempt + 1
            delay = backoff_delay(next_attempt, self.settings.retry_backoff_seconds, self.settings.retry_backoff_max_seconds)
            try:
                self.republish(envelope, next_attempt, delay)
                report.retried += 1
            except Exception as error:  # the broker is down too: give the original back instead
                log.error("could not schedule retry of %s: %r", envelope.message_id, error)
                report.requeue.append(envelope.message_id)
        metrics.record_batch(kind.value, len(envelopes),
                             {"validate": validated - started, "pipeline": piped - validated,
                              "persist": persisted - piped, "total": time.perf_counter() - started},
                             {"stored": len(outcomes.results), "rejected": report.rejected,
                              "dead_lettered": report.dead_lettered, "retried": report.retried,
                              "requeued": len(report.requeue)})
        return report

    def _stats_row(self, started_at: datetime, marks: tuple[tuple[float, float, float], tuple[float, float, float]],
                   size: int, valid: list[tuple[Envelope, BaseModel]], succeeded: list[tuple[Any, Any]], failed: int,
                   outcomes: Outcomes) -> Callable[[], dict[str, Any]]:
        """The batch's row of ``batch_stats`` (``slimline report``), made when the store writes it: persist
        timings run until then. Results that carry a ``language`` are counted per language; input characters
        are those of each valid item as JSON (what a prompt to a hosted model would carry)."""
        (started, validated, piped), (started_cpu, validated_cpu, piped_cpu) = marks
        chars = {envelope.message_id: len(item.model_dump_json()) for envelope, item in valid}
        languages: dict[str, dict[str, int]] = {}
        for (envelope, _), outcome in succeeded:
            language = outcome.get("language") if isinstance(outcome, dict) else None
            if isinstance(language, str):
                counts = languages.setdefault(language[:20], {"items": 0, "input_chars": 0})
                counts["items"] += 1
                counts["input_chars"] += chars[envelope.message_id]

        def row() -> dict[str, Any]:
            now, now_cpu = time.perf_counter(), time.process_time()
            return {"kind": self.pipeline.kind.value, "tier": self.pipeline.tier, "model": self.pipeline.model,
                    "model_version": self.pipeline.model_version, "worker": self.worker, "started_at": started_at,
                    "size": size, "results": len(outcomes.results), "rejected": len(outcomes.rejections),
                    "failed": failed, "input_chars": sum(chars.values()),
                    "validate_seconds": validated - started, "pipeline_seconds": piped - validated,
                    "persist_seconds": now - piped, "total_seconds": now - started,
                    "validate_cpu_seconds": validated_cpu - started_cpu, "pipeline_cpu_seconds": piped_cpu - validated_cpu,
                    "persist_cpu_seconds": now_cpu - piped_cpu, "cpu_seconds": now_cpu - started_cpu,
                    "languages": languages or None}

        return row

    def _reply(self, outcomes: Outcomes, by_id: dict[str, Envelope]) -> None:
        """After the commit: the outcome of every item whose caller waits for it. A reply that cannot be
        pushed is lost (the caller's deadline passes; the outcome is stored)."""
        if self.reply is None:
            return
        waiting = [(reply_to, make(row)) for rows, make in ((outcomes.results, replies.stored),
                                                            (outcomes.rejections, replies.rejected),
                                                            (outcomes.dead_letters, replies.failed))
                   for row in rows
                   if (envelope := by_id.get(row["message_id"])) is not None and (reply_to := envelope.reply_to)]
        if not waiting:
            return
        try:
            self.reply(waiting)
        except Exception as error:  # noqa: BLE001 - the outcomes are stored; only the waiting callers miss them
            log.warning("could not reply to %d waiting caller(s): %s", len(waiting), type(error).__name__)

    def _versioned_row(self, envelope: Envelope, item: BaseModel, result: dict[str, Any], batch_size: int,
                       seconds: float) -> dict[str, Any]:
        """A result as the next version of the item's outcome (see workers.db.models.Result). A result
        that waits for a person (it has a review status) keeps the item it was made from, under ``input``:
        the reviewer reads the document's text, the product's facts, the flagged payment."""
        result = dict(result)
        review_status = result.pop("review_status", None)
        if review_status is not None:
            result["input"] = item.model_dump(mode="json")
        return {
            "item_id": item.id,  # type: ignore[attr-defined]
            "content_hash": envelope.content_hash(),
            "tier": self.pipeline.tier,
            "review_status": review_status,
            "result": storable_json(result),
            "sent_at": envelope.sent_at,
            "model": self.pipeline.model,
            "model_version": self.pipeline.model_version,
            "batch_size": batch_size,
            "batch_seconds": round(seconds, 6),
            "attempt": envelope.attempt,
            "message_id": envelope.message_id,
            "producer": envelope.producer,
            "worker": self.worker,
        }

    def _save(self, outcomes: Outcomes, by_id: dict[str, Envelope]) -> None:
        """Save the batch in one transaction; if the database refuses it (not merely unreachable),
        save item by item and turn the refused items into dead letters."""
        kind = self.pipeline.kind
        try:
            self.store.save(kind, outcomes)
            return
        except Exception as error:
            if is_transient_database_error(error):
                raise
            log.error("batch save refused, saving item by item: %r", error)
        for table in ("results", "rejections", "dead_letters"):
            for row in getattr(outcomes, table):
                single = Outcomes(**{table: [row]})
                try:
                    self.store.save(kind, single)
                except Exception as error:
                    if is_transient_database_error(error):
                        raise
                    log.error("database refused the outcome of %s: %r", row["message_id"], error)
                    dead = dead_letter_row(kind, by_id[row["message_id"]], error)
                    self.store.save(kind, Outcomes(dead_letters=[dead]))
        try:
            self.store.save(kind, Outcomes(batch_stats=outcomes.batch_stats))
        except Exception as error:
            if is_transient_database_error(error):
                raise
            log.error("database refused the batch's statistics: %r", error)
