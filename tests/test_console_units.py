"""Pure parts of the console: marking entities at their offsets, drafting a rule change, backtesting it on stored
decisions through the live decision code, passwords and roles, and the vendored htmx file."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from workers.console import rule_drafts
from workers.console.auth import ROLES, check_roles, hash_password, verify_password, PasswordPolicyError
from workers.console.highlight import find_free, segments
from workers.transactions.rules import DEFAULT_RULES_FILE, RuleFileError

STATIC = Path(__file__).resolve().parents[1] / "workers" / "console" / "static"


def test_entities_are_marked_at_their_offsets_and_bad_offsets_are_not() -> None:
    text = "Alice Martin paid EUR 30 to Acme."
    entities = [{"text": "Acme", "label": "ORG", "start": 28, "end": 32},
                {"text": "Alice Martin", "label": "PERSON", "start": 0, "end": 12},
                {"text": "Martin", "label": "PERSON", "start": 6, "end": 12},  # overlaps the one before
                {"text": "EUR 31", "label": "MONEY", "start": 18, "end": 24}]  # does not match the text
    pieces = segments(text, entities)
    assert "".join(piece["text"] for piece in pieces) == text
    assert [(piece["text"], piece["index"]) for piece in pieces if piece["entity"]] == [("Alice Martin", 1), ("Acme", 0)]
    assert find_free(text, "Martin", [(0, 12)]) is None
    assert find_free("a b a", "a", [(0, 1)]) == (4, 5)


def test_a_rule_is_edited_added_and_removed_in_a_draft_that_keeps_the_rest() -> None:
    in_use = DEFAULT_RULES_FILE.read_text()
    edited = rule_drafts.edit_rule(in_use, code="LARGE_AMOUNT", action="block", description="big",
                                   when="amount >= 20000", original_code="LARGE_AMOUNT")
    rules = rule_drafts.parse(edited).rules
    large = next(rule for rule in rules if rule.code == "LARGE_AMOUNT")
    assert (large.action, large.when) == ("block", "amount >= 20000")
    assert len(rules) == len(rule_drafts.parse(in_use).rules)
    change = rule_drafts.changes(in_use, edited)
    assert [c["code"] for c in change["changed"]] == ["LARGE_AMOUNT"] and not change["added"] + change["removed"]
    assert any(line.startswith("+") and "20000" in line for line in change["diff"])
    added = rule_drafts.edit_rule(edited, code="TINY", action="review", description="", when="amount < 1")
    assert rule_drafts.parse(added).rules[-1].code == "TINY"
    removed = rule_drafts.edit_rule(added, code="TINY", action="review", description="", when="", remove=True)
    assert "TINY" not in {rule.code for rule in rule_drafts.parse(removed).rules}
    with pytest.raises(RuleFileError, match="unknown name"):
        rule_drafts.parse(rule_drafts.edit_rule(in_use, code="X_RULE", action="review", description="",
                                                when="amout > 3"))


def _stored(item_id: str, amount: float, score: float, action: str, rules: list[str]) -> dict:
    return {"item_id": item_id, "review_status": "open" if action != "allow" else None, "result": {
        "action": action, "score": score, "thresholds": {"review": 0.5, "block": 0.9},
        "rules_fired": [{"code": code} for code in rules], "rule_set_version": "sha256:x",
        "transaction": {"metadata": {}},
        "features": {"amount": amount, "currency": "EUR", "country": "FR", "channel": "card_present", "mcc": "5411",
                     "iban_country": None, "foreign_iban": False, "hour": 12, "night": False, "weekday": 1,
                     "count_10m": 0, "count_7d": 2, "new_country": False, "new_mcc": False}}}


def test_a_backtest_decides_stored_decisions_again_with_the_drafts_rules() -> None:
    in_use = DEFAULT_RULES_FILE.read_text()
    rows = [_stored("a", 12_000, 0.1, "review", ["LARGE_AMOUNT"]), _stored("b", 3_000, 0.2, "allow", []),
            _stored("c", 50, 0.95, "block", []), _stored("d", 2_500, 0.1, "allow", [])]
    unchanged = rule_drafts.backtest(rule_drafts.parse(in_use), rows, {})
    assert unchanged["changed"] == 0  # the rules in use reproduce every stored decision
    draft = rule_drafts.edit_rule(in_use, code="LARGE_AMOUNT", action="review", description="",
                                  when="amount >= 2000", original_code="LARGE_AMOUNT")
    result = rule_drafts.backtest(rule_drafts.parse(draft), rows, {"a": 0, "b": 1, "c": 1})
    assert result["changed"] == 2 and result["newly_flagged"] == 2
    assert {(entry["id"], entry["before"], entry["after"]) for entry in result["changed_decisions"]} == {
        ("b", "allow", "review"), ("d", "allow", "review")}
    assert (result["before"]["precision"], result["before"]["recall"]) == (0.5, 0.5)  # a and c flagged; b, c fraud
    assert (result["after"]["precision"], result["after"]["recall"]) == (round(2 / 3, 4), 1.0)


def test_passwords_are_argon2id_hashes_and_roles_are_checked() -> None:
    stored = hash_password("twelve chars ok", 12)
    assert stored.startswith("$argon2id$") and "twelve" not in stored
    assert verify_password(stored, "twelve chars ok").ok and not verify_password(stored, "twelve chars ko").ok
    with pytest.raises(PasswordPolicyError):
        hash_password("short", 12)
    assert check_roles(["analyst", "analyst", "admin"]) == ["admin", "analyst"]
    with pytest.raises(ValueError, match="unknown role"):
        check_roles(["root"])
    assert set(ROLES) == {"analyst", "document_reviewer", "product_editor", "rule_author", "rule_approver", "admin"}


def test_the_vendored_htmx_is_the_file_its_readme_names() -> None:
    readme = (STATIC / "README.md").read_text()
    recorded = re.search(r"`htmx\.min\.js` .*?\| `([0-9a-f]{64})`", readme).group(1)
    assert hashlib.sha256((STATIC / "htmx.min.js").read_bytes()).hexdigest() == recorded
    assert "2.0.11" in readme and "0BSD" in readme
