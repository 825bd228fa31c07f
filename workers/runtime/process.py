"""Per-process worker state: models and database engine are built after the fork, once, and
warmed up; the batch task borrows them."""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from celery.signals import worker_process_init, worker_process_shutdown
from celery_batches import SimpleRequest

from schemas import Kind
from workers.runtime.batching import BatchRunner
from workers.db.store import OutcomeStore
from workers.runtime.envelope import Envelope
from workers.settings import get_settings

log = logging.getLogger(__name__)
_runners: dict[Kind, BatchRunner] = {}


def _build_pipeline(kind: Kind):  # type: ignore[no-untyped-def]
    settings = get_settings()
    if kind is Kind.documents:
        from workers.documents.pipeline import build_document_pipeline

        return build_document_pipeline(settings)
    raise NotImplementedError(f"no pipeline for {kind.value} yet")


def _republish(kind: Kind):  # type: ignore[no-untyped-def]
    def republish(envelope: Envelope, attempt: int, delay: float) -> None:
        from tasks.app import app
        from workers.client import send_item

        kwargs = {"attempt": attempt} | ({"producer": envelope.producer} if envelope.producer else {})
        # Same task id: every attempt of an item shares one key in the outcome tables.
        send_item(app, kind, envelope.payload, kwargs, task_id=envelope.message_id, countdown=delay)

    return republish


def runner(kind: Kind) -> BatchRunner:
    if kind not in _runners:
        settings = get_settings()
        pipeline = _build_pipeline(kind)
        store = OutcomeStore.from_url(settings.database_url.get_secret_value())
        _runners[kind] = BatchRunner(pipeline, store, _republish(kind), settings)
        timings = pipeline.warm_up()
        log.info("%s pipeline ready (%s %s), warm-up: %s", kind.value, pipeline.model, pipeline.model_version,
                 {name: f"{seconds * 1000:.1f} ms" for name, seconds in timings.items()})
    return _runners[kind]


def run_batch(kind: Kind, requests: list[SimpleRequest]) -> dict[str, Any]:
    envelopes = [Envelope(request.id, request.args, request.kwargs) for request in requests]
    return runner(kind).run_safely(envelopes).as_dict()


@worker_process_init.connect
def _load_models_after_fork(**_: Any) -> None:
    """Load the models of the queues this worker consumes, in the child, after the fork."""
    from tasks.app import app

    consumed = app.conf.get("slimline_consumed_kinds") or []
    try:
        for kind in consumed:
            runner(Kind(kind))
    except Exception:
        # Celery would log this and carry on with a worker that fails every batch: stop it instead.
        log.critical("could not load the models; stopping the worker", exc_info=True)
        os.kill(os.getppid(), signal.SIGTERM)
        raise


@worker_process_shutdown.connect
def _dispose(**_: Any) -> None:
    for batch_runner in _runners.values():
        batch_runner.store.engine.dispose()
