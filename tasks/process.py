"""``slimline.<kind>.process``: one batch task per kind of work that has a pipeline."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery_batches import SimpleRequest

from schemas import Kind
from workers.runtime.batch_task import AckPerMessageBatches
from workers.runtime.names import QUEUES, TASK_NAMES
from workers.pipelines import PIPELINE_KINDS
from workers.runtime.process import run_batch
from workers.settings import Settings


def register_batch_tasks(app: Celery, settings: Settings) -> None:
    for kind in PIPELINE_KINDS:
        _register(app, kind, settings)


def _register(app: Celery, kind: Kind, settings: Settings) -> None:
    policy = settings.batch_policy(kind)

    @app.task(base=AckPerMessageBatches, name=TASK_NAMES[kind], queue=QUEUES[kind],
              flush_every=policy.max_batch_size, flush_interval=policy.max_wait_seconds,
              acks_late=True, ignore_result=True)
    def process(requests: list[SimpleRequest]) -> dict[str, Any]:
        return run_batch(app, kind, requests)
