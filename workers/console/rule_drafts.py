"""Rule drafts: the rules in use (the newest promoted version, else the file), a draft made by editing one rule
of them (or the whole document), what changed, and a backtest of a draft on stored decisions.

The backtest decides each stored decision again with the draft's rules through the live code
(``RuleSet.evaluate`` and the pipeline's ``decide``), on the features and the risk score that decision was
made with (both are stored with it), so a difference can only come from the rules. Precision and recall are
measured against analysts' labels (the console's decisions and `slimline flags review`), over the decisions
that have one. `slimline backtest` does the other kind of backtest: a labelled history replayed from scratch.
"""

from __future__ import annotations

import difflib
import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from workers.settings import Settings
from workers.transactions.metrics import flag_metrics
from workers.transactions.pipeline import FLAGGED, decide
from workers.transactions.risk import Thresholds
from workers.transactions.rules import ACTIONS, DEFAULT_RULES_FILE, RuleFileError, RuleSet, database_version

# Review statuses set with `slimline flags review`: labels too, where an analyst's console decision is absent.
LABEL_OF_STATUS = {"confirmed_fraud": 1, "dismissed": 0}
CHANGED_SHOWN = 200


@dataclass(frozen=True)
class RulesInUse:
    document: str
    version: str  # as decisions store it
    number: int | None  # the promoted version's id; None: the rule file
    origin: str


def rules_in_use(store: Any, settings: Settings) -> RulesInUse:
    promoted = store.promoted_rule_version()
    if promoted is not None:
        row = store.rule_version(promoted["id"])
        return RulesInUse(row["document"], database_version(row["id"], row["sha256"]), row["id"],
                          f"version {row['id']}, promoted by {row['decided_by']}")
    path = Path(settings.transactions.rules_file or DEFAULT_RULES_FILE)
    raw = path.read_bytes()
    return RulesInUse(raw.decode("utf-8"), RuleSet.parse(raw, path).version, None, f"the rule file {path}")


def parse(document: str, origin: str = "the draft") -> RuleSet:
    """The draft's rules, or RuleFileError naming the rule and the problem."""
    return RuleSet.parse(document.encode("utf-8"), origin)


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def rule_entries(document: str) -> list[dict[str, Any]]:
    loaded = yaml.safe_load(document) or {}
    return [dict(rule) for rule in loaded.get("rules") or [] if isinstance(rule, dict)]


def edit_rule(document: str, *, code: str, action: str, description: str, when: str, remove: bool = False,
              original_code: str | None = None) -> str:
    """The document with one rule replaced (the one named ``original_code``, else ``code``), appended if new,
    or removed. Lists and constants are kept; comments are not (the new document is written by YAML)."""
    loaded = yaml.safe_load(document) or {}
    rules = [dict(rule) for rule in loaded.get("rules") or []]
    target = original_code or code
    position = next((index for index, rule in enumerate(rules) if rule.get("code") == target), None)
    if remove:
        if position is None:
            raise RuleFileError(f"there is no rule {target} to remove")
        del rules[position]
    else:
        if action not in ACTIONS:
            raise RuleFileError(f"action must be one of {', '.join(ACTIONS)}")
        entry = {"code": code, "action": action, "description": description.strip(), "when": " ".join(when.split())}
        if position is None:
            rules.append(entry)
        else:
            rules[position] = entry
    loaded["rules"] = rules
    return yaml.safe_dump(loaded, sort_keys=False, allow_unicode=True, width=110)


def changes(before: str, after: str) -> dict[str, Any]:
    """Rules added, removed and changed (by code), and a line diff of the documents."""
    old = {rule.get("code"): rule for rule in rule_entries(before)}
    new = {rule.get("code"): rule for rule in rule_entries(after)}
    def normalized(document: str) -> list[str]:  # comments and layout aside
        return yaml.safe_dump(yaml.safe_load(document), sort_keys=False, allow_unicode=True, width=110).splitlines()

    return {
        "added": [new[code] for code in new if code not in old],
        "removed": [old[code] for code in old if code not in new],
        "changed": [{"code": code, "before": old[code], "after": new[code]} for code in new
                    if code in old and old[code] != new[code]],
        "diff": list(difflib.unified_diff(normalized(before), normalized(after), "in use", "draft", lineterm="",
                                          n=2)),
    }


def labels_of(store: Any, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Fraud (1) or legitimate (0) per transaction: an analyst's newest console decision, else the review
    status set with `slimline flags review`."""
    labels = {row["item_id"]: LABEL_OF_STATUS[row["review_status"]] for row in rows
              if row.get("review_status") in LABEL_OF_STATUS}
    for label in store.analyst_labels([row["item_id"] for row in rows]):
        if label["label"] is not None:
            labels[label["transaction_id"]] = label["label"]
        else:
            labels.pop(label["transaction_id"], None)  # escalated: not known yet
    return labels


def backtest(rules: RuleSet, rows: list[dict[str, Any]], labels: dict[str, int]) -> dict[str, Any]:
    """Decide each stored decision again with ``rules``; what changes, and precision/recall before and after."""
    compared, skipped = [], 0
    for row in rows:
        result = row.get("result") or {}
        features, thresholds = result.get("features"), result.get("thresholds")
        if not isinstance(features, dict) or not isinstance(thresholds, dict) or "action" not in result:
            skipped += 1
            continue
        metadata = (result.get("transaction") or {}).get("metadata") or (result.get("input") or {}).get("metadata") or {}
        evaluation = rules.evaluate(features, metadata)
        action = decide(evaluation, result.get("score"), Thresholds(**thresholds))
        compared.append({"id": row["item_id"], "before": result["action"], "after": action,
                         "score": result.get("score"), "label": labels.get(row["item_id"]),
                         "rules_before": [rule["code"] for rule in result.get("rules_fired", [])],
                         "rules_after": [rule.code for rule in evaluation.fired],
                         "rule_set_before": result.get("rule_set_version")})
    changed = [entry for entry in compared if entry["before"] != entry["after"]]
    labelled = [entry for entry in compared if entry["label"] is not None]
    truth = np.array([entry["label"] for entry in labelled], dtype=bool)
    return {
        "rule_set_version": rules.version,
        "decisions": len(compared),
        "skipped": skipped,
        "labelled": len(labelled),
        "fraud": int(truth.sum()),
        "actions_before": dict(Counter(entry["before"] for entry in compared)),
        "actions_after": dict(Counter(entry["after"] for entry in compared)),
        "changed": len(changed),
        "newly_flagged": sum(entry["after"] in FLAGGED and entry["before"] not in FLAGGED for entry in changed),
        "no_longer_flagged": sum(entry["before"] in FLAGGED and entry["after"] not in FLAGGED for entry in changed),
        "before": flag_metrics(truth, np.array([entry["before"] in FLAGGED for entry in labelled], dtype=bool)),
        "after": flag_metrics(truth, np.array([entry["after"] in FLAGGED for entry in labelled], dtype=bool)),
        "rules_fired": {rule.code: sum(rule.code in entry["rules_after"] for entry in compared) for rule in rules.rules},
        "changed_decisions": changed[:CHANGED_SHOWN],
    }
