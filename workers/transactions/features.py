"""Per-account features kept in Redis: one Lua script call per transaction (see account_features.lua).

A batch sends one pipeline of EVALSHA calls (one round trip). Each call computes the transaction's
features at its own timestamp, records the transaction and stores a snapshot under its id, so a
redelivered transaction is counted once and gets the features it got the first time.

Memory per account (bounded, every key with a TTL), measured by ``benchmarks/transactions_detection.py``
after a simulated month (2.6 payments per account a day):
- windowed counters: one hash of at most 47 bucket fields + first/last: ~1.0 KB (``MEMORY USAGE``);
- recent events: a sorted set of the last 20 minutes (at least the 8 latest, at most 100 events;
  members of ~40 bytes, so Redis keeps its compact encoding): ~0.45 KB typically, ~4.7 KB at the cap;
- first-seen: at most 64 merchants, 32 MCCs and 16 countries: ~1.6 KB median, ~4.6 KB at the caps;
- all three, in Redis's ``used_memory`` (key overhead and allocator included): ~4.9 KB;
- snapshots: ~200 B per transaction, kept ``SLIMLINE_TRANSACTIONS__SNAPSHOT_TTL_SECONDS`` (2 days: ~1 KB).

Live and backtest differ only for out-of-order arrivals: a transaction that arrives more than 10
minutes after a later-timestamped one of the same account may see fewer events in its 10-minute window
and its current 5-minute bucket (the exact recent events are trimmed relative to the latest timestamp),
and one older than a ring of buckets (70 min, 25 h, 8 days) is not added to that ring. In time order
(as in a backtest) the features are exact.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import redis

from schemas import Transaction
from workers.runtime.redis_server import RedisServer

SCRIPT = (Path(__file__).parent / "account_features.lua").read_text()
KEY_PREFIX = "txf"  # every key: txf:{<account digest>}:<s|r|m|x:<transaction id>>

# The order of the values the script returns (and stores as the snapshot).
FEATURE_NAMES = (
    "count_10m", "sum_10m", "count_1h", "sum_1h", "count_24h", "sum_24h", "count_7d", "sum_7d",
    "ms_since_previous", "new_merchant", "new_mcc", "new_country", "distinct_merchants_10m", "account_age_ms",
)  # fmt: skip
_SUMS = {"sum_10m", "sum_1h", "sum_24h", "sum_7d"}
_FLAGS = {"new_merchant", "new_mcc", "new_country"}


class FeaturesUnavailable(RuntimeError):
    """Redis did not answer within the deadline (or failed): decide on rules alone."""


@dataclass(frozen=True)
class Limits:
    """Retention and bounds of one account's state; see the module docstring for the memory they imply."""

    state_ttl_seconds: int = 8 * 86_400
    seen_ttl_seconds: int = 90 * 86_400
    snapshot_ttl_seconds: int = 2 * 86_400
    recent_cap: int = 100  # below Redis's 128-entry compact encoding limit, even while adding
    recent_keep_seconds: int = 20 * 60
    recent_min_keep: int = 8
    seen_merchants: int = 64
    seen_mccs: int = 32
    seen_countries: int = 16


@dataclass(frozen=True)
class AccountFeatures:
    """The account's state at one transaction's point in time, before the transaction itself."""

    values: dict[str, Any]
    replayed: bool  # True: the transaction was seen before; these are the features it got then


def _digest(text: str, size: int) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=size).hexdigest()


def account_prefix(account_id: str) -> str:
    """Keys of one account share a hash tag (one cluster slot); the account id itself is not stored."""
    return f"{KEY_PREFIX}:{{{_digest(account_id, 8)}}}:"


def event_id(transaction_id: str) -> str:
    """A transaction in the recent set: a short digest of its id. Events of the same millisecond are
    ordered by it, so which of them a transaction counts does not depend on arrival order."""
    return _digest(transaction_id, 8)


