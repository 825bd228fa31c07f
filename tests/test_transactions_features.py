"""Per-account features in a real Redis: atomic and concurrent-safe, once per transaction id, point in
time, windowed, bounded and expiring."""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from schemas import Transaction
from workers.runtime.redis_server import RedisServer, free_port
from workers.transactions.features import FeaturesUnavailable, FeatureStore, Limits, event_id

T0 = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)


def tx(number: int | str, seconds: float, amount: str = "10.00", *, account: str = "acct-1", merchant: str = "Shop",
       mcc: str = "5411", country: str = "FR") -> Transaction:
    return Transaction.model_validate({
        "id": f"t{number}", "account_id": account, "amount": amount, "currency": "EUR",
        "timestamp": (T0 + timedelta(seconds=seconds)).isoformat(), "country": country, "channel": "card_present",
        "merchant": {"name": merchant, "category_code": mcc},
    })  # fmt: skip


@pytest.fixture
def store(redis_server: RedisServer) -> FeatureStore:
    feature_store = FeatureStore.from_url(redis_server.url, timeout_seconds=5.0)
    feature_store.load()
    return feature_store


def probe(store: FeatureStore, seconds: float, **fields: Any) -> dict[str, Any]:
    """Features of a new transaction at this time (it is recorded too, so use a unique id)."""
    return store.update([tx(f"probe-{seconds}-{time.perf_counter_ns()}", seconds, **fields)])[0].values


def _hammer(url: str, worker: int, count: int) -> None:
    store = FeatureStore.from_url(url, timeout_seconds=10.0)
    for start in range(0, count, 10):
        # Interleaved timestamps within the same minutes, so both processes hit the same buckets.
        store.update([tx(f"w{worker}-{n}", n * 0.5 + worker * 0.25, "1.25") for n in range(start, start + 10)])


def test_two_processes_updating_one_account_lose_no_count(store: FeatureStore, redis_server: RedisServer) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hammer, args=(redis_server.url, worker, 300)) for worker in (0, 1)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    later = probe(store, 3600 * 2)
    assert later["count_24h"] == 600
    assert later["sum_24h"] == pytest.approx(600 * 1.25)
    assert later["count_7d"] == 600


def test_a_redelivered_transaction_is_counted_once_and_gets_its_first_features(store: FeatureStore) -> None:
    first = store.update([tx(1, 0), tx(2, 30, "20.00")])
    again = store.update([tx(2, 30, "20.00")])[0]
    assert again.replayed and not first[1].replayed
    assert again.values == first[1].values
    assert probe(store, 60)["count_10m"] == 2


def test_features_exclude_later_transactions_even_when_scored_first(store: FeatureStore) -> None:
    store.update([tx(1, 0, "5.00"), tx(3, 200, "50.00")])
    late = store.update([tx(2, 100, "7.00")])[0].values  # arrives after t3 but happened before it
    assert (late["count_10m"], late["sum_10m"]) == (1, 5.0)
    assert late["ms_since_previous"] == 100_000
    # A same-millisecond burst is ordered by event id: none counts one that sorts after it, even if
    # that one arrived first.
    arrivals = ["tb3", "tb1", "tb2"]
    burst = store.update([tx(name.removeprefix("t"), 300) for name in arrivals])
    expected = [3 + sum(event_id(earlier) < event_id(name) for earlier in arrivals[:position])
                for position, name in enumerate(arrivals)]
    assert [features.values["count_10m"] for features in burst] == expected
    assert probe(store, 301)["count_10m"] == 6  # none of the burst is lost (same timestamp, distinct members)


def test_windows_and_first_seen(store: FeatureStore) -> None:
    store.update([tx(1, 0, "100.00")])
    assert probe(store, 9 * 60, merchant="Other")["count_10m"] == 1
    at_11_min = probe(store, 11 * 60)
    assert (at_11_min["count_10m"], at_11_min["count_1h"]) == (1, 2)  # the probe at 9 min, then both in the hour
    in_2h = probe(store, 2 * 3600, country="DE")
    assert (in_2h["count_1h"], in_2h["count_24h"], in_2h["new_country"]) == (0, 3, True)
    in_3d = probe(store, 3 * 86400, merchant="Shop")
    assert (in_3d["count_24h"], in_3d["count_7d"], in_3d["new_merchant"], in_3d["new_mcc"]) == (0, 4, False, False)
    assert in_3d["sum_7d"] == pytest.approx(130.0)
    assert probe(store, 11 * 86400)["count_7d"] == 0
    assert probe(store, 11 * 86400 + 1, merchant="Third")["distinct_merchants_10m"] == 1


def test_state_expires_on_its_own(redis_server: RedisServer) -> None:
    short = Limits(state_ttl_seconds=1, seen_ttl_seconds=1, snapshot_ttl_seconds=1)
    store = FeatureStore.from_url(redis_server.url, timeout_seconds=5.0, limits=short)
    store.update([tx(n, n, account=f"acct-{n % 3}") for n in range(30)])
    client = redis.Redis.from_url(redis_server.url)
    keys = client.keys("txf:*")
    assert keys and all(0 < client.pttl(key) <= 1000 for key in keys)
    deadline = time.monotonic() + 10
    while client.keys("txf:*") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.keys("txf:*") == []


def test_memory_per_account_is_bounded(store: FeatureStore, redis_server: RedisServer) -> None:
    # A month of a busy account: 20 payments a day at 100 merchants in 30 countries.
    items = [tx(n, n * 4320, merchant=f"M{n % 100}", mcc=f"{5000 + n % 50}", country=f"A{chr(65 + n % 26)}")
             for n in range(600)]
    for start in range(0, len(items), 50):
        store.update(items[start:start + 50])
    client = redis.Redis.from_url(redis_server.url)
    counters, recent, seen = store.account_keys("acct-1")
    assert client.hlen(seen) == 64 + 32 + 16 + 3  # capped entries of each kind, and their three counts
    assert client.memory_usage(counters) <= 2048
    assert client.memory_usage(recent) <= 1024
    assert client.memory_usage(seen) <= 6 * 1024


def test_a_burst_is_counted_exactly_and_its_recent_set_stays_compact(store: FeatureStore,
                                                                      redis_server: RedisServer) -> None:
    store.update([tx(f"x{n}", n * 0.3, merchant=f"Merchant {n}") for n in range(300)])  # 300 in 90 seconds
    features = probe(store, 95)
    assert (features["count_1h"], features["count_24h"], features["sum_1h"]) == (300, 300, 3000.0)
    assert features["count_10m"] == features["distinct_merchants_10m"] == 100  # the exact set saturates
    client = redis.Redis.from_url(redis_server.url)
    recent = store.account_keys("acct-1")[1]
    assert client.zcard(recent) == 100 and client.object("encoding", recent) in (b"ziplist", b"listpack")


def test_an_unreachable_redis_fails_fast() -> None:
    store = FeatureStore.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout_seconds=0.2)
    started = time.monotonic()
    with pytest.raises(FeaturesUnavailable):
        store.update([tx(1, 0)])
    assert time.monotonic() - started < 2
