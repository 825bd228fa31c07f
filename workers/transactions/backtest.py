"""Backtest a rule set on a labelled history before it goes live (``slimline backtest RULES LABELLED``).

The history is replayed in timestamp order through ``TransactionPipeline.decide``, the code live
workers run, in batches of the live size, on a private Redis: every transaction's features are those
at its point in time, computed from earlier transactions only. Live decisions of transactions that
arrive in time order are reproduced exactly; for out-of-order arrivals see features.py.

Reports alert volume per day, precision and recall per rule, and overall for the decisions (rules +
model, as live) and for the rules alone.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from schemas import Transaction
from workers.settings import Settings
from workers.transactions.features import private_feature_store
from workers.transactions.metrics import flag_metrics
from workers.transactions.pipeline import FLAGGED, TransactionPipeline
from workers.transactions.risk import DEFAULT_MANIFEST_DIR, DEFAULT_MODEL_DIR, RiskModel
from workers.transactions.rules import RuleSet


def replay(items: list[Transaction], settings: Settings, rules: RuleSet, risk: RiskModel,
           batch_size: int) -> list[dict[str, Any]]:
    """Decisions for a time-ordered history, as live workers would have made them."""
    decisions: list[dict[str, Any]] = []
    with private_feature_store() as store:
        pipeline = TransactionPipeline(settings, features=store, rules=rules, risk=risk)
        for start in range(0, len(items), batch_size):
            decisions.extend(pipeline.decide(items[start:start + batch_size]))
    return decisions


def report(items: list[Transaction], labels: np.ndarray, decisions: list[dict[str, Any]],
           rules: RuleSet) -> dict[str, Any]:
    labels = np.asarray(labels, dtype=bool)
    fired = [{rule["code"] for rule in decision["rules_fired"]} for decision in decisions]
    flagged = np.array([decision["action"] in FLAGGED for decision in decisions])
    # Rules alone: the deciding rule (the first fired, in allow-block-review order) flags.
    by_rules = np.array([bool(d["rules_fired"]) and d["rules_fired"][0]["action"] in FLAGGED for d in decisions])
    per_day: Counter[str] = Counter()
    for item, is_flagged in zip(items, flagged, strict=True):
        if is_flagged:
            per_day[item.timestamp.date().isoformat()] += 1
    days = sorted({item.timestamp.date().isoformat() for item in items})
    return {
        "rule_set_version": rules.version,
        "model_version": next((d["model_version"] for d in decisions if d["model_version"]), None),
        "transactions": len(items),
        "fraud": int(labels.sum()),
        "alerts_per_day": {day: per_day.get(day, 0) for day in days},
        "alerts_per_day_median": float(np.median([per_day.get(day, 0) for day in days])),
        "actions": dict(Counter(decision["action"] for decision in decisions)),
        "overall": flag_metrics(labels, flagged),
        "rules_alone": flag_metrics(labels, by_rules),
        "per_rule": {rule.code: {"action": rule.action,
                                 **flag_metrics(labels, np.array([rule.code in codes for codes in fired]))}
                     for rule in rules.rules},
    }


def backtest(rules_file: Path, items: list[Transaction], labels: np.ndarray, settings: Settings,
             batch_size: int | None = None) -> dict[str, Any]:
    rules = RuleSet.load(rules_file)
    risk = RiskModel(settings.transactions.model_dir or DEFAULT_MODEL_DIR,
                     settings.transactions.model_manifest_dir or DEFAULT_MANIFEST_DIR)
    decisions = replay(items, settings, rules, risk, batch_size or settings.transactions.max_batch_size)
    return report(items, labels, decisions, rules)
