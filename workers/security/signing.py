"""HMAC-SHA256 signatures of task messages, so that workers know which producer sent an item and
whether it may send that kind of work.

The signature covers, one per line (``\\n``, UTF-8)::

    slimline-v1
    <task name>            e.g. slimline.documents.process
    <producer id>
    <key id>
    <timestamp>            Unix time in integer milliseconds, decimal, no sign or leading zeros
    <canonical JSON of the payload (args[0])>

and travels in four message headers (:data:`HEADERS`); the signature is lowercase hex. The canonical
JSON is RFC 8785 (JCS): keys sorted by UTF-16 code units, no insignificant whitespace, UTF-8, strings
escaped only where JSON requires it, numbers as ECMAScript prints them (``1.0`` → ``1``, ``1e21`` →
``1e+21``, ``-0`` → ``0``); integers must lie within ±(2**53 − 1) and NaN/Infinity are refused. A
producer in any language signs the value it sends, whatever its serializer writes on the wire.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any

import rfc8785

from schemas import ItemError, Kind
from workers.runtime.names import TASK_NAMES
from workers.security.producers import IDENTIFIER, Keyring, SigningKey

SIGNATURE_VERSION = "slimline-v1"
HEADER_PRODUCER = "slimline_producer"
HEADER_KEY_ID = "slimline_key_id"
HEADER_TIMESTAMP = "slimline_timestamp"
HEADER_SIGNATURE = "slimline_signature"
HEADERS = (HEADER_PRODUCER, HEADER_KEY_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE)

_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TIMESTAMP = re.compile(r"^(0|[1-9][0-9]{0,15})$")
# Allowed clock skew for timestamps ahead of the worker's clock, when expiry is on.
MAX_FUTURE_SKEW_MS = 5 * 60 * 1000


class CanonicalJSONError(ValueError):
    """The payload has a value JSON cannot carry exactly (a big integer, NaN, a non-JSON type)."""


def canonical_json(payload: Any) -> bytes:
    """RFC 8785 canonical form of a JSON value, as UTF-8 bytes."""
    try:
        return rfc8785.dumps(payload)
    except rfc8785.CanonicalizationError as error:
        raise CanonicalJSONError(str(error)) from None
    except (TypeError, RecursionError) as error:
        raise CanonicalJSONError(f"not a JSON value: {type(error).__name__}") from None


def signing_input(task_name: str, producer_id: str, key_id: str, timestamp_ms: int, payload: Any) -> bytes:
    header = "\n".join((SIGNATURE_VERSION, task_name, producer_id, key_id, str(timestamp_ms)))
    return header.encode("utf-8") + b"\n" + canonical_json(payload)


def signed_value(args: Any, kwargs: Any, producer_id: Any, worker_producer_id: str) -> Any:
    """What a message's signature covers: its item (``args[0]``); for the workers' own messages
    (retries, ``dlq replay``) ``[item, kwargs]``, so the attempt, the original producer and its
    timestamp they carry in kwargs are authenticated too."""
    item = args[0] if isinstance(args, (list, tuple)) and args else None
    return [item, kwargs] if producer_id == worker_producer_id else item


def _mac(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def sign(task_name: str, producer_id: str, timestamp_ms: int, payload: Any, key: SigningKey) -> dict[str, Any]:
    """The headers to add to a task message (Celery: ``send_task(..., headers=sign(...))``)."""
    if not IDENTIFIER.match(producer_id):
        raise ValueError(f"producer id must match {IDENTIFIER.pattern}")
    if not isinstance(timestamp_ms, int) or timestamp_ms < 0:
        raise ValueError("timestamp_ms must be a non-negative integer")
    signature = _mac(key.secret, signing_input(task_name, producer_id, key.key_id, timestamp_ms, payload))
    return {HEADER_PRODUCER: producer_id, HEADER_KEY_ID: key.key_id, HEADER_TIMESTAMP: timestamp_ms,
            HEADER_SIGNATURE: signature}


@dataclass(frozen=True)
class VerifiedProducer:
    """Who really sent the message: record this, never the message's own ``producer`` claim."""

    producer_id: str
    key_id: str
    timestamp_ms: int


