"""The risk model: ONNX scores equal LightGBM's, reason codes are stable, files are hash-checked, and
training on a simulated history splits by time and reports metrics on the later period."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from zoneinfo import ZoneInfo

from workers.transactions.risk import (
    CARD_FILE, DEFAULT_MANIFEST_DIR, DEFAULT_MODEL_DIR, MODEL_NAME, NATIVE_FILE, ONNX_FILE, REASONS, RiskModel,
    RiskModelError,
)  # fmt: skip
from workers.transactions.signals import model_row
from workers.transactions.simulator import SimulationConfig, simulate, write_jsonl
from workers.transactions.train import read_labelled, replay_features, train_risk


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated history (different seed from the shipped model's)."""
    path = tmp_path_factory.mktemp("history") / "labelled.jsonl"
    return write_jsonl(simulate(SimulationConfig(accounts=300, days=30, seed=11)), path)


@pytest.fixture(scope="module")
def shipped() -> RiskModel:
    return RiskModel()


@pytest.fixture(scope="module")
def rows(history: Path, shipped: RiskModel) -> np.ndarray:
    items, _ = read_labelled(history)
    items = items[:5000]
    signals, metadata = replay_features(items, ZoneInfo("UTC"))
    return np.array([model_row(s, m, shipped.metadata_features) for s, m in zip(signals, metadata, strict=True)],
                    dtype=np.float32)


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


def test_the_shipped_model_card_lists_features_hashes_and_test_metrics(shipped: RiskModel) -> None:
    card = json.loads((DEFAULT_MODEL_DIR / CARD_FILE).read_text())
    assert card["features"][-len(card["metadata_features"]):] == [f"meta.{n}" for n in card["metadata_features"]]
    assert set(card["files"]) == {ONNX_FILE, NATIVE_FILE}
    assert card["data"]["split"]["train"]["to"] <= card["data"]["split"]["test"]["from"]
    assert card["metrics"]["test"]["average_precision"] > 0.3
    assert (DEFAULT_MANIFEST_DIR / f"{MODEL_NAME}-{shipped.version}.json").exists()


def test_a_tampered_model_file_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "risk-model"
    shutil.copytree(DEFAULT_MODEL_DIR, copy)
    with (copy / ONNX_FILE).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(RiskModelError, match="does not match its manifest"):
        RiskModel(copy, DEFAULT_MANIFEST_DIR)


def test_training_splits_by_time_and_reports_on_the_later_period(history: Path, tmp_path: Path) -> None:
    items, labels = read_labelled(history)
    card = train_risk(items, labels, tmp_path / "model", tmp_path / "manifests")
    split = card["data"]["split"]
    assert split["train"]["to"] <= split["validation"]["from"] <= split["validation"]["to"] <= split["test"]["from"]
    test = card["metrics"]["test"]
    assert test["transactions"] == split["test"]["transactions"]
    assert 0 <= test["recall_at_0.1pct_fpr"] <= test["recall_at_1pct_fpr"] <= 1
    assert test["average_precision"] > 5 * test["fraud"] / test["transactions"]  # far better than chance
    assert {"meta.device_score", "meta.pca_1", "meta.sca_passed"} <= set(card["features"])
    model = RiskModel(tmp_path / "model", tmp_path / "manifests")
    assert model.metadata_features == tuple(card["metadata_features"])
    assert 0 < model.thresholds.review <= model.thresholds.block < 1
