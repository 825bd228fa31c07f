"""What the console stores, on SQLite and PostgreSQL: the flags queue's order and filters, case locks that two
analysts cannot both take, decisions stored as labels with their audit row, rule versions promoted only by
someone other than their author, workers picking up the promoted version, users, sessions and lockouts."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from schemas import Kind
from tests.conftest import Deployment
from workers.console import rule_drafts
from workers.db.store import OutcomeStore
from workers.db.store.console import ConflictError
from workers.transactions.rules import DEFAULT_RULES_FILE, PromotedRules, RuleSet, database_version


def _decision(item_id: str, action: str, score: float, account: str = "acct-1", amount: float = 50.0,
              rules: tuple[str, ...] = ()) -> dict[str, Any]:
    """A stored decision as the transactions pipeline writes it (the fields the console reads)."""
    return {
        "item_id": item_id, "content_hash": hashlib.sha256(item_id.encode()).hexdigest(), "tier": "compact",
        "review_status": "open" if action != "allow" else None,
        "result": {"transaction_id": item_id, "account_id": account, "action": action, "score": score,
                   "transaction": {"timestamp": "2024-03-01T10:00:00+00:00", "merchant": "Shop", "metadata": {}},
                   "rules_fired": [{"code": code, "action": "review", "description": ""} for code in rules],
                   "model_reasons": [], "thresholds": {"review": 0.5, "block": 0.9},
                   "features": {"amount": amount, "currency": "EUR", "country": "FR", "channel": "online",
                                "mcc": "5411", "iban_country": None, "foreign_iban": False, "hour": 10,
                                "night": False, "weekday": 2, "count_10m": 0, "count_7d": 3, "new_country": False,
                                "new_mcc": False},
                   "rule_set_version": "sha256:0", "model_version": "m"},
    }


@pytest.fixture
def store(deployment: Deployment) -> OutcomeStore:
    deployment.store.save_versions(Kind.transactions, [
        _decision("t-low", "review", 0.55), _decision("t-high", "block", 0.97, account="acct-2"),
        _decision("t-mid", "review", 0.7, rules=("LARGE_AMOUNT",)), _decision("t-ok", "allow", 0.1)])
    return deployment.store


def test_the_flags_queue_is_sorted_by_score_and_filtered_in_the_database(store: OutcomeStore) -> None:
    assert [row["item_id"] for row in store.flags()] == ["t-high", "t-mid", "t-low"]
    assert [row["item_id"] for row in store.flags(action="review")] == ["t-mid", "t-low"]
    assert [row["item_id"] for row in store.flags(min_score=0.6)] == ["t-high", "t-mid"]
    assert [row["item_id"] for row in store.flags(account="acct-2")] == ["t-high"]
    assert [row["item_id"] for row in store.account_decisions("acct-1")] == ["t-ok", "t-mid", "t-low"]
    assert [row["item_id"] for row in store.account_decisions("acct-1", flagged_only=True)] == ["t-mid", "t-low"]


def test_two_analysts_asking_for_the_next_case_at_once_get_different_ones(store: OutcomeStore) -> None:
    candidates = ["t-high", "t-mid", "t-low"]
    taken: dict[str, str | None] = {}
    start = threading.Barrier(2)

    def take(analyst: str) -> None:
        start.wait()
        taken[analyst] = store.take_next_flag(analyst, timedelta(minutes=30), candidates)

    threads = [threading.Thread(target=take, args=(name,)) for name in ("ana", "bo")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken.values()) == ["t-high", "t-mid"]
    locks = store.locks(Kind.transactions)
    assert {item_id: lock["username"] for item_id, lock in locks.items()} == {v: k for k, v in taken.items()}
    # Nobody else can decide a case someone holds; an expired lock is free again.
    held_by_ana = taken["ana"]
    with pytest.raises(ConflictError, match="ana has this case"):
        store.decide_flag(held_by_ana, "legitimate", "fine", analyst="bo")
    assert not store.lock_case(Kind.transactions, held_by_ana, "bo", timedelta(minutes=30))
    assert store.lock_case(Kind.transactions, "t-low", "cy", timedelta(seconds=-1))  # expired at once
    assert store.take_next_flag("bo", timedelta(minutes=30), ["t-low"]) == "t-low"


def test_a_decision_is_a_label_a_review_status_and_an_audit_row_in_one_transaction(store: OutcomeStore) -> None:
    store.lock_case(Kind.transactions, "t-mid", "ana", timedelta(minutes=30))
    with pytest.raises(ConflictError, match="changed"):
        store.decide_flag("t-mid", "fraud", "seen", analyst="ana", seen_version=7)
    store.decide_flag("t-mid", "fraud", "stolen card", analyst="ana", seen_version=1)
    store.decide_flag("t-low", "escalate", "needs the bank's call", analyst="ana")
    [row] = store.current_results(Kind.transactions, item_ids=["t-mid"])
    assert (row["review_status"], row["note"]) == ("confirmed_fraud", "stolen card")
    assert store.locks(Kind.transactions) == {}  # deciding releases the case
    labels = {label["transaction_id"]: label for label in store.analyst_labels()}
    assert (labels["t-mid"]["label"], labels["t-low"]["label"]) == (1, None)
    store.decide_flag("t-mid", "legitimate", "customer made it after all", analyst="bo")
    assert [label["decision"] for label in store.analyst_labels(["t-mid"], newest_only=False)] == ["fraud", "legitimate"]
    assert store.analyst_labels(["t-mid"])[0]["label"] == 0
    decided = [row for row in store.audit_rows() if row["action"] == "flag.decide"]
    assert [(row["actor"], row["detail"]["item_id"], row["detail"]["to"]) for row in decided] == [
        ("ana", "t-mid", "confirmed_fraud"), ("ana", "t-low", "escalated"), ("bo", "t-mid", "dismissed")]
    with pytest.raises(LookupError):
        store.decide_flag("t-ok", "fraud", "an allowed payment is not a flag", analyst="ana")
    # `slimline erase` takes the console's labels and locks with the transaction.
    store.lock_case(Kind.transactions, "t-high", "ana", timedelta(minutes=5))
    store.erase(Kind.transactions, ["t-mid", "t-high"], actor="dpo")
    assert store.analyst_labels(["t-mid"]) == [] and store.locks(Kind.transactions) == {}


def test_train_risk_takes_the_console_labels_over_the_files(store: OutcomeStore, deployment: Deployment,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from workers.transactions.cli import _apply_console_labels

    store.decide_flag("t-mid", "fraud", "stolen card", analyst="ana")
    store.decide_flag("t-low", "legitimate", "known merchant", analyst="ana")
    store.decide_flag("t-high", "escalate", "unsure", analyst="ana")
    labels = np.array([0, 1, 0, 0])
    changed, known = _apply_console_labels(deployment.settings, ["t-mid", "t-low", "t-high", "other"], labels)
    assert (changed, known, labels.tolist()) == (2, 2, [1, 0, 0, 0])


def _draft(store: OutcomeStore, author: str, when: str, base: int | None) -> dict[str, Any]:
    in_use = store.rule_version(base)["document"] if base else DEFAULT_RULES_FILE.read_text()
    document = rule_drafts.edit_rule(in_use, code="LARGE_AMOUNT", action="review", description="large", when=when,
                                     original_code="LARGE_AMOUNT")
    return store.add_rule_draft(document, rule_drafts.sha256(document), base, f"LARGE_AMOUNT: {when}", author=author)


def test_a_rule_draft_is_promoted_only_by_another_person_after_a_backtest(store: OutcomeStore) -> None:
    draft = _draft(store, "rita", "amount >= 500", None)
    with pytest.raises(PermissionError, match="another approver"):
        store.decide_rule_draft(draft["id"], approver="rita", promote=True, note=None)
    with pytest.raises(ConflictError, match="not been backtested"):
        store.decide_rule_draft(draft["id"], approver="abe", promote=True, note=None)
    rows = store.transaction_decisions(100)
    result = rule_drafts.backtest(rule_drafts.parse(draft["document"]), rows, rule_drafts.labels_of(store, rows))
    store.record_backtest(draft["id"], result, actor="rita")
    other = _draft(store, "rita", "amount >= 2000", None)  # drafted from the file too
    store.decide_rule_draft(draft["id"], approver="abe", promote=True, note="ok")
    assert store.promoted_rule_version() == {"id": draft["id"], "sha256": draft["sha256"]}
    store.record_backtest(other["id"], result, actor="rita")
    with pytest.raises(ConflictError, match="is in use now"):  # its base is no longer the rules in use
        store.decide_rule_draft(other["id"], approver="abe", promote=True, note=None)
    third = _draft(store, "rita", "amount >= 800", draft["id"])
    store.record_backtest(third["id"], result, actor="rita")
    store.decide_rule_draft(third["id"], approver="abe", promote=True, note=None)
    assert store.rule_version(draft["id"])["status"] == "retired"
    assert [row["action"] for row in store.audit_rows() if row["action"].startswith("rules.")] == [
        "rules.draft", "rules.backtest", "rules.draft", "rules.promote", "rules.backtest", "rules.draft",
        "rules.backtest", "rules.promote"]


def test_workers_use_the_newest_promoted_version_and_keep_theirs_when_the_database_fails(
        store: OutcomeStore, deployment: Deployment) -> None:
    file_rules = RuleSet.load()
    source = PromotedRules(file_rules, deployment.database_url, refresh_seconds=0.01)
    assert source.current() is file_rules
    draft = _draft(store, "rita", "amount >= 500", None)
    store.record_backtest(draft["id"], {"decisions": 0}, actor="rita")
    store.decide_rule_draft(draft["id"], approver="abe", promote=True, note=None)
    time.sleep(0.02)
    rules = source.current()
    assert rules.version == database_version(draft["id"], draft["sha256"])
    assert next(rule for rule in rules.rules if rule.code == "LARGE_AMOUNT").when == "amount >= 500"
    source._store = OutcomeStore.from_url("sqlite:////nonexistent/dir/x.db")  # the database is gone
    time.sleep(0.02)
    assert source.current() is rules
    assert PromotedRules(file_rules, deployment.database_url, refresh_seconds=0).current() is file_rules  # 0: file only


def test_no_database_file_is_created_by_looking_for_rule_versions(tmp_path: Path) -> None:
    missing = tmp_path / "absent.db"
    assert PromotedRules(RuleSet.load(), f"sqlite:///{missing}", 0.01).current().version.startswith("sha256:")
    assert not missing.exists()


def test_users_sessions_and_lockouts(deployment: Deployment) -> None:
    from workers.console.auth import hash_password, token_hash, verify_password

    store = deployment.store
    store.add_user("ana", hash_password("a long password!", 12), ["analyst"], actor="admin")
    with pytest.raises(ConflictError):
        store.add_user("ana", hash_password("another password", 12), ["admin"], actor="admin")
    user = store.user("ana")
    assert verify_password(user["password_hash"], "a long password!").ok
    assert not verify_password(user["password_hash"], "a long password?").ok
    assert not verify_password(None, "a long password!").ok
    store.create_session(user["id"], token_hash("t1"), "csrf", _in(hours=1))
    assert store.session_user(token_hash("t1"), timedelta(minutes=30))[1]["username"] == "ana"
    assert store.session_user(token_hash("t1"), timedelta(seconds=-1)) is None  # idle too long: ended
    assert store.session_user(token_hash("t1"), timedelta(minutes=30)) is None
    store.create_session(user["id"], token_hash("t2"), "csrf", _in(hours=1))
    store.update_user("ana", actor="admin", active=False)
    assert store.session_user(token_hash("t2"), timedelta(minutes=30)) is None  # disabling ends sessions
    for _ in range(3):
        store.record_login("ana", succeeded=False, attempts=3, lockout=timedelta(minutes=5))
    assert store.user("ana")["locked_until"] is not None
    store.update_user("ana", actor="admin", active=True)  # enabling also lifts the lockout
    assert store.user("ana")["locked_until"] is None
    actions = [row["action"] for row in store.audit_rows()]
    assert actions.count("console.login_failed") == 3 and {"user.add", "user.disable", "user.enable"} <= set(actions)


def _in(hours: float) -> Any:
    from workers.db.models import utcnow

    return utcnow() + timedelta(hours=hours)
