"""Replies to a caller that waits for an item's outcome (the HTTP gateway's synchronous decisions and
``wait=true``): the message carries ``reply_to`` in its kwargs, the name of a short-lived Redis list the caller
waits on with BLPOP. Once a batch's outcomes are committed, the batch runner pushes each such item's outcome
there: what was stored, why it was rejected, or that it failed for good. Nothing is pushed for an item that is
retried or given back to the queue; the caller's deadline covers those.

The runtime knows nothing of kinds here: a reply is the stored row's fields. A reply key names a list under
``slimline:reply:`` (the workers' Redis user may write there, `slimline redis-acl`) and expires after
:data:`REPLY_TTL_SECONDS`, read or not.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import redis

REPLY_PREFIX = "slimline:reply:"
REPLY_KEY = re.compile(r"^slimline:reply:[0-9a-f]{32}$")
REPLY_TTL_SECONDS = 60

Reply = tuple[str, dict[str, Any]]
"""A reply key and the message pushed to it."""
PushReplies = Callable[[Sequence[Reply]], None]


def new_reply_key() -> str:
    return f"{REPLY_PREFIX}{uuid.uuid4().hex}"


def is_reply_key(value: Any) -> bool:
    return isinstance(value, str) and REPLY_KEY.match(value) is not None


def stored(row: dict[str, Any]) -> dict[str, Any]:
    """A result row as committed (a resend of the same content stores nothing new: this is the outcome of
    this delivery, computed as the stored one was)."""
    return {"status": "stored", "message_id": row["message_id"], "item_id": row["item_id"], "tier": row.get("tier"),
            "review_status": row.get("review_status"), "model": row.get("model"),
            "model_version": row.get("model_version"), "result": row["result"]}


def rejected(row: dict[str, Any]) -> dict[str, Any]:
    return {"status": "rejected", "message_id": row["message_id"], "item_id": row.get("item_id"),
            "errors": row.get("errors") or [{"field": row.get("field"), "reason": row.get("reason")}]}


def failed(row: dict[str, Any]) -> dict[str, Any]:
    """A dead letter: the item kept failing (its error is masked, see workers/security/masking.py)."""
    return {"status": "failed", "message_id": row["message_id"], "item_id": row.get("item_id"),
            "error": row.get("error")}


def redis_pusher(client: redis.Redis) -> PushReplies:
    """Push every reply of a batch in one round trip; each list expires on its own."""

    def push(replies: Sequence[Reply]) -> None:
        pipe = client.pipeline(transaction=False)
        for key, message in replies:
            pipe.rpush(key, json.dumps(message, default=str, separators=(",", ":")))
            pipe.expire(key, REPLY_TTL_SECONDS)
        pipe.execute()

    return push
