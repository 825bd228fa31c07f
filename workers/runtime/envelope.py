"""The wire contract of one message, as a worker sees it: task id, payload and delivery metadata.

A producer sends task ``slimline.<kind>.process`` with ``args=[payload]`` and, optionally,
``kwargs={"producer": "...", "sent_at": <epoch seconds>}``. Slimline itself adds ``attempt`` when it
retries an item, and the HTTP gateway ``reply_to`` when a caller waits for the outcome
(workers/runtime/replies.py). When workers have producer keys, a message counts only once :func:`authenticate`
has verified its signature headers (docs/signing.md): its producer and send time are then the signed
ones, never the message's own claims.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ValidationError

from schemas import INPUT_MODELS, ItemError, Kind
from workers.runtime.replies import REPLY_KEY, is_reply_key
from workers.security.masking import mask
from workers.security.producers import Keyring
from workers.security.signing import VerificationError, VerifiedProducer, signed_value, verify
from workers.settings import Settings
from workers.runtime.storable import storable_text

ALLOWED_KWARGS = {"attempt", "producer", "sent_at", "reply_to"}


@dataclass(frozen=True)
class Envelope:
    message_id: str
    args: Any
    kwargs: Any
    headers: dict[str, Any] = field(default_factory=dict, repr=False)  # the message's headers
    task_name: str | None = None
    # Set by :func:`authenticate`: who signed the message, and whether that is the workers' own identity
    # (retries, escalations, ``dlq replay``), whose signature also covers kwargs.
    verified: VerifiedProducer | None = None
    signed_by_workers: bool = False

    @property
    def payload(self) -> Any:
        return self.args[0] if isinstance(self.args, (list, tuple)) and self.args else None

    @property
    def attempt(self) -> int:
        attempt = self.kwargs.get("attempt", 1) if isinstance(self.kwargs, dict) else 1
        return attempt if isinstance(attempt, int) and attempt >= 1 else 1

    @property
    def producer(self) -> str | None:
        """The verified producer; for the workers' own messages the original producer they carry in their
        signed kwargs; unsigned (only where signing is off): the message's claim."""
        if self.verified is not None and not self.signed_by_workers:
            return self.verified.producer_id
        producer = self.kwargs.get("producer") if isinstance(self.kwargs, dict) else None
        return storable_text(producer, 200) if isinstance(producer, str) else None

    @property
    def sent_at(self) -> datetime | None:
        """When the producer sent the item: orders versions of an item and gives the enqueue-to-stored
        latency. Signed: the signature's timestamp (the workers' own messages keep the original
        ``sent_at`` in their signed kwargs); unsigned: ``sent_at`` (epoch seconds). Unusable: None."""
        if self.verified is not None and not self.signed_by_workers:
            return datetime.fromtimestamp(self.verified.timestamp_ms / 1000, timezone.utc)
        sent_at = self.kwargs.get("sent_at") if isinstance(self.kwargs, dict) else None
        if isinstance(sent_at, (int, float)) and not isinstance(sent_at, bool) and 0 < sent_at < 1e11:
            return datetime.fromtimestamp(sent_at, timezone.utc)
        return None

    @property
    def reply_to(self) -> str | None:
        """Where a waiting caller wants the outcome (a key :func:`validate` has checked), or None."""
        reply_to = self.kwargs.get("reply_to") if isinstance(self.kwargs, dict) else None
        return reply_to if is_reply_key(reply_to) else None

    def content_hash(self) -> str:
        """SHA-256 of the payload's canonical JSON: equal content, equal hash, whatever the key order."""
        return hashlib.sha256(canonical_json(self.payload).encode("utf-8", "surrogatepass")).hexdigest()

    def item_id(self) -> str | None:
        payload = self.payload
        if isinstance(payload, dict) and isinstance(payload.get("id"), str):
            return storable_text(payload["id"], 200)
        return None

    def excerpt(self, limit: int = 500) -> str:
        """The start of the message, with IBANs, card numbers, e-mails and phone numbers masked."""
        try:
            text = json.dumps({"args": self.args, "kwargs": self.kwargs}, ensure_ascii=True, default=repr)
        except (TypeError, ValueError):
            text = repr(self.args)
        head = text[:limit * 2]
        if len(head) < len(text):  # a value cut in two would not be recognised: leave its rest out
            head = head.rsplit(" ", 1)[0]
        return mask(head)[:limit]


def authenticate(kind: Kind, envelope: Envelope, keyring: Keyring, workers_id: str,
                 max_age_seconds: int | None = None) -> Envelope | VerificationError:
    """Verify the message's signature before anything else; the envelope comes back carrying its
    verified producer."""
    producer_claim = envelope.headers.get("slimline_producer") if isinstance(envelope.headers, dict) else None
    value = signed_value(envelope.args, envelope.kwargs, producer_claim, workers_id)
    checked = verify(envelope.headers, envelope.task_name or "", value, keyring, kind, max_age_seconds=max_age_seconds)
    if isinstance(checked, VerificationError):
        return checked
    return replace(envelope, verified=checked, signed_by_workers=checked.producer_id == workers_id)


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
    if "reply_to" in envelope.kwargs and not is_reply_key(envelope.kwargs["reply_to"]):
        return [ItemError(field="kwargs.reply_to", reason=f"must match {REPLY_KEY.pattern}")]
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
