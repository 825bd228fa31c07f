"""The gateway's pure parts: API keys (format, hashing, verification, cache), reading items from a body, each
item's status from the producer's report, reply keys and what a worker accepts as one."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from schemas import Kind
from workers.client import EnqueueReport, RejectedItem
from workers.gateway.api import ingest_status, item_outcomes
from workers.gateway.body import TooLarge, parse_items, too_large
from workers.gateway import keys
from workers.gateway.keys import InvalidRateLimit, KeyCache, new_key, parse_key, verified
from workers.runtime.envelope import Envelope, validate
from workers.runtime.replies import is_reply_key, new_reply_key
from workers.settings import Settings


def test_a_key_is_shown_once_and_stored_as_the_hash_of_its_secret() -> None:
    created = new_key("erp", [Kind.documents, Kind.transactions], "back office", "10/second")
    key_id, secret = parse_key(created.key)  # type: ignore[misc]
    assert created.row["key_id"] == key_id and secret not in str(created.row)
    assert created.row["kinds"] == ["documents", "transactions"] and created.row["rate_limit"] == "10/second"
    row = created.row | {"revoked_at": None}
    caller = verified(row, secret)
    assert caller is not None and caller.producer == "erp" and caller.may_use(Kind.transactions)
    assert not caller.may_use(Kind.products)
    assert verified(row, secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert verified(row | {"revoked_at": datetime.now(timezone.utc)}, secret) is None
    assert verified(None, secret) is None
    assert parse_key("slk_short_x") is None and parse_key(created.key + "x") is None
    with pytest.raises(InvalidRateLimit):
        new_key("erp", [Kind.documents], rate_limit="often")


def test_the_key_cache_remembers_answers_for_its_period_only() -> None:
    created = new_key("erp", [Kind.documents])
    lookups: list[str] = []
    rows = {created.row["key_id"]: created.row | {"revoked_at": None}}

    def lookup(key_id: str) -> dict | None:
        lookups.append(key_id)
        return rows.get(key_id)

    cache = KeyCache(lookup, seconds=60)
    assert cache.cached(created.key) == (False, None)
    assert cache.verify(created.key) is not None and cache.cached(created.key)[1] is not None
    assert cache.verify("slk_0123456789abcdef_" + "A" * 43) is None
    assert cache.cached("slk_0123456789abcdef_" + "A" * 43) == (True, None)  # unknown keys are remembered too
    assert lookups == [created.row["key_id"], "0123456789abcdef"]
    uncached = KeyCache(lookup, seconds=0)
    uncached.verify(created.key)
    assert uncached.cached(created.key) == (False, None)


def test_a_cached_key_is_due_for_a_background_check_in_the_last_quarter_of_its_period(
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(keys.time, "monotonic", lambda: now[0])
    created = new_key("erp", [Kind.documents])
    cache = KeyCache(lambda key_id: created.row | {"revoked_at": None}, seconds=60)
    assert not cache.refresh_due(created.key)  # never verified: the request itself asks the database
    cache.verify(created.key)
    now[0] += 44
    assert not cache.refresh_due(created.key)
    now[0] += 2
    assert cache.refresh_due(created.key) and cache.cached(created.key)[0]  # due, still answered from the cache
    cache.verify(created.key)
    assert not cache.refresh_due(created.key)
    now[0] += 61
    assert cache.cached(created.key) == (False, None)  # not refreshed in time: the request asks again


def test_items_come_from_one_object_an_array_or_ndjson_lines() -> None:
    assert parse_items(b'{"id": "a"}', ndjson=False) == [{"id": "a"}]
    assert parse_items(b'[{"id": "a"}, {"id": "b"}]', ndjson=False) == [{"id": "a"}, {"id": "b"}]
    items = parse_items(b'{"id": "a"}\n\n{broken\n\xff\n{"id": "b"}\n', ndjson=True)
    assert items[0] == {"id": "a"} and items[3] == {"id": "b"}
    assert isinstance(items[1], RejectedItem) and items[1].position == 2
    assert items[1].errors[0].reason.startswith("line 3 is not valid JSON")
    assert isinstance(items[2], RejectedItem) and "line 4 is not valid UTF-8" in items[2].errors[0].reason


def test_a_document_over_the_character_limit_is_too_large() -> None:
    settings = Settings(max_document_chars=10)
    assert too_large(Kind.documents, {"id": "d", "text": "x" * 10}, 1, settings) is None
    refused = too_large(Kind.documents, {"id": "d", "text": "x" * 11}, 3, settings)
    assert isinstance(refused, TooLarge) and refused.position == 3 and refused.item_id == "d"
    assert too_large(Kind.transactions, {"id": "t", "text": "x" * 11}, 1, settings) is None


def test_each_item_gets_its_status_from_the_producers_report() -> None:
    items = [{"id": "a"}, {"id": "b"}, TooLarge(3, "c", []), {"id": "d"}]
    report = EnqueueReport(Kind.documents, accepted=2, item_ids=["a", "d"], task_ids=["m-a", "m-d"],
                           rejected=[RejectedItem(2, "b", []), items[2]])  # type: ignore[list-item]
    outcomes = item_outcomes(items, report, frozenset({3}))
    assert [(o.id, o.status, o.message_id) for o in outcomes] == [
        ("a", "accepted", "m-a"), ("b", "rejected", None), ("c", "too_large", None), ("d", "accepted", "m-d")]
    assert ingest_status(report, outcomes, waited=False) == 202
    # A full queue stopped the producer after "a": "d" was never looked at.
    stopped = EnqueueReport(Kind.documents, accepted=1, item_ids=["a"], task_ids=["m-a"],
                            rejected=[RejectedItem(2, "b", [])])
    assert [o.status for o in item_outcomes([{"id": "a"}, {"id": "b"}, {"id": "d"}], stopped)] == [
        "accepted", "rejected", "not_sent"]
    only_too_large = EnqueueReport(Kind.documents, rejected=[TooLarge(1, "c", [])])
    assert ingest_status(only_too_large, item_outcomes([TooLarge(1, "c", [])], only_too_large, frozenset({1})),
                         waited=False) == 413


def test_a_worker_accepts_only_a_reply_key_of_the_gateways_form() -> None:
    key = new_reply_key()
    assert is_reply_key(key) and not is_reply_key("slimline:reply:../../unacked") and not is_reply_key(None)
    payload = {"id": "d-1", "text": "hello"}
    good = Envelope("m-1", [payload], {"reply_to": key})
    assert good.reply_to == key and not isinstance(validate(Kind.documents, good, Settings()), list)
    bad = Envelope("m-2", [payload], {"reply_to": "unacked"})
    assert bad.reply_to is None
    assert validate(Kind.documents, bad, Settings())[0].field == "kwargs.reply_to"  # type: ignore[index]
