"""``slimline.documents.process``: documents in micro-batches → entities and language in the database."""

from __future__ import annotations

from typing import Any

from celery_batches import SimpleRequest

from schemas import Kind
from tasks.app import app
from tasks.batch_task import AckPerMessageBatches
from tasks.names import QUEUES, TASK_NAMES
from workers.runtime.process import run_batch

_policy = app.conf.slimline_settings.batch_policy(Kind.documents)


@app.task(
    base=AckPerMessageBatches,
    name=TASK_NAMES[Kind.documents],
    queue=QUEUES[Kind.documents],
    flush_every=_policy.max_batch_size,
    flush_interval=_policy.max_wait_seconds,
    acks_late=True,
    ignore_result=True,
)
def process_documents(requests: list[SimpleRequest]) -> dict[str, Any]:
    return run_batch(Kind.documents, requests)
