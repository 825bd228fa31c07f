"""Per-process worker state: each pool process builds the pipelines of the queues its worker consumes
after the fork, once, warms them up, and the batch tasks borrow them."""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

from celery import Celery
from celery_batches import SimpleRequest

from schemas import Kind
from workers.db.store import OutcomeStore
from workers.models.integrity import ModelIntegrityError
from tasks.names import ESCALATION_QUEUES
from workers.pipelines import ESCALATING_KINDS, build_pipeline
from workers.runtime import metrics
from workers.runtime.batching import BatchRunner, Escalate, Republish
from workers.runtime.envelope import Envelope
from workers.runtime.publish import send_item
from workers.settings import get_settings

log = logging.getLogger(__name__)
_runners: dict[Kind, BatchRunner] = {}


def _republisher(app: Celery, kind: Kind) -> Republish:
    def republish(envelope: Envelope, attempt: int, delay: float) -> None:
        kwargs = {key: value for key, value in envelope.kwargs.items() if key in ("producer", "sent_at")}
        # Same task id: every attempt of an item shares one key in the outcome tables.
        send_item(app, kind, envelope.payload, kwargs | {"attempt": attempt}, task_id=envelope.message_id,
                  countdown=delay)

    return republish


def _escalator(app: Celery, kind: Kind) -> Escalate:
    def escalate(envelope: Envelope) -> None:
        kwargs = {key: value for key, value in envelope.kwargs.items() if key in ("producer", "sent_at")}
        send_item(app, kind, envelope.payload, kwargs, queue=ESCALATION_QUEUES[kind])

    return escalate


def runner(app: Celery, kind: Kind) -> BatchRunner:
    if kind not in _runners:
        settings = get_settings()
        started = time.perf_counter()
        pipeline = build_pipeline(kind, settings, tier=app.conf.get("slimline_tier") or "compact")
        store = OutcomeStore.from_url(settings.database_url.get_secret_value())
        escalate = _escalator(app, kind) if pipeline.tier == "compact" and kind in ESCALATING_KINDS else None
        _runners[kind] = BatchRunner(pipeline, store, _republisher(app, kind), settings, escalate)
        load_seconds = time.perf_counter() - started
        timings = pipeline.warm_up()
        metrics.record_pipeline_ready(kind.value, load_seconds, timings)
        log.info("%s pipeline ready (%s %s, tier %s), warm-up: %s", kind.value, pipeline.model,
                 pipeline.model_version, pipeline.tier,
                 {name: f"{seconds * 1000:.1f} ms" for name, seconds in timings.items()})
    return _runners[kind]


def run_batch(app: Celery, kind: Kind, requests: list[SimpleRequest]) -> dict[str, Any]:
    envelopes = [Envelope(request.id, request.args, request.kwargs) for request in requests]
    report = runner(app, kind).run_safely(envelopes)
    log.info(report.log_line(kind.value))
    return report.as_dict()


def load_pipelines(app: Celery) -> None:
    """In a freshly forked pool process: build the pipelines of the consumed queues, or stop the worker
    (Celery would log the error and carry on with a worker that fails every batch)."""
    try:
        for kind in app.conf.get("slimline_consumed_kinds") or []:
            runner(app, Kind(kind))
    except ModelIntegrityError as error:  # expected: one line that says which file, no traceback
        log.critical("refusing to load a model: %s; stopping the worker", error)
        os.kill(os.getppid(), signal.SIGTERM)
        raise SystemExit(1) from None
    except Exception:
        log.critical("could not load the models; stopping the worker", exc_info=True)
        os.kill(os.getppid(), signal.SIGTERM)
        raise


def dispose() -> None:
    for batch_runner in _runners.values():
        batch_runner.store.engine.dispose()
