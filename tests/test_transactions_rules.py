"""Rules from a file: each shipped rule fires on a crafted case and not on a near miss; Radar's order;
versions; unsafe or mistyped expressions refused when the file is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workers.transactions.rules import DEFAULT_RULES_FILE, RuleFileError, RuleSet

# A quiet, established account paying a grocery in its home country.
TYPICAL: dict[str, Any] = {
    "amount": 42.0, "currency": "EUR", "country": "FR", "channel": "card_present", "mcc": "5411",
    "iban_country": None, "foreign_iban": False, "hour": 14, "night": False, "weekday": 2,
    "count_10m": 0, "sum_10m": 0.0, "count_1h": 1, "sum_1h": 20.0, "count_24h": 3, "sum_24h": 90.0,
    "count_7d": 15, "sum_7d": 600.0, "seconds_since_previous": 3000.0, "new_merchant": False, "new_mcc": False,
    "new_country": False, "distinct_merchants_10m": 0, "account_age_days": 200.0, "amount_to_mean_7d": 1.05,
}  # fmt: skip

# code: (changes that make it fire, metadata), (a near miss, metadata)
CASES: dict[str, tuple[tuple[dict[str, Any], dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]]] = {
    "SCA_LOW_VALUE": (({"channel": "online", "amount": 30.0}, {"sca_passed": True}),
                      ({"channel": "online", "amount": 30.01}, {"sca_passed": True})),
    "BLOCKED_COUNTRY": (({"country": "KP"}, {}), ({"country": "KR"}, {})),
    "VELOCITY_BURST": (({"count_10m": 10}, {}), ({"count_10m": 9}, {})),
    "LARGE_AMOUNT": (({"amount": 10000.0}, {}), ({"amount": 9999.99, "channel": "online"}, {})),
    "STRUCTURING": (({"amount": 9000.0, "channel": "transfer"}, {}), ({"amount": 8999.99, "channel": "transfer"}, {})),
    "CARD_TESTING": (({"channel": "online", "amount": 1.0, "count_10m": 3}, {}),
                     ({"channel": "online", "amount": 1.0, "count_10m": 2}, {})),
    "NEW_COUNTRY_HIGH_AMOUNT": (({"new_country": True, "amount": 1000.0}, {}),
                                ({"new_country": True, "amount": 1000.0, "count_7d": 0}, {})),
    "MCC_ANOMALY": (({"mcc": "6051", "new_mcc": True, "amount": 200.0}, {}),
                    ({"mcc": "6051", "new_mcc": False, "amount": 200.0}, {})),
}


@pytest.fixture(scope="module")
def shipped() -> RuleSet:
    return RuleSet.load()


def test_every_shipped_rule_has_a_crafted_case(shipped: RuleSet) -> None:
    assert {rule.code for rule in shipped.rules} == set(CASES)


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_shipped_rule_fires_on_its_case_and_not_on_a_near_miss(shipped: RuleSet, code: str) -> None:
    (fire, fire_meta), (miss, miss_meta) = CASES[code]
    fired = shipped.evaluate({**TYPICAL, **fire}, fire_meta)
    assert code in [rule.code for rule in fired.fired]
    rule = next(rule for rule in shipped.rules if rule.code == code)
    assert fired.action == rule.action  # alone, it decides
    near = shipped.evaluate({**TYPICAL, **miss}, miss_meta)
    assert code not in [rule.code for rule in near.fired]
    assert shipped.evaluate(TYPICAL, {}).fired == []


def _rules(tmp_path: Path, body: str) -> RuleSet:
    path = tmp_path / "rules.yaml"
    path.write_text(body)
    return RuleSet.load(path)


ORDER = """
rules:
  - {code: REVIEW_A, action: review, description: a, when: amount > 10}
  - {code: BLOCK_B, action: block, description: b, when: amount > 100}
  - {code: REVIEW_C, action: review, description: c, when: amount > 5}
  - {code: ALLOW_D, action: allow, description: d, when: amount > 1000}
  - {code: BLOCK_E, action: block, description: e, when: amount > 50}
"""


@pytest.mark.parametrize(("amount", "action", "deciding", "fired"), [
    (2000.0, "allow", "ALLOW_D", ["ALLOW_D", "BLOCK_B", "BLOCK_E", "REVIEW_A", "REVIEW_C"]),
    (500.0, "block", "BLOCK_B", ["BLOCK_B", "BLOCK_E", "REVIEW_A", "REVIEW_C"]),
    (60.0, "block", "BLOCK_E", ["BLOCK_E", "REVIEW_A", "REVIEW_C"]),
    (20.0, "review", "REVIEW_A", ["REVIEW_A", "REVIEW_C"]),
    (1.0, None, None, []),
])  # fmt: skip
def test_radar_order_allow_then_block_then_review_first_match_within_an_action(
    tmp_path: Path, amount: float, action: str | None, deciding: str | None, fired: list[str]
) -> None:
    evaluation = _rules(tmp_path, ORDER).evaluate({**TYPICAL, "amount": amount}, {})
    assert evaluation.action == action
    assert (evaluation.deciding.code if evaluation.deciding else None) == deciding
    assert [rule.code for rule in evaluation.fired] == fired


def test_any_change_to_the_file_is_a_new_version(tmp_path: Path) -> None:
    first = _rules(tmp_path, ORDER).version
    assert _rules(tmp_path, ORDER).version == first
    assert _rules(tmp_path, ORDER + "# a comment\n").version != first
    assert RuleSet.load(DEFAULT_RULES_FILE).version.startswith("sha256:")


@pytest.mark.parametrize(("when", "problem"), [
    ("__import__('os').system('true')", "__import__"),
    ("amount.__class__", "__class__"),
    ("amout > 10", "unknown name(s) amout"),
    ("channel in ('online', 'atm')", "Tuple"),
    ("x = 1", "not a statement"),
    ("amount >", "invalid expression"),
])  # fmt: skip
def test_unsafe_or_mistyped_expressions_are_refused_at_load(tmp_path: Path, when: str, problem: str) -> None:
    body = f'rules:\n  - code: BAD_RULE\n    action: review\n    description: x\n    when: "{when}"\n'
    with pytest.raises(RuleFileError, match="BAD_RULE") as raised:
        _rules(tmp_path, body)
    assert problem in str(raised.value)


def test_rules_needing_account_features_are_skipped_when_they_are_unavailable(shipped: RuleSet) -> None:
    without_account = {name: TYPICAL[name] for name in ("amount", "currency", "country", "channel", "mcc",
                                                          "iban_country", "foreign_iban", "hour", "night", "weekday")}
    evaluation = shipped.evaluate({**without_account, "amount": 12000.0, "country": "IR"}, {})
    assert [rule.code for rule in evaluation.fired] == ["BLOCKED_COUNTRY", "LARGE_AMOUNT"]
    # Skipped: the rules whose outcome needed an account feature (others were decided without one).
    assert set(evaluation.skipped) == {"VELOCITY_BURST", "NEW_COUNTRY_HIGH_AMOUNT"}
    assert evaluation.action == "block"


def test_an_absent_value_does_not_fire(tmp_path: Path) -> None:
    rule = "{code: QUICK, action: review, description: q, when: seconds_since_previous < 5}"
    rules = _rules(tmp_path, f"rules:\n  - {rule}\n")
    assert rules.evaluate({**TYPICAL, "seconds_since_previous": None}, {}).fired == []
    assert [r.code for r in rules.evaluate({**TYPICAL, "seconds_since_previous": 1.0}, {}).fired] == ["QUICK"]