def merchant_key(transaction: Transaction) -> str:
    """The merchant (or, for transfers, the counterparty) as a short digest: no names or IBANs in Redis."""
    if transaction.merchant is not None:
        name = transaction.merchant.name
    else:
        name = transaction.counterparty_iban or transaction.counterparty or ""
    return _digest(name.strip().casefold(), 6) if name.strip() else ""


def amount_cents(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def timestamp_ms(transaction: Transaction) -> int:
    return int(transaction.timestamp.timestamp() * 1000)


def _decode(raw: list[Any]) -> AccountFeatures:
    replayed, snapshot = raw
    values: dict[str, Any] = {}
    for name, value in zip(FEATURE_NAMES, json.loads(snapshot), strict=True):
        if name in _SUMS:
            value = value / 100
        elif name in _FLAGS:
            value = bool(value)
        elif name == "ms_since_previous" and value < 0:
            value = None
        values[name] = value
    return AccountFeatures(values, bool(int(replayed)))


class FeatureStore:
    """Reads and updates per-account features; one round trip per batch."""

    def __init__(self, client: redis.Redis, limits: Limits = Limits()) -> None:
        self.client = client
        self.limits = limits
        self.sha = hashlib.sha1(SCRIPT.encode("utf-8")).hexdigest()
        self._limits = ",".join(str(value) for value in (
            limits.state_ttl_seconds * 1000, limits.seen_ttl_seconds * 1000, limits.snapshot_ttl_seconds * 1000,
            limits.recent_cap, limits.recent_keep_seconds * 1000, limits.recent_min_keep, limits.seen_merchants,
            limits.seen_mccs, limits.seen_countries,
        ))  # fmt: skip

    @classmethod
    def from_url(cls, url: str, timeout_seconds: float, limits: Limits = Limits(),
                 **connection: Any) -> FeatureStore:
        client = redis.Redis.from_url(url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds,
                                      **connection)
        return cls(client, limits)

    def _arguments(self, transaction: Transaction) -> tuple[list[str], list[Any]]:
        prefix = account_prefix(transaction.account_id)
        keys = [prefix + "s", prefix + "r", prefix + "m", prefix + "x:" + transaction.id]
        mcc = transaction.merchant.category_code if transaction.merchant else ""
        args = [timestamp_ms(transaction), event_id(transaction.id), amount_cents(transaction.amount),
                merchant_key(transaction), mcc, transaction.country or "", self._limits]
        return keys, args

    def update(self, transactions: Sequence[Transaction]) -> list[AccountFeatures]:
        """Features of each transaction (in order), recording each one once; raises FeaturesUnavailable."""
        if not transactions:
            return []
        calls = [self._arguments(transaction) for transaction in transactions]
        try:
            try:
                raw = self._run(calls)
            except redis.exceptions.NoScriptError:
                # Redis restarted or flushed its script cache. Re-running the calls that did succeed is
                # harmless: each returns its snapshot.
                self.client.script_load(SCRIPT)
                raw = self._run(calls)
        except (redis.RedisError, OSError) as error:
            raise FeaturesUnavailable(f"account features unavailable: {type(error).__name__}") from error
        return [_decode(result) for result in raw]

    def _run(self, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(self.sha, len(keys), *keys, *args)
        return pipe.execute()

    def load(self) -> None:
        """Load the script (workers call this at warm-up so the first batch needs no retry)."""
        self.client.script_load(SCRIPT)

    def account_keys(self, account_id: str) -> list[str]:
        """The account's keys other than snapshots (for measuring memory and expiry)."""
        prefix = account_prefix(account_id)
        return [prefix + "s", prefix + "r", prefix + "m"]


@contextmanager
def private_feature_store() -> Iterator[FeatureStore]:
    """A Redis server of its own for replaying a history (never the live feature state)."""
    with tempfile.TemporaryDirectory(prefix="slimline-replay-") as directory:
        server = RedisServer(Path(directory), max_memory="2gb").start()
        try:
            store = FeatureStore.from_url(server.url, timeout_seconds=30.0)
            store.load()
            yield store
        finally:
            server.stop()
