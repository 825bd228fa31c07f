"""Per-process worker state: each pool process builds the pipelines of the queues its worker consumes
after the fork, once, warms them up, and the batch tasks borrow them. A lane's worker (``--lane urgent``,
workers/lifecycle/) keeps its retries in its lane."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import Any

from celery import Celery
from celery_batches import SimpleRequest

from schemas import Kind
from workers.db.store import OutcomeStore
from workers.models.integrity import ModelIntegrityError
from workers.runtime.names import ESCALATION_QUEUES, LANE_QUEUES
from workers.pipelines import ESCALATING_KINDS, build_pipeline
from workers.runtime import metrics
from workers.runtime.batching import Authentication, BatchRunner, Escalate, Republish
from workers.runtime.connection import redis_client
from workers.runtime.replies import PushReplies, redis_pusher
from workers.runtime.envelope import Envelope
from workers.runtime.heap import freeze_after_warm_up
from workers.runtime.publish import Signer, keyring_from_settings, send_item
from workers.security.model_crypto import ModelKeyError
from workers.settings import Settings, get_settings

log = logging.getLogger(__name__)
_runners: dict[Kind, BatchRunner] = {}
# Shared with the main process (created there before the fork): pool processes that have built their pipelines.
_loaded_processes: Any = None


def count_loaded_processes(counter: Any) -> Any:
    """Let the main process know, through ``counter`` (a shared ``multiprocessing.Value``), how many pool
    processes have loaded their pipelines; returns it."""
    global _loaded_processes
    _loaded_processes = counter
    return counter


def _carried(envelope: Envelope) -> dict[str, object]:
    """What the workers' own messages carry forward (and sign): the verified producer and send time."""
    kwargs: dict[str, object] = {}
    if envelope.producer is not None:
        kwargs["producer"] = envelope.producer
    if envelope.sent_at is not None:
        kwargs["sent_at"] = envelope.sent_at.timestamp()
    return kwargs


def _republisher(app: Celery, kind: Kind, signer: Signer | None, queue: str | None) -> Republish:
    def republish(envelope: Envelope, attempt: int, delay: float) -> None:
        # Same task id: every attempt of an item shares one key in the outcome tables. A lane's retries stay
        # in the lane (not behind the bulk backlog).
        send_item(app, kind, envelope.payload, _carried(envelope) | {"attempt": attempt}, queue, signer=signer,
                  task_id=envelope.message_id, countdown=delay)

    return republish


def _escalator(app: Celery, kind: Kind, signer: Signer | None) -> Escalate:
    def escalate(envelope: Envelope) -> None:
        send_item(app, kind, envelope.payload, _carried(envelope), queue=ESCALATION_QUEUES[kind], signer=signer)

    return escalate


def authentication(settings: Settings) -> tuple[Authentication | None, Signer | None]:
    """How this worker checks signatures and signs its own messages; (None, None) when signing is off
    (no keys: `slimline worker` refuses to start unless SLIMLINE_ALLOW_UNSIGNED=true)."""
    keyring = keyring_from_settings(settings)
    if not keyring:
        return None, None
    return (Authentication(keyring, settings.worker_producer_id, settings.signature_max_age_seconds),
            Signer.for_workers(settings, keyring))


def _reply_pusher(settings: Settings) -> PushReplies:
    """Replies go to the broker's Redis (short timeouts: a reply is never worth holding up a batch)."""
    return redis_pusher(redis_client(settings, socket_timeout=2, socket_connect_timeout=2))


def lane_queue(lane: str | None, kind: Kind) -> str | None:
    """The queue a worker of ``lane`` consumes for ``kind``, else None (the bulk queue)."""
    return LANE_QUEUES[lane].get(kind) if lane else None


