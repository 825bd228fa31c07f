"""Publishing one item as a Celery task message: the producer's and the runtime's (retries) one path."""

from __future__ import annotations

import time
from typing import Any

from celery import Celery

from schemas import Kind
from tasks.names import QUEUES, TASK_NAMES


def send_item(app: Celery, kind: Kind, payload: Any, kwargs: dict[str, Any], queue: str | None = None,
              **options: Any) -> str:
    """Publish one item. Celery copies arguments into a readable header (``argsrepr``) that monitoring
    tools display; it is replaced by the item's id so documents never leak into dashboards or logs.
    ``sent_at`` (epoch seconds) is set unless the caller keeps the original one (a retry)."""
    item_id = payload.get("id") if isinstance(payload, dict) else None
    kwargs = {"sent_at": round(time.time(), 6)} | kwargs
    result = app.send_task(TASK_NAMES[kind], args=[payload], kwargs=kwargs, queue=queue or QUEUES[kind],
                           argsrepr=f"[<{kind.value[:-1]} {item_id!r}>]", kwargsrepr=repr(kwargs),
                           headers={"slimline_sent_at": kwargs["sent_at"]}, **options)
    return str(result.id)
