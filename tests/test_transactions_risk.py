"""The risk model: ONNX scores equal LightGBM's, reason codes are stable, files are hash-checked; training
chooses by time-ordered cross-validation, refits on all the history, sets thresholds from the bank's
policy, and a model trained on earlier history beats the rules on a later slice it never saw."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.support.transactions_history import replayed_history
from workers.transactions.cli import app
from workers.transactions.intervals import Bootstrap
from workers.transactions.risk import (
    CARD_FILE, DEFAULT_MANIFEST_DIR, DEFAULT_MODEL_DIR, MODEL_NAME, NATIVE_FILE, ONNX_FILE, REASONS, RiskModel,
    RiskModelError,
)  # fmt: skip
from workers.transactions.rules import RuleSet
from workers.transactions.train import History, Target, ThresholdPolicy, TrainingPlan, evaluate, fit, train_from_history

# One candidate and few folds: seconds, not minutes (the shipped model searches SEARCH with 4 folds).
SMALL = TrainingPlan(search={"num_leaves": (7,), "min_sum_hessian_in_leaf": (0.1,), "scale_pos_weight": (1.0, 5.0)},
                     folds=3, max_rounds=300, early_stopping=30, holdout=0.25, resamples=300)
RULE_LEVEL = {"block": 2, "review": 1}


@pytest.fixture(scope="module")
def history() -> History:
    return replayed_history()


@pytest.fixture(scope="module")
def shipped() -> RiskModel:
    return RiskModel()


@pytest.fixture(scope="module")
def rows(history: History, shipped: RiskModel) -> np.ndarray:
    return history.matrix[:5000][:, [history.features.index(name) for name in shipped.features]]


def test_onnx_scores_equal_native_lightgbm_scores(shipped: RiskModel, rows: np.ndarray) -> None:
    onnx_scores = shipped.score(rows)
    native = shipped.native_score(rows)
    assert onnx_scores.shape == (len(rows),)
    assert np.abs(onnx_scores - native).max() < 1e-5
    assert onnx_scores.std() > 0  # not a constant model


def test_reason_codes_are_stable_and_strongest_first(shipped: RiskModel, rows: np.ndarray) -> None:
    riskiest = rows[np.argsort(-shipped.score(rows))[:20]]
    explained = shipped.reasons(riskiest, top=3)
    known = {code for code, _ in REASONS.values()}
    assert all(1 <= len(reasons) <= 3 for reasons in explained)
    for reasons in explained:
        assert all(r["code"] in known or r["code"].startswith("RISK_META_") for r in reasons)
        contributions = [r["contribution"] for r in reasons]
        assert contributions == sorted(contributions, reverse=True) and contributions[0] > 0
    assert shipped.reasons(riskiest[:2], top=3) == explained[:2]  # deterministic


def test_the_shipped_card_says_how_it_was_chosen_measured_and_what_carries_it(shipped: RiskModel) -> None:
    card = json.loads((DEFAULT_MODEL_DIR / CARD_FILE).read_text())
    assert card["features"][-len(card["metadata_features"]):] == [f"meta.{n}" for n in card["metadata_features"]]
    assert set(card["files"]) == {ONNX_FILE, NATIVE_FILE}
    assert (DEFAULT_MANIFEST_DIR / f"{MODEL_NAME}-{shipped.version}.json").exists()
    evaluation = card["evaluation"]
    assert evaluation["trained_on"]["to"] < evaluation["measured_on"]["from"]
    assert card["training"]["refit_on"]["to"] == card["data"]["to"]
    shares = card["importance"]["gain_share"]  # [feature, share], strongest first
    assert {name for name, _ in shares} == set(card["features"])
    assert sum(share for _, share in shares) == pytest.approx(1.0, abs=0.01)
    assert [share for _, share in shares] == sorted((share for _, share in shares), reverse=True)
    assert dict(shares)["account_age_days"] == 0  # left out: in a replay it is a calendar clock
    assert shipped.thresholds.review == card["thresholds"]["scores"]["review"]


def test_a_tampered_model_file_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "risk-model"
    shutil.copytree(DEFAULT_MODEL_DIR, copy)
    with (copy / ONNX_FILE).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(RiskModelError, match="does not match its manifest"):
        RiskModel(copy, DEFAULT_MANIFEST_DIR)


def test_a_model_trained_on_earlier_history_beats_the_rules_on_a_later_slice(history: History) -> None:
    report, model_fit = evaluate(history, SMALL)
    later = slice(len(history.labels) - report["measured_on"]["transactions"], None)
    assert report["trained_on"]["to"] < report["measured_on"]["from"]
    rules = RuleSet.load()
    rule_level = np.array([RULE_LEVEL.get(rules.evaluate(signals, item.metadata).action, 0)
                           for signals, item in zip(history.signals[later], history.items[later], strict=True)],
                          dtype=np.float64)
    labels = history.labels[later]
    result = Bootstrap(labels, {"model": model_fit.score(history.matrix[later]), "rules": rule_level},
                       history.accounts[later], resamples=300)
    assert labels.sum() >= 100
    model, rules_alone = result.interval("model"), result.interval("rules")
    assert model.low > rules_alone.value, (model, rules_alone)
    assert model.low > 10 * result.base_rate, (model, result.base_rate)
    assert report["metrics"]["average_precision"]["value"] == pytest.approx(model.value, abs=1e-4)


def test_training_refits_on_all_history_with_thresholds_from_the_stated_policy(history: History,
                                                                               tmp_path: Path) -> None:
    policy = ThresholdPolicy(review=Target("rate", 0.02), block=Target("fpr", 0.002))
    card = train_from_history(history, tmp_path / "model", tmp_path / "manifests",
                              plan=TrainingPlan(**{**SMALL.__dict__, "policy": policy}))
    refit = card["training"]["refit_on"]  # all the history after the warm-up, where features are as live
    assert refit["to"] == card["data"]["to"]
    assert refit["from"] < history.items[len(history.items) // 3].timestamp.isoformat()
    assert {(c["scale_pos_weight"]) for c in card["training"]["search"]} == {1.0, 5.0}
    assert card["training"]["params"]["scale_pos_weight"] in (1.0, 5.0) and card["training"]["rounds"] >= 1
    assert card["thresholds"]["policy"] == {"review": {"basis": "rate", "share": 0.02},
                                            "block": {"basis": "fpr", "share": 0.002}}
    realised = card["evaluation"]["thresholds_realised"]
    assert 0.01 <= realised["review"]["share_of_all"] <= 0.04  # the stated 2 %, on a later slice
    assert realised["block"]["share_of_legitimate"] <= 0.01
    model = RiskModel(tmp_path / "model", tmp_path / "manifests")
    assert (model.thresholds.review, model.thresholds.block) == tuple(card["thresholds"]["scores"].values())
    assert model.metadata_features == tuple(card["metadata_features"])
    groups = card["importance"]["gain_share_by_group"]
    assert groups["account_history"] > groups["bank_metadata"]


def test_a_monotone_constraint_holds(history: History) -> None:
    plan = TrainingPlan(**{**SMALL.__dict__, "search": {"scale_pos_weight": (1.0,)},
                           "increasing": ("amount_to_mean_7d",)})
    model = fit(history, slice(0, len(history.labels)), plan)
    column = history.features.index("amount_to_mean_7d")
    sample = np.repeat(history.matrix[np.flatnonzero(history.labels)[:20]], 50, axis=0)
    sample[:, column] = np.tile(np.geomspace(0.01, 500, 50), 20)
    scores = model.score(sample).reshape(20, 50)
    assert (np.diff(scores, axis=1) >= -1e-12).all()
    assert (scores[:, -1] > scores[:, 0]).any()


def test_train_risk_refuses_two_policies_for_one_threshold(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", "risk", str(tmp_path / "absent.jsonl"), "--review-fpr", "0.01",
                                      "--review-rate", "0.01"])
    assert result.exit_code == 2 and "not both" in result.output