def runner(app: Celery, kind: Kind) -> BatchRunner:
    if kind not in _runners:
        settings = get_settings()
        started = time.perf_counter()
        pipeline = build_pipeline(kind, settings, tier=app.conf.get("slimline_tier") or "compact")
        store = OutcomeStore.from_url(settings.database_url.get_secret_value(), pre_ping=False)
        checks, signer = authentication(settings)
        escalate = (_escalator(app, kind, signer) if pipeline.tier == "compact" and kind in ESCALATING_KINDS
                    else None)
        republish = _republisher(app, kind, signer, lane_queue(app.conf.get("slimline_lane"), kind)
                                 if pipeline.tier == "compact" else None)
        _runners[kind] = BatchRunner(pipeline, store, republish, settings, escalate, checks,
                                     reply=_reply_pusher(settings))
        load_seconds = time.perf_counter() - started
        _audit_model_load(app, _runners[kind])
        timings = pipeline.warm_up()
        freeze_after_warm_up()
        metrics.record_pipeline_ready(kind.value, load_seconds, timings)
        log.info("%s pipeline ready (%s %s, tier %s), warm-up: %s", kind.value, pipeline.model,
                 pipeline.model_version, pipeline.tier,
                 {name: f"{seconds * 1000:.1f} ms" for name, seconds in timings.items()})
    return _runners[kind]


def _audit_model_load(app: Celery, batch_runner: BatchRunner) -> None:
    """Which model (and, for encrypted ones, which decrypted file hashes) this process serves with."""
    pipeline = batch_runner.pipeline
    try:
        batch_runner.store.audit(batch_runner.worker, "model.load", pipeline.kind, {
            "model": pipeline.model, "model_version": pipeline.model_version, "tier": pipeline.tier,
            "decrypted_files": app.conf.get("slimline_decrypted_models") or {}})
    except Exception as error:  # noqa: BLE001 - the worker can serve; the database check at start passed
        log.error("could not audit the model load: %r", error)


def run_batch(app: Celery, kind: Kind, requests: list[SimpleRequest]) -> dict[str, Any]:
    envelopes = [Envelope(request.id, request.args, request.kwargs, headers=request.request_dict or {},
                          task_name=request.name) for request in requests]
    report = runner(app, kind).run_safely(envelopes)
    log.info(report.log_line(kind.value))
    return report.as_dict()


def load_pipelines(app: Celery) -> None:
    """In a freshly forked pool process: build the pipelines of the consumed queues, or stop the worker
    (Celery would log the error and carry on with a worker that fails every batch)."""
    try:
        for kind in app.conf.get("slimline_consumed_kinds") or []:
            runner(app, Kind(kind))
        if _loaded_processes is not None:
            with _loaded_processes.get_lock():
                _loaded_processes.value += 1
    except (ModelIntegrityError, ModelKeyError) as error:  # expected: one line that says which file, no traceback
        log.critical("refusing to load a model: %s; stopping the worker", error)
        os.kill(os.getppid(), signal.SIGTERM)
        raise SystemExit(1) from None
    except Exception:
        log.critical("could not load the models; stopping the worker", exc_info=True)
        os.kill(os.getppid(), signal.SIGTERM)
        raise


SHUTDOWN_AUDIT_SECONDS = 5.0


def dispose() -> None:
    """At pool-process exit: audit the last receipts, but never let that hold up a warm shutdown (a
    database that is locked or down would keep the whole worker from stopping)."""
    for batch_runner in _runners.values():
        if batch_runner.receipts:
            flush = threading.Thread(target=_flush_receipts, args=(batch_runner,), daemon=True)
            flush.start()
            flush.join(SHUTDOWN_AUDIT_SECONDS)
            if flush.is_alive():
                log.error("gave up auditing the last receipts after %.0fs: %s", SHUTDOWN_AUDIT_SECONDS,
                          dict(batch_runner.receipts))
        batch_runner.store.engine.dispose()


def _flush_receipts(batch_runner: BatchRunner) -> None:
    try:
        batch_runner.flush_receipts()
    except Exception as error:  # noqa: BLE001 - shutting down; the outcomes are stored
        log.error("could not audit the last receipts: %r", error)
