"""celery-batches' ``Batches``, with acknowledgement per message instead of per batch.

celery-batches acks every message of a batch once the batch function returns, even if it
raised. Here the batch function returns a report, and only messages whose outcome is stored
(or whose retry is enqueued) are acked; the rest are given back to the queue at once. If the
pool process dies, the whole batch goes back too.

When a batch is sent to the pool: celery-batches flushes on a timer and whenever the buffer is full,
even while every pool process is busy, so a short wait queues many tiny batches behind one another
and their fixed cost caps throughput. Here the timer flushes only while a pool process is free (the
wait, ``max_wait_seconds``, is then the latency added to gather a batch), and a returning batch sends
the next one at once, with everything that arrived meanwhile: batches grow with the load by
themselves. A full buffer is still sent at once. The acknowledgements of a batch travel to Redis in
one round trip, after the next batch has been sent.

It also survives a broker reconnect: celery-batches keeps a flush timer from the old connection
that never fires again, so items delivered afterwards would wait for a full batch (or for the
visibility timeout) before being processed. And at a reconnect Celery flushes the pool: a batch sent
to it that no process had started is discarded without a callback, so batches in the pool are
counted from their results, not by callbacks alone (tests/test_sentinel_failover.py found a worker
that, counting one discarded batch as running, flushed only full buffers after a failover).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from datetime import datetime, timezone
from typing import Any

from celery.worker import state as worker_state
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
    _in_pool: set[Any] = set()  # results of the batches sent to the pool, of every batch task (one pool)

    def _pool_has_a_free_process(self) -> bool:
        processes = getattr(self._pool, "num_processes", None) or getattr(self._pool, "limit", None) or 1
        return len(AckPerMessageBatches._in_pool) < processes

    def _do_flush(self) -> None:
        """The timer's and the full buffer's flush: only to a free process, unless the buffer is full."""
        if self._pool_has_a_free_process() or self._buffer.qsize() >= self.flush_every:
            super()._do_flush()

    def _flush_after_return(self) -> None:
        if worker_state.should_stop is None and worker_state.should_terminate is None and \
                (self._buffer.qsize() or self._pending.qsize()):
            self._do_flush()

    def Strategy(self, task: Batches, app: Celery, consumer: Consumer) -> Any:  # noqa: N802 (Celery's name)
        """Called at every consumer (re)start. Requests still buffered belong to a closed channel and
        kombu has already returned their messages to the queue, so they are dropped, not processed."""
        stale = len(list(consume_queue(self._buffer))) + len(list(consume_queue(self._pending)))
        # The restart flushed the pool (Consumer.on_close): batches no process had accepted are gone, uncalled.
        AckPerMessageBatches._in_pool = {result for result in AckPerMessageBatches._in_pool if result.accepted()}
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
        sent: list[Any] = []  # this batch's result, once the pool has it
        returned: list[bool] = []

        def leave_pool() -> None:
            returned.append(True)
            AckPerMessageBatches._in_pool.difference_update(sent)

        def on_return(report: Any) -> None:
            leave_pool()
            self._flush_after_return()  # the pool process is not left idle while this batch is settled
            try:
                requeue = set(report["requeue"])
            except (TypeError, KeyError):  # the batch function raised: nothing is known to be stored
                log.error("batch of %d ended without a report; returning it to the queue", len(requests))
                requeue = {request.id for request in requests}
            _acknowledge([request for request in requests if request.id not in requeue])
            for request in requests:
                if request.id in requeue:
                    request.reject(requeue=True)

        def on_error(error: Any) -> None:
            leave_pool()
            log.error("batch of %d lost its pool process (%r); returning it to the queue", len(requests), error)
            for request in requests:
                request.reject(requeue=True)
            self._flush_after_return()

        result = self._pool.apply_async(
            apply_batches_task,
            (self, serializable, 0, None),
            callback=on_return,
            error_callback=on_error,
        )
        if not returned:  # (a pool that runs it at once has called back already)
            sent.append(result)
            AckPerMessageBatches._in_pool.add(result)
        return result


def _acknowledge(requests: list[Request]) -> None:
    """Acknowledge in one round trip to Redis. If it fails, the messages stay unacknowledged there and
    are delivered again after the visibility timeout; their outcomes are stored once."""
    if not requests:
        return
    qos = requests[0].message.channel.qos
    try:
        with qos.acks_in_one_round_trip():
            for request in requests:  # not request.acknowledge(): Celery defers that call, one round trip each
                if not request.acknowledged:
                    request.message.ack()
                    request.acknowledged = True
    except Exception as error:  # noqa: BLE001 - a broker error; the consumer must go on
        log.error("could not acknowledge %d stored message(s) (%s); they come back after the visibility "
                  "timeout and are not stored twice", len(requests), type(error).__name__)
