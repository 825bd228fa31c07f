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
from collections.abc import Collection
from typing import Any

from celery.worker.request import Request
from celery.app import Celery
from celery.exceptions import InvalidTaskError
from celery.worker.consumer import Consumer
from celery_batches import Batches, SimpleRequest, consume_queue
from celery_batches.trace import apply_batches_task

log = logging.getLogger(__name__)


def check_task_body(body: Any) -> None:
    """A protocol-2 task body is ``[args, kwargs, embed]``. Anything else would crash the consumer
    (and, redelivered, crash it again); raising InvalidTaskError makes Celery reject it instead."""
    if isinstance(body, dict) and "args" in body:  # protocol 1
        return
    if not (isinstance(body, (list, tuple)) and len(body) == 3 and isinstance(body[0], (list, tuple))
            and isinstance(body[1], dict) and isinstance(body[2], (dict, type(None)))):
        raise InvalidTaskError(f"task body must be [args, kwargs, embed], got {type(body).__name__}")


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

        def handle_well_formed(message: Any, body: Any, *args: Any, **kwargs: Any) -> Any:
            if body is None:
                check_task_body(message.payload)
            return handle(message, body, *args, **kwargs)

        return handle_well_formed

    def flush(self, requests: Collection[Request]) -> Any:
        requests = list(requests)
        serializable = ([SimpleRequest.from_request(request) for request in requests],)

        def on_return(report: Any) -> None:
            if isinstance(report, dict) and isinstance(report.get("requeue"), list):
                requeue = set(report["requeue"])
            else:  # the batch function raised: nothing is known to be stored
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
