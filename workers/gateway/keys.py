"""API keys: ``slk_<key id>_<secret>``. The key id is public (lists, logs, the audit log); the secret is 256
random bits, shown once at creation and stored only as its SHA-256 (a secret that random needs no slow hash:
nobody can guess it, and checking it must cost microseconds, not the tens of milliseconds of a password hash).

The gateway remembers a verified key for ``SLIMLINE_GATEWAY__KEY_CACHE_SECONDS`` so that a request does not
wait for the database; a revoked key stops working within that time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from limits import parse_many

from schemas import Kind

PREFIX = "slk_"
KEY = re.compile(r"^slk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


class InvalidRateLimit(ValueError):
    """A rate limit not in the `limits` notation ("300/second", "1000/minute;20/second")."""


@dataclass(frozen=True)
class NewKey:
    key: str  # shown once
    row: dict[str, Any]  # what is stored (workers/db/models_gateway.py)


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: a valid, unrevoked key."""

    key_id: str
    producer: str
    kinds: frozenset[Kind]
    rate_limit: str | None

    def may_use(self, kind: Kind) -> bool:
        return kind in self.kinds


def secret_sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def check_rate_limit(rate_limit: str) -> str:
    try:
        parse_many(rate_limit)
    except ValueError:
        raise InvalidRateLimit(f"rate limit {rate_limit!r} is not like '300/second' or '1000/minute;20/second'") \
            from None
    return rate_limit


def new_key(producer: str, kinds: list[Kind], name: str = "", rate_limit: str | None = None) -> NewKey:
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    return NewKey(f"{PREFIX}{key_id}_{secret}", {
        "key_id": key_id, "secret_sha256": secret_sha256(secret), "producer": producer,
        "kinds": [kind.value for kind in kinds], "name": name,
        "rate_limit": check_rate_limit(rate_limit) if rate_limit else None})


def parse_key(presented: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    match = KEY.match(presented)
    return (match.group(1), match.group(2)) if match else None


def verified(row: dict[str, Any] | None, secret: str) -> Caller | None:
    """The caller if ``row`` (the stored key) exists, is not revoked and its hash matches ``secret``."""
    if row is None or row["revoked_at"] is not None:
        return None
    if not hmac.compare_digest(row["secret_sha256"], secret_sha256(secret)):
        return None
    return Caller(row["key_id"], row["producer"], frozenset(Kind(kind) for kind in row["kinds"]), row["rate_limit"])


class KeyCache:
    """Verified callers by the presented key's hash, for ``seconds`` (0: every request asks the database).

    An answer in the last quarter of its period is due for a refresh: the gateway asks the database again in the
    background and answers from the cache meanwhile, so requests never wait on the database for a known key (a wait
    that hit every request arriving during the lookup, once per period)."""

    def __init__(self, lookup: Callable[[str], dict[str, Any] | None], seconds: float) -> None:
        self.lookup = lookup
        self.seconds = seconds
        self._callers: dict[str, tuple[float, Caller | None]] = {}

    def cached(self, presented: str) -> tuple[bool, Caller | None]:
        """(known, caller): whether the cache can answer, and its answer."""
        entry = self._callers.get(presented_digest(presented))
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def refresh_due(self, presented: str) -> bool:
        entry = self._callers.get(presented_digest(presented))
        return entry is not None and entry[0] - time.monotonic() < self.seconds / 4

    def verify(self, presented: str) -> Caller | None:
        """Ask the database (blocking: call it from a thread); unknown and revoked keys are remembered too,
        so that a flood of bad keys does not reach the database more than once per key and period."""
        parsed = parse_key(presented)
        caller = verified(self.lookup(parsed[0]), parsed[1]) if parsed else None
        if self.seconds > 0:
            if len(self._callers) > 10_000:
                self._callers.clear()
            self._callers[presented_digest(presented)] = (time.monotonic() + self.seconds, caller)
        return caller


def presented_digest(presented: str) -> str:
    """The cache never holds a key in clear."""
    return hashlib.sha256(presented.encode("utf-8", "surrogatepass")).hexdigest()
