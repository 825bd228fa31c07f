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
from workers.batching import rejection_row
from workers.db.store import Outcomes, OutcomeStore
from workers.envelope import Envelope
from workers.settings import get_settings

log = logging.getLogger(__name__)


def _message_id(message: Any) -> str:
    headers = message.headers or {}
    if isinstance(headers, dict) and isinstance(headers.get("id"), str):
        return headers["id"][:64]
    return "body-sha256:" + hashlib.sha256(message.body if isinstance(message.body, bytes) else
                                           str(message.body).encode("utf-8", "replace")).hexdigest()[:52]


def _kind_of(message: Any) -> str:
    headers = message.headers if isinstance(message.headers, dict) else {}
    task = headers.get("task")
    return str(task)[:40] if task else "unknown"


class RecordingConsumer(Consumer):
    @cached_property
    def _store(self) -> OutcomeStore:
        return OutcomeStore.from_url(get_settings().database_url.get_secret_value())

    def _record(self, message: Any, field: str, reason: str) -> None:
        body = message.body
        excerpt = body[:500].decode("utf-8", "replace") if isinstance(body, bytes) else str(body)[:500]
        envelope = Envelope(_message_id(message), [excerpt], {})
        row = rejection_row(_kind_of(message), envelope, [ItemError(field=field, reason=reason)])
        row["item_id"] = None
        try:
            self._store.save_rejections(Outcomes(rejections=[row]))
        except Exception as error:  # never let bookkeeping crash the consumer
            log.error("could not record rejection of message %s: %r", row["message_id"], error)

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        self._record(message, "body", f"message body could not be decoded ({message.content_type}): {exc}")
        super().on_decode_error(message, exc)

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        if isinstance(exc, ContentDisallowed):
            self._record(message, "content_type",
                         f"refused {message.content_type!r} message (only JSON is accepted)")
        else:
            self._record(message, "body", str(exc))
        super().on_invalid_task(body, message, exc)

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        self._record(message, "task", f"unknown task {_kind_of(message)!r}: known kinds are slimline.<documents|"
                                      f"transactions|products>.process")
        super().on_unknown_task(body, message, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._record(message, "headers", "not a Celery task message (no task header)")
        super().on_unknown_message(body, message)
