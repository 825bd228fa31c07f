"""Celery's consumer, recording a rejection for every message it refuses before a task sees it:
pickled or otherwise disallowed content, bodies that do not decode, unknown task names."""

from __future__ import annotations

import hashlib
import logging
from functools import cached_property
from typing import Any

from celery.worker.consumer import Consumer
from kombu.exceptions import ContentDisallowed

from schemas import ItemError
from workers.runtime.batching import rejection_row
from workers.db.store import Outcomes, OutcomeStore
from workers.runtime.envelope import Envelope
from workers.settings import get_settings
from workers.runtime.storable import storable_text
from workers.runtime.batch_task import MESSAGE_ID
from workers.runtime.names import TASK_NAMES

log = logging.getLogger(__name__)


def _message_id(message: Any) -> str:
    headers = message.headers or {}
    if isinstance(headers, dict) and isinstance(headers.get("id"), str) and MESSAGE_ID.match(headers["id"]):
        return headers["id"]
    # No usable id: key by the message itself (its delivery tag is unique, and kept on redelivery).
    digest = hashlib.sha256()
    digest.update(repr(message.delivery_tag).encode())
    digest.update(repr(headers).encode("utf-8", "backslashreplace"))
    body = message.body if isinstance(message.body, bytes) else str(message.body).encode("utf-8", "backslashreplace")
    digest.update(body)
    return "sha256:" + digest.hexdigest()[:57]


def _kind_of(message: Any) -> str:
    """``documents`` for ``slimline.documents.process``; otherwise the task name as sent."""
    headers = message.headers if isinstance(message.headers, dict) else {}
    task = str(headers.get("task") or "unknown")
    for kind, name in TASK_NAMES.items():
        if task == name:
            return kind.value
    return storable_text(task, 40)


class RecordingConsumer(Consumer):
    @cached_property
    def _store(self) -> OutcomeStore:
        return OutcomeStore.from_url(get_settings().database_url.get_secret_value())

    def _record(self, message: Any, field: str, reason: str) -> bool:
        """Store the rejection; False (and the message goes back to the queue) if the database failed."""
        body = message.body
        excerpt = body[:500].decode("utf-8", "replace") if isinstance(body, bytes) else str(body)[:500]
        envelope = Envelope(_message_id(message), [excerpt], {})
        row = rejection_row(_kind_of(message), envelope, [ItemError(field=field, reason=reason)])
        try:
            self._store.save_rejections(Outcomes(rejections=[row]))
            return True
        except Exception as error:  # never let bookkeeping crash the consumer
            log.error("could not record rejection of message %s, returning it to the queue: %r",
                      row["message_id"], error)
            message.reject_log_error(log, self.connection_errors, requeue=True)
            return False

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        if self._record(message, "body", f"message body could not be decoded ({message.content_type}): {exc}"):
            super().on_decode_error(message, exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        if isinstance(exc, ContentDisallowed):
            recorded = self._record(message, "content_type",
                                    f"refused {message.content_type!r} message (only JSON is accepted)")
        else:
            field = "headers" if "header" in str(exc) else "body"
            recorded = self._record(message, field, str(exc))
        if recorded:
            super().on_invalid_task(body, message, exc)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        reason = (f"unknown task {_kind_of(message)!r}: "
                  f"known tasks are {', '.join(sorted(TASK_NAMES.values()))}")
        if self._record(message, "task", reason):
            super().on_unknown_task(body, message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        if self._record(message, "headers", "not a Celery task message (no task header)"):
            super().on_unknown_message(body, message)