# Reason codes of VerificationError.code.
UNSIGNED = "unsigned"
MALFORMED = "malformed_signature"
UNKNOWN_PRODUCER = "unknown_producer"
UNKNOWN_KEY = "unknown_key"
UNKNOWN_TASK = "unknown_task"
NOT_CANONICAL = "payload_not_canonical"
BAD_SIGNATURE = "bad_signature"
KIND_NOT_ALLOWED = "kind_not_allowed"
EXPIRED = "expired"


@dataclass(frozen=True)
class VerificationError:
    """Why a message is refused; stored as a rejection (field ``signature``), nothing runs."""

    code: str
    reason: str

    @property
    def item_error(self) -> ItemError:
        return ItemError(field="signature", reason=f"{self.code}: {self.reason}")


def _timestamp(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 10**16 else None
    if isinstance(value, str) and _TIMESTAMP.match(value):
        return int(value)
    return None


def verify(headers: Any, task_name: str, payload: Any, keyring: Keyring, kind: Kind, *,
           max_age_seconds: int | None = None, now: int | None = None) -> VerifiedProducer | VerificationError:
    """Check a message's signature, then that its producer may send ``kind``. ``payload`` is
    ``args[0]`` as decoded; ``now`` (ms) is for tests."""
    headers = headers if isinstance(headers, dict) else {}
    present = [name for name in HEADERS if headers.get(name) is not None]
    if not present:
        return VerificationError(UNSIGNED, "message has no signature headers")
    if len(present) < len(HEADERS):
        missing = [name for name in HEADERS if name not in present]
        return VerificationError(MALFORMED, f"missing headers {missing}")
    producer_id, key_id, signature = headers[HEADER_PRODUCER], headers[HEADER_KEY_ID], headers[HEADER_SIGNATURE]
    timestamp = _timestamp(headers[HEADER_TIMESTAMP])
    if not (isinstance(producer_id, str) and IDENTIFIER.match(producer_id)):
        return VerificationError(MALFORMED, f"{HEADER_PRODUCER} must match {IDENTIFIER.pattern}")
    if not (isinstance(key_id, str) and IDENTIFIER.match(key_id)):
        return VerificationError(MALFORMED, f"{HEADER_KEY_ID} must match {IDENTIFIER.pattern}")
    if timestamp is None:
        return VerificationError(MALFORMED, f"{HEADER_TIMESTAMP} must be Unix time in integer milliseconds")
    if not (isinstance(signature, str) and _HEX_SHA256.match(signature)):
        return VerificationError(MALFORMED, f"{HEADER_SIGNATURE} must be 64 lowercase hex digits")
    if task_name != TASK_NAMES[kind]:
        return VerificationError(UNKNOWN_TASK, f"task {task_name[:60]!r} is not {TASK_NAMES[kind]!r}")
    producer = keyring.get(producer_id)
    if producer is None:
        return VerificationError(UNKNOWN_PRODUCER, f"producer {producer_id!r} has no keys here")
    secret = producer.keys.get(key_id)
    if secret is None:
        return VerificationError(UNKNOWN_KEY, f"key {key_id!r} of producer {producer_id!r} is not (or no longer) valid")
    try:
        message = signing_input(task_name, producer_id, key_id, timestamp, payload)
    except CanonicalJSONError as error:
        return VerificationError(NOT_CANONICAL, f"payload cannot be signed: {error}"[:300])
    if not hmac.compare_digest(_mac(secret, message), signature):
        return VerificationError(BAD_SIGNATURE, f"signature does not match (producer {producer_id!r}, key {key_id!r})")
    if not producer.may_send(kind):
        return VerificationError(KIND_NOT_ALLOWED, f"producer {producer_id!r} may not send {kind.value}")
    if max_age_seconds is not None:
        current = now_ms() if now is None else now
        if current - timestamp > max_age_seconds * 1000:
            return VerificationError(EXPIRED, f"signed {(current - timestamp) // 1000} s ago, "
                                              f"more than {max_age_seconds} s")
        if timestamp - current > MAX_FUTURE_SKEW_MS:
            return VerificationError(EXPIRED, f"signed {(timestamp - current) // 1000} s in the future")
    return VerifiedProducer(producer_id, key_id, timestamp)
