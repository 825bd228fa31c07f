"""celery-batches' ``Batches``, with acknowledgement per message instead of per batch.

celery-batches acks every message of a batch once the batch function returns, even if it
raised. Here the batch function returns a report, and only messages whose outcome is stored
(or whose retry is enqueued) are acked; the rest are given back to the queue at once. If the
pool process dies, the whole batch goes back too.

It also survives a broker reconnect: celery-batches keeps a flush timer from the old connection
that never fires again, so items delivered afterwards would wait for a full batch (or for the
visibility timeout) before being processed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from datetime import datetime, timezone
from typing import Any

from celery.worker.request import Request
from celery.app import Celery
from celery.exceptions import InvalidTaskError
from celery.worker.consumer import Consumer
from celery_batches import Batches, SimpleRequest, consume_queue
from celery_batches.trace import apply_batches_task

log = logging.getLogger(__name__)


MESSAGE_ID = re.compile(r"^[\x21-\x7e]{1,64}$")


def check_task_message(headers: Any, body: Any, max_eta_seconds: float) -> None:
    """Refuse what would crash or stall the consumer (raising InvalidTaskError makes Celery record
    and reject the message): a protocol-2 message needs string ``task`` and ``id`` headers, a body
    ``[args, kwargs, embed]``, and an ``eta``, if any, within ``max_eta_seconds`` (a message held
    longer than the visibility timeout would be delivered again while held)."""
    if not isinstance(headers, dict) or not isinstance(headers.get("task"), str):
        raise InvalidTaskError("not a Celery protocol 2 message (no task header)")
    if not isinstance(headers.get("id"), str) or not MESSAGE_ID.match(headers["id"]):
        raise InvalidTaskError("header id must be 1 to 64 printable ASCII characters")
    eta = headers.get("eta")
    if eta is not None:
        try:
            when = datetime.fromisoformat(eta)
        except (TypeError, ValueError):
            raise InvalidTaskError(f"header eta is not an ISO 8601 time: {eta!r}"[:200]) from None
        when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        if (when - datetime.now(timezone.utc)).total_seconds() > max_eta_seconds:
            raise InvalidTaskError(f"header eta is more than {max_eta_seconds:.0f} s ahead")
    if not (isinstance(body, (list, tuple)) and len(body) == 3 and isinstance(body[0], (list, tuple))
            and isinstance(body[1], dict) and isinstance(body[2], (dict, type(None)))):
        raise InvalidTaskError(f"task body must be [args, kwargs, embed], got {type(body).__name__}")
    if isinstance(body[2], dict) and (linked := sorted(key for key, value in body[2].items() if value)):
        raise InvalidTaskError(f"task body links other tasks ({', '.join(linked)[:100]}): refused")


class AckPerMessageBatches(Batches):
    abstract = True

    def Strategy(self, task: Batches, app: Celery, consumer: Consumer) -> Any:  # noqa: N802 (Celery's name)
        """Called at every consumer (re)start. Requests still buffered belong to a closed channel and
        kombu has already returned their messages to the queue, so they are dropped, not processed."""
        stale = len(list(consume_queue(self._buffer))) + len(list(consume_queue(self._pending)))
        if stale:
            log.warning("consumer restarted: %d buffered message(s) will be redelivered", stale)
        if self._tref is not None:
            self._tref.cancel()
        self._tref = None
        handle = super().Strategy(task, app, consumer)
        settings = app.conf.slimline_settings
        max_eta_seconds = settings.retry_backoff_max_seconds + settings.visibility_timeout_seconds / 4

        def handle_well_formed(message: Any, body: Any, *args: Any, **kwargs: Any) -> Any:
            check_task_message(message.headers, message.payload if body is None else body, max_eta_seconds)
            return handle(message, body, *args, **kwargs)

        return handle_well_formed

    def flush(self, requests: Collection[Request]) -> Any:
        requests = list(requests)
        serializable = ([SimpleRequest.from_request(request) for request in requests],)

        def on_return(report: Any) -> None:
            try:
                requeue = set(report["requeue"])
            except (TypeError, KeyError):  # the batch function raised: nothing is known to be stored
                log.error("batch of %d ended without a report; returning it to the queue", len(requests))
                requeue = {request.id for request in requests}
            for request in requests:
                if request.id in requeue:
                    request.reject(requeue=True)
                else:
                    request.acknowledge()

        def on_error(error: Any) -> None:
            log.error("batch of %d lost its pool process (%r); returning it to the queue", len(requests), error)
            for request in requests:
                request.reject(requeue=True)

        return self._pool.apply_async(
            apply_batches_task,
            (self, serializable, 0, None),
            callback=on_return,
            error_callback=on_error,
        )
