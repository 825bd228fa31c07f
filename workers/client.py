"""The Python producer: validate, then enqueue. Other languages use the wire contract (README)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis
from celery import Celery
from pydantic import ValidationError

from schemas import INPUT_MODELS, ItemError, Kind
from tasks.names import QUEUES, TASK_NAMES
from workers.runtime.envelope import errors_from_validation
from workers.settings import Settings, get_settings

# Back-pressure is checked once per chunk, not per message.
_CHUNK = 500


class QueueFull(RuntimeError):
    """The queue holds more than ``SLIMLINE_MAX_QUEUE_LENGTH`` messages: slow down and try later."""


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


def check_item(kind: Kind, item: Any, settings: Settings) -> list[ItemError]:
    if not isinstance(item, dict):
        return [ItemError(field="payload", reason=f"expected a JSON object, got {type(item).__name__}")]
    try:
        INPUT_MODELS[kind].model_validate(item, context={"max_document_chars": settings.max_document_chars})
    except ValidationError as error:
        return errors_from_validation(error)
    return []


def enqueue(
    kind: Kind,
    items: Iterable[Any | RejectedItem],
    *,
    app: Celery | None = None,
    settings: Settings | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> EnqueueReport:
    """Validate each item and send the good ones; bad ones are reported, not sent.

    ``items`` may contain :class:`RejectedItem` placeholders for input that could not even be
    parsed (the CLI's bad JSON lines): they are counted as rejected, in order.
    """
    settings = settings or get_settings()
    if app is None:
        from tasks.app import app
    report = EnqueueReport(kind=kind)
    kwargs = {"producer": settings.producer_id}
    with app.producer_or_acquire() as producer:
        for position, item in enumerate(items, start=1):
            if isinstance(item, RejectedItem):
                report.rejected.append(item)
            elif errors := check_item(kind, item, settings):
                report.rejected.append(RejectedItem(position, _id_of(item), errors))
            else:
                if report.accepted % _CHUNK == 0:
                    _check_back_pressure(producer.channel.client, kind, settings)
                report.task_ids.append(send_item(app, kind, item, kwargs, producer=producer))
                report.accepted += 1
            if on_progress:
                on_progress(1)
    _audit(settings, kind, report)
    return report


def send_item(app: Celery, kind: Kind, payload: Any, kwargs: dict[str, Any], **options: Any) -> str:
    """Publish one item. Celery copies arguments into a readable header (``argsrepr``) that monitoring
    tools display; it is replaced by the item's id so documents never leak into dashboards or logs."""
    item_id = payload.get("id") if isinstance(payload, dict) else None
    result = app.send_task(TASK_NAMES[kind], args=[payload], kwargs=kwargs, queue=QUEUES[kind],
                           argsrepr=f"[<{kind.value[:-1]} {item_id!r}>]", kwargsrepr=repr(kwargs), **options)
    return str(result.id)


def enqueue_documents(documents: Iterable[dict[str, Any]], **options: Any) -> EnqueueReport:
    return enqueue(Kind.documents, documents, **options)


def enqueue_transactions(transactions: Iterable[dict[str, Any]], **options: Any) -> EnqueueReport:
    return enqueue(Kind.transactions, transactions, **options)


def enqueue_products(products: Iterable[dict[str, Any]], **options: Any) -> EnqueueReport:
    return enqueue(Kind.products, products, **options)


def _id_of(item: Any) -> str | None:
    return item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None


def _check_back_pressure(client: redis.Redis, kind: Kind, settings: Settings) -> None:
    length = int(client.llen(QUEUES[kind]))
    if length >= settings.max_queue_length:
        raise QueueFull(
            f"queue {QUEUES[kind]!r} holds {length} messages (limit SLIMLINE_MAX_QUEUE_LENGTH="
            f"{settings.max_queue_length}); wait for workers to catch up and retry"
        )


def _audit(settings: Settings, kind: Kind, report: EnqueueReport) -> None:
    """Who enqueued what, in the audit log (best effort: producers need not reach the database)."""
    from workers.db.store import OutcomeStore

    try:
        store = OutcomeStore.from_url(settings.database_url.get_secret_value())
        store.audit(settings.producer_id, "enqueue", kind,
                    {"accepted": report.accepted, "rejected": len(report.rejected)})
        store.engine.dispose()
    except Exception:  # noqa: BLE001 - the audit must never make an enqueue fail
        pass
