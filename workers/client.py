"""The Python producer: validate, sign, then enqueue. Other languages use the wire contract (README) and
sign as docs/signing.md shows."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis
from celery import Celery
from pydantic import ValidationError

from schemas import INPUT_MODELS, ItemError, Kind
from workers.runtime.names import QUEUES
from workers.runtime.envelope import errors_from_validation
from workers.runtime.publish import Signer, send_item
from workers.runtime.storable import storable_json, storable_text
from workers.settings import Settings, get_settings

if TYPE_CHECKING:
    from workers.db.store import OutcomeStore

# Back-pressure is checked once per chunk, not per message.
_CHUNK = 500


class QueueFull(RuntimeError):
    """The queue holds more than ``SLIMLINE_MAX_QUEUE_LENGTH`` messages: slow down and try later.
    ``report`` tells what was enqueued before the queue was found full (resending those ids is harmless)."""

    def __init__(self, message: str, report: EnqueueReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class RejectedItem:
    position: int  # 1-based line number or list position
    item_id: str | None
    errors: list[ItemError]


@dataclass
class EnqueueReport:
    kind: Kind
    accepted: int = 0
    rejected: list[RejectedItem] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    recorded: bool = False  # the enqueue and its rejections are in the database

    @property
    def exit_code(self) -> int:
        """0 all accepted, 4 some rejected, 5 none accepted (see README, "Exit codes")."""
        if not self.rejected:
            return 0
        return 4 if self.accepted else 5


def check_item(kind: Kind, item: Any, settings: Settings) -> list[ItemError]:
    if not isinstance(item, dict):
        return [ItemError(field="payload", reason=f"expected a JSON object, got {type(item).__name__}")]
    try:
        INPUT_MODELS[kind].model_validate(item, context={"max_document_chars": settings.max_document_chars})
    except ValidationError as error:
        return errors_from_validation(error)
    return []


@dataclass
class Producer:
    """One producer identity: validates items, checks back-pressure, signs and enqueues them, and records the
    rejected ones. ``workers.client.enqueue`` is this process's own producer (SLIMLINE_PRODUCER_ID and its key);
    the HTTP gateway keeps one per producer its API keys map to."""

    app: Celery
    settings: Settings
    producer_id: str
    signer: Signer | None  # None: unsigned (only unsigned workers accept it)
    store: OutcomeStore | None = None  # where rejections are recorded; None: opened for each record
    publish_options: dict[str, Any] = field(default_factory=dict)  # e.g. the gateway's retry policy

    @classmethod
    def from_settings(cls, settings: Settings | None = None, app: Celery | None = None) -> Producer:
        settings = settings or get_settings()
        if app is None:
            from tasks.app import app
        return cls(app, settings, settings.producer_id, Signer.for_producer(settings))

    def enqueue(self, kind: Kind, items: Iterable[Any | RejectedItem], *, queue: str | None = None,
                reply_to: str | None = None, on_progress: Callable[[int], None] | None = None,
                record: bool = True) -> EnqueueReport:
        """Validate each item and send the good ones to ``queue`` (default: the kind's); bad ones are reported,
        not sent. ``items`` may contain :class:`RejectedItem` placeholders for input that could not even be
        parsed (the CLI's bad JSON lines): they are counted as rejected, in order. ``reply_to``: a reply key
        (workers/runtime/replies.py) where the workers push each item's outcome once it is committed.
        ``record=False`` leaves recording the rejections to the caller (:meth:`record`)."""
        queue = queue or QUEUES[kind]
        report = EnqueueReport(kind=kind)
        kwargs = {"producer": self.producer_id} | ({"reply_to": reply_to} if reply_to else {})
        with self.app.producer_or_acquire() as producer:
            for position, item in enumerate(items, start=1):
                if isinstance(item, RejectedItem):
                    report.rejected.append(item)
                elif errors := check_item(kind, item, self.settings):
                    report.rejected.append(RejectedItem(position, _id_of(item), errors))
                else:
                    if report.accepted % _CHUNK == 0:
                        _check_back_pressure(producer.channel.client, queue, self.settings, report)
                    # declare=[]: one LPUSH, all a producer's Redis user may do (`slimline redis-acl`).
                    report.task_ids.append(send_item(self.app, kind, item, kwargs, queue, signer=self.signer,
                                                     producer=producer, declare=[], **self.publish_options))
                    report.item_ids.append(item["id"])
                    report.accepted += 1
                if on_progress:
                    on_progress(1)
        if record:
            self.record(report)
        return report

    def record(self, report: EnqueueReport) -> bool:
        """The rejected items go to the rejections table (source ``producer``), so ``slimline status`` and
        ``rejections list`` show them; unsigned, who enqueued what goes to the audit log (signed, the
        workers audit the verified producer: a producer holds no audit key). Best effort: a producer need
        not reach the database, and this must never make an enqueue fail. True if recorded."""
        report.recorded = _record(self, report)
        return report.recorded


def enqueue(
    kind: Kind,
    items: Iterable[Any | RejectedItem],
    *,
    app: Celery | None = None,
    settings: Settings | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> EnqueueReport:
    """Validate each item and send the good ones as this process's producer; bad ones are reported, not sent
    (:meth:`Producer.enqueue`)."""
    return Producer.from_settings(settings, app).enqueue(kind, items, on_progress=on_progress)


def enqueue_documents(documents: Iterable[dict[str, Any]], **options: Any) -> EnqueueReport:
    return enqueue(Kind.documents, documents, **options)


def enqueue_transactions(transactions: Iterable[dict[str, Any]], **options: Any) -> EnqueueReport:
    return enqueue(Kind.transactions, transactions, **options)


def enqueue_products(products: Iterable[dict[str, Any]], **options: Any) -> EnqueueReport:
    return enqueue(Kind.products, products, **options)


def _id_of(item: Any) -> str | None:
    return item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None


def _check_back_pressure(client: redis.Redis, queue: str, settings: Settings, report: EnqueueReport) -> None:
    length = int(client.llen(queue))
    if length >= settings.max_queue_length:
        raise QueueFull(
            f"queue {queue!r} holds {length} messages (limit SLIMLINE_MAX_QUEUE_LENGTH="
            f"{settings.max_queue_length}); wait for workers to catch up and retry", report)


def _record(producer: Producer, report: EnqueueReport) -> bool:
    from workers.db.engine import schema_is_current
    from workers.db.store import Outcomes, OutcomeStore

    signed, kind = producer.signer is not None, report.kind
    if signed and not report.rejected:
        return True
    try:
        store = producer.store
        if store is None:
            url = producer.settings.database_url.get_secret_value()
            if not schema_is_current(url):
                return False
            store = OutcomeStore.from_url(url)
        if not signed:
            store.audit(producer.producer_id, "enqueue", kind,
                        {"accepted": report.accepted, "rejected": len(report.rejected)})
        if report.rejected:
            store.save_rejections(Outcomes(rejections=[_rejection_row(producer.producer_id, kind, item)
                                                       for item in report.rejected]))
        if store is not producer.store:
            store.engine.dispose()
        return True
    except Exception:  # noqa: BLE001
        return False


def _rejection_row(producer_id: str, kind: Kind, item: RejectedItem) -> dict[str, Any]:
    return {"message_id": f"producer:{uuid.uuid4()}", "kind": kind.value, "source": "producer",
            "item_id": storable_text(item.item_id, 200) if item.item_id else None,
            "producer": storable_text(producer_id, 200),
            "field": storable_text(item.errors[0].field, 200), "reason": storable_text(item.errors[0].reason, 2000),
            "errors": storable_json([error.model_dump() for error in item.errors]),
            "payload_excerpt": f"input position {item.position}"}
