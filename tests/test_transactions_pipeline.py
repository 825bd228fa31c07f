"""The transactions pipeline on a real Redis with the shipped rules and model: complete decisions,
redelivery, rejection of one item among valid ones, fallback to rules alone, and backtests that
reproduce live decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from schemas import Transaction
from workers.pipelines.base import Rejected
from workers.runtime.redis_server import RedisServer
from workers.settings import Settings
from workers.transactions.backtest import replay
from workers.transactions.pipeline import TransactionPipeline, build_pipeline
from workers.transactions.risk import RiskModel
from workers.transactions.rules import RuleSet
from workers.transactions.simulator import SimulationConfig, simulate

T0 = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)


def tx(number: int | str, minutes: float, amount: str = "25.00", **fields: Any) -> Transaction:
    item = {"id": f"p{number}", "account_id": fields.pop("account", "acct-A"), "amount": amount, "currency": "EUR",
            "timestamp": (T0 + timedelta(minutes=minutes)).isoformat(), "country": "FR", "channel": "card_present",
            "merchant": {"name": "Grocer", "category_code": "5411"}, "metadata": {"device_score": 0.1}}
    item.update(fields)
    return Transaction.model_validate(item)


@pytest.fixture
def settings(redis_server: RedisServer) -> Settings:
    # A generous deadline: the shared test machine must not turn slowness into fallbacks here.
    return Settings(redis_url=redis_server.url, transactions={"features_timeout_seconds": 5.0})


@pytest.fixture
def pipeline(settings: Settings) -> TransactionPipeline:
    built = build_pipeline(settings)
    built.warm_up()
    return built


def history() -> list[Transaction]:
    items = simulate(SimulationConfig(accounts=60, days=12, seed=5))
    return [Transaction.model_validate({k: v for k, v in item.items() if k not in ("label", "scenario")})
            for item in items]


def test_decisions_carry_action_score_rules_reasons_features_and_versions(pipeline: TransactionPipeline) -> None:
    history_items = [tx(n, n * 60) for n in range(5)]
    pipeline(history_items)
    burst = [tx(f"b{n}", 400 + n * 0.2, "1.00", channel="online",
                merchant={"name": f"Web {n}", "category_code": "5999"}) for n in range(12)]
    results = pipeline([tx("normal", 300), tx("sanctioned", 301, country="IR"), *burst])
    normal, sanctioned, last = results[0], results[1], results[-1]
    assert normal["action"] == "allow" and "review_status" not in normal
    assert normal["features"]["count_7d"] == 5 and normal["model_reasons"] == []
    assert sanctioned["action"] == "block" and sanctioned["review_status"] == "open"
    assert sanctioned["deciding_rule"] == "BLOCKED_COUNTRY"
    assert {"code": "BLOCKED_COUNTRY", "action": "block"}.items() <= sanctioned["rules_fired"][0].items()
    assert sanctioned["model_reasons"] and sanctioned["model_reasons"][0]["code"].startswith("RISK_")
    assert last["action"] == "block" and "VELOCITY_BURST" in [r["code"] for r in last["rules_fired"]]
    assert last["features"]["count_10m"] == 11
    for result in results:
        assert result["decided_by"] == "rules+model" and 0 <= result["score"] <= 1
        assert result["rule_set_version"] == pipeline.rules.version
        assert result["model_version"] == pipeline.model_version
        assert result["degraded"] is None and result["runtime"]["latency_ms"] > 0
    assert [r["transaction_id"] for r in results] == ["pnormal", "psanctioned", *(f"pb{n}" for n in range(12))]


def _stable(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key != "runtime"}


def test_the_same_transaction_delivered_twice_gets_the_same_decision(pipeline: TransactionPipeline) -> None:
    batch = [tx(n, n * 0.5, "3.00", channel="online") for n in range(6)]
    first = pipeline(batch)
    pipeline([tx(99, 10)])
    again = pipeline(batch[2:4])
    assert [_stable(r) for r in again] == [_stable(r) for r in first[2:4]]
    assert all(r["runtime"]["features_replayed"] for r in again)
    # The redelivery was not counted again (and p99, later, is not counted at minute 3).
    assert pipeline([tx(100, 3)])[0]["features"]["count_10m"] == 6


def test_a_malformed_transaction_is_rejected_while_its_batch_mates_are_decided(pipeline: TransactionPipeline) -> None:
    with pytest.raises(ValidationError) as raised:
        Transaction.model_validate({**tx(1, 0).model_dump(mode="json"),
                                    "merchant": {"name": "X", "category_code": "54"}})
    assert raised.value.errors()[0]["loc"] == ("merchant", "category_code")
    future = tx("future", 0, timestamp=(datetime.now(UTC) + timedelta(days=2)).isoformat())
    ancient = tx("ancient", 0, timestamp="1969-12-31T23:00:00Z")
    results = pipeline([tx(1, 0), future, tx(2, 1), ancient])
    assert isinstance(results[1], Rejected) and results[1].errors[0].field == "timestamp"
    assert isinstance(results[3], Rejected) and "before 2000" in results[3].errors[0].reason
    assert [results[0]["transaction_id"], results[2]["transaction_id"]] == ["p1", "p2"]
    assert results[2]["degraded"] is None and results[2]["features"]["count_10m"] == 1


def test_without_redis_the_decision_falls_back_to_rules_alone(pipeline: TransactionPipeline,
                                                              redis_server: RedisServer) -> None:
    redis_server.stop()
    results = pipeline([tx(1, 0, "12000.00"), tx(2, 1, country="KP"), tx(3, 2)])
    assert [r["action"] for r in results] == ["review", "block", "allow"]
    for result in results:
        assert result["decided_by"] == "rules" and result["score"] is None and result["model_version"] is None
        assert "unavailable" in result["degraded"]["features"]
        assert "VELOCITY_BURST" in result["rules_skipped"]
    assert results[0]["runtime"]["latency_ms"] < 2000


class _FailingModel(RiskModel):
    """A real model whose scoring breaks (as a corrupt session would)."""

    def score(self, rows: np.ndarray) -> np.ndarray:
        raise RuntimeError("session failed")


def test_when_the_model_fails_the_decision_falls_back_to_rules_alone(settings: Settings) -> None:
    pipeline = TransactionPipeline(settings, risk=_FailingModel())
    result = pipeline([tx(1, 0, "9500.00", channel="transfer", merchant=None)])[0]
    assert result["action"] == "review" and result["deciding_rule"] == "STRUCTURING"
    assert result["decided_by"] == "rules" and result["degraded"] == {"model": "risk model failed: RuntimeError"}


def test_thresholds_are_configurable(settings: Settings) -> None:
    strict = build_pipeline(settings.model_copy(update={"transactions": settings.transactions.model_copy(
        update={"review_score": 0.0, "block_score": 1.0})}))
    result = strict([tx(1, 0)])[0]
    assert result["action"] == "review" and result["deciding_rule"] is None
    assert result["thresholds"] == {"review": 0.0, "block": 1.0}


def test_a_backtest_reproduces_live_decisions_on_the_same_history(settings: Settings) -> None:
    items = history()
    live_pipeline = build_pipeline(settings)
    live = []
    for start in range(0, len(items), 32):  # live: the queue's batches, in time order
        live.extend(live_pipeline(items[start:start + 32]))
    replayed = replay(items, settings, RuleSet.load(), RiskModel(), batch_size=7)
    assert len(replayed) == len(live) == len(items)
    assert [_stable(r) for r in replayed] == [_stable(r) for r in live]
    assert any(r["action"] != "allow" for r in live)


def test_build_pipeline_reads_the_rules_file_from_the_settings(tmp_path: Path, settings: Settings) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {code: ANY_ONLINE, action: review, description: x, when: channel == 'online'}\n")
    custom = build_pipeline(settings.model_copy(update={"transactions": settings.transactions.model_copy(update={"rules_file": rules})}))
    result = custom([tx(1, 0, channel="online")])[0]
    assert result["deciding_rule"] == "ANY_ONLINE" and result["rule_set_version"] == custom.rules.version
