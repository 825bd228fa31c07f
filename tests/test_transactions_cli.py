"""The transactions commands: simulate and backtest a history, review flags in a real database."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from schemas import Kind, Transaction
from workers.db.engine import migrate
from workers.db.models import AuditEvent
from workers.db.store import OutcomeStore
from workers.runtime.redis_server import RedisServer
from workers.settings import Settings, get_settings
from workers.transactions.cli import app
from workers.transactions.pipeline import build_pipeline
from workers.transactions.simulator import SimulationConfig, simulate

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'slimline.db'}"
    migrate(url)
    monkeypatch.setenv("SLIMLINE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_simulate_then_backtest_the_shipped_rules(tmp_path: Path) -> None:
    labelled = tmp_path / "labelled.jsonl"
    simulated = runner.invoke(app, ["train", "simulate", str(labelled), "--accounts", "40", "--days", "10"], env=WIDE)
    assert simulated.exit_code == 0, simulated.output
    report = tmp_path / "report.json"
    rules = Path("workers/transactions/data/rules.yaml")
    result = runner.invoke(app, ["backtest", str(rules), str(labelled), "--json", str(report)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "VELOCITY_BURST" in result.output and "overall" in result.output
    content = json.loads(report.read_text())
    lines = labelled.read_text().splitlines()
    assert content["transactions"] == len(lines)
    assert content["fraud"] == sum(json.loads(line)["label"] for line in lines)
    assert set(content["per_rule"]) >= {"LARGE_AMOUNT", "STRUCTURING", "BLOCKED_COUNTRY"}
    assert sum(content["alerts_per_day"].values()) == content["overall"]["flagged"]


def test_an_unusable_labelled_file_fails_in_one_line(tmp_path: Path) -> None:
    labelled = tmp_path / "bad.jsonl"
    good = simulate(SimulationConfig(accounts=3, days=5))[0]
    bad = {**good, "merchant": {"name": "X", "category_code": "54"}}
    labelled.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    result = runner.invoke(app, ["backtest", "workers/transactions/data/rules.yaml", str(labelled)], env=WIDE)
    assert result.exit_code == 4
    assert "bad.jsonl:2" in result.output and "merchant.category_code" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def _decide_and_store(redis_server: RedisServer, url: str) -> tuple[OutcomeStore, list[dict]]:
    items = [Transaction.model_validate({
        "id": f"cli-{n}", "account_id": "acct-cli", "amount": amount, "currency": "EUR",
        "timestamp": f"2024-06-03T10:0{n}:00Z", "country": country, "channel": "card_present",
        "merchant": {"name": "Shop", "category_code": "5411"},
    }) for n, (amount, country) in enumerate([("20.00", "FR"), ("50.00", "KP"), ("15000.00", "FR")])]  # fmt: skip
    results = build_pipeline(Settings(redis_url=redis_server.url, transactions={"features_timeout_seconds": 5.0}))(items)
    store = OutcomeStore.from_url(url)
    store.save_versions(Kind.transactions, [{
        "item_id": item.id, "content_hash": hashlib.sha256(item.model_dump_json().encode()).hexdigest(),
        "tier": "compact", "review_status": result.get("review_status"), "result": result,
        "model": "transactions-risk", "model_version": result["model_version"],
    } for item, result in zip(items, results, strict=True)])  # fmt: skip
    return store, results


def test_flags_list_show_and_review_with_an_audit_trail(database: str, redis_server: RedisServer) -> None:
    store, results = _decide_and_store(redis_server, database)
    assert [r["action"] for r in results] == ["allow", "block", "review"]
    listed = runner.invoke(app, ["flags", "list"], env=WIDE)
    assert listed.exit_code == 0, listed.output
    assert "cli-1" in listed.output and "cli-2" in listed.output and "cli-0" not in listed.output
    shown = runner.invoke(app, ["flags", "show", "cli-1"], env=WIDE)
    assert shown.exit_code == 0 and "BLOCKED_COUNTRY" in shown.output
    reviewed = runner.invoke(app, ["flags", "review", "cli-1", "--as", "confirmed_fraud", "--actor", "alice",
                                   "--note", "customer confirmed"], env=WIDE)
    assert reviewed.exit_code == 0, reviewed.output
    assert store.current_results(Kind.transactions, item_ids=["cli-1"])[0]["review_status"] == "confirmed_fraud"
    events = [event for event in store.iter_rows(AuditEvent) if event["action"] == "review"]
    assert events[-1]["actor"] == "alice" and events[-1]["detail"]["to"] == "confirmed_fraud" and events[-1]["at"]
    still_open = runner.invoke(app, ["flags", "list", "--status", "open"], env=WIDE)
    assert "cli-1" not in still_open.output and "cli-2" in still_open.output


def test_flags_review_of_an_unknown_id_or_status_fails_cleanly(database: str) -> None:
    missing = runner.invoke(app, ["flags", "review", "nope", "--as", "dismissed"], env=WIDE)
    assert missing.exit_code == 1 and "no decision for transaction 'nope'" in missing.output
    wrong = runner.invoke(app, ["flags", "review", "nope", "--as", "maybe"], env=WIDE)
    assert wrong.exit_code == 2 and "unknown status" in wrong.output
