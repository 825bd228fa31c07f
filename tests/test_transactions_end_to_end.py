"""Transactions end to end through Redis and real workers, on SQLite and PostgreSQL: one decision per
transaction id with action, score, reasons and versions; malformed ones rejected while their batch-mates
are decided; a resent transaction decided once; flags open for review."""

from __future__ import annotations

from schemas import Kind
from tests.conftest import Deployment
from tests.test_cli import slimline
from workers.transactions.simulator import SimulationConfig, simulate


def _history(accounts: int = 25, days: int = 8) -> list[dict]:
    items = simulate(SimulationConfig(accounts=accounts, days=days, seed=11, fraud_episodes_per_account_day=0.02))
    return [{key: value for key, value in item.items() if key not in ("label", "scenario")} for item in items]


def test_every_transaction_gets_one_decision_and_bad_ones_a_rejection(deployment: Deployment) -> None:
    history = _history()
    malformed = [{"id": "bad-mcc", **{k: v for k, v in history[0].items() if k != "id"},
                  "merchant": {"name": "X", "category_code": "54"}},
                 {"id": "bad-currency", **{k: v for k, v in history[1].items() if k != "id"}, "currency": "euro"}]
    deployment.start_worker(queues="transactions", concurrency=1)
    report = deployment.enqueue(history, kind=Kind.transactions)
    assert report.accepted == len(history)
    deployment.enqueue(history[:50], kind=Kind.transactions)  # resent: no second decision
    # Producers validate too; send the malformed ones as a non-validating producer would.
    from workers.runtime.publish import send_item

    for item in malformed:
        send_item(deployment.app, Kind.transactions, item, {"producer": "raw"})
    deployment.drain()

    decisions = deployment.store.current_results(Kind.transactions)
    assert len(decisions) == len(history) == len({row["item_id"] for row in decisions})
    assert len(deployment.store.history(Kind.transactions)) == len(history)
    actions = {row["result"]["action"] for row in decisions}
    assert actions <= {"allow", "review", "block"} and "allow" in actions and actions - {"allow"}
    for row in decisions:
        result = row["result"]
        assert {"action", "score", "rules_fired", "model_reasons", "features", "rule_set_version",
                "model_version"} <= set(result), sorted(result)
        assert (row["review_status"] == "open") == (result["action"] != "allow")
    rejected = {row.item_id: row for row in deployment.store.rejections(kind="transactions")}
    assert set(rejected) == {"bad-mcc", "bad-currency"}
    assert rejected["bad-mcc"].field == "merchant.category_code"
    assert rejected["bad-currency"].field == "currency"

    flagged = next(row["item_id"] for row in decisions if row["review_status"] == "open")
    listed = slimline(deployment, "flags", "list")
    assert listed.returncode == 0 and flagged in listed.stdout
