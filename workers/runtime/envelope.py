"""The wire contract of one message, as a worker sees it: task id, payload and delivery metadata.

A producer sends task ``slimline.<kind>.process`` with ``args=[payload]`` and, optionally,
``kwargs={"producer": "...", "sent_at": <epoch seconds>}``. Slimline itself adds ``attempt`` when it
retries an item.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ValidationError

from schemas import INPUT_MODELS, ItemError, Kind
from workers.settings import Settings
from workers.runtime.storable import storable_text

ALLOWED_KWARGS = {"attempt", "producer", "sent_at"}


@dataclass(frozen=True)
class Envelope:
    message_id: str
    args: Any
    kwargs: Any

    @property
    def payload(self) -> Any:
        return self.args[0] if isinstance(self.args, (list, tuple)) and self.args else None

    @property
    def attempt(self) -> int:
        attempt = self.kwargs.get("attempt", 1) if isinstance(self.kwargs, dict) else 1
        return attempt if isinstance(attempt, int) and attempt >= 1 else 1

    @property
    def producer(self) -> str | None:
        producer = self.kwargs.get("producer") if isinstance(self.kwargs, dict) else None
        return storable_text(producer, 200) if isinstance(producer, str) else None

    @property
    def sent_at(self) -> datetime | None:
        """When the producer sent the item (``sent_at``, epoch seconds): orders versions of an item and
        gives the enqueue-to-stored latency. Absent or unusable: None."""
        sent_at = self.kwargs.get("sent_at") if isinstance(self.kwargs, dict) else None
        if isinstance(sent_at, (int, float)) and not isinstance(sent_at, bool) and 0 < sent_at < 1e11:
            return datetime.fromtimestamp(sent_at, timezone.utc)
        return None

    def content_hash(self) -> str:
        """SHA-256 of the payload's canonical JSON: equal content, equal hash, whatever the key order."""
        return hashlib.sha256(canonical_json(self.payload).encode("utf-8", "surrogatepass")).hexdigest()

    def item_id(self) -> str | None:
        payload = self.payload
        if isinstance(payload, dict) and isinstance(payload.get("id"), str):
            return storable_text(payload["id"], 200)
        return None

    def excerpt(self, limit: int = 500) -> str:
        try:
            text = json.dumps({"args": self.args, "kwargs": self.kwargs}, ensure_ascii=True, default=repr)
        except (TypeError, ValueError):
            text = repr(self.args)
        return text[:limit]


def canonical_json(value: Any) -> str:
    """Sorted keys, no insignificant whitespace, non-ASCII kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def validate(kind: Kind, envelope: Envelope, settings: Settings) -> BaseModel | list[ItemError]:
    """The validated item, or the reasons it can never be processed."""
    if not isinstance(envelope.args, (list, tuple)) or len(envelope.args) != 1:
        count = len(envelope.args) if isinstance(envelope.args, (list, tuple)) else type(envelope.args).__name__
        return [ItemError(field="args", reason=f"expected exactly one positional argument (the {kind.value[:-1]}), got {count}")]
    if not isinstance(envelope.kwargs, dict) or not set(envelope.kwargs) <= ALLOWED_KWARGS:
        unexpected = sorted(set(envelope.kwargs) - ALLOWED_KWARGS) if isinstance(envelope.kwargs, dict) else envelope.kwargs
        return [ItemError(field="kwargs", reason=f"unexpected keyword arguments: {unexpected!r}")]
    if not isinstance(envelope.payload, dict):
        return [ItemError(field="payload", reason=f"expected a JSON object, got {type(envelope.payload).__name__}")]
    try:
        return INPUT_MODELS[kind].model_validate(
            envelope.payload, context={"max_document_chars": settings.max_document_chars}
        )
    except ValidationError as error:
        return errors_from_validation(error)


def errors_from_validation(error: ValidationError) -> list[ItemError]:
    return [
        ItemError(field=storable_text(".".join(str(part) for part in detail["loc"]) or "payload", 200),
                  reason=storable_text(detail["msg"].removeprefix("Value error, "), 1000))
        for detail in error.errors(include_url=False, include_input=False)
    ]
