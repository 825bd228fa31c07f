"""Train the risk model from labelled transactions (``slimline train risk LABELLED.jsonl``).

Input: JSON lines, each a transaction in the contract plus ``"label": 0|1`` (and optionally
``"scenario"``, ignored). Features are computed exactly as live (signals.featurize) on a private Redis,
in timestamp order, so each row sees only earlier transactions.

Split by time (a random split lets the model see the future of the same accounts and inflates scores):
the first 70 % trains, the next 10 % stops boosting early and sets the score thresholds, the last 20 %
(never used for any choice) gives the reported metrics. The shipped model is the one trained on the
first 70 %, so its reported metrics are exactly its own.

Output directory: model.onnx (ONNX Runtime scoring), model.lgb.txt (LightGBM text format, for reason
codes), card.json (features, metrics, thresholds, data and file hashes); plus a SHA-256 manifest
``transactions-risk-<version>.json`` in the manifest directory, checked before every load.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import lightgbm
import numpy as np
import onnxmltools
from onnxmltools.convert.common.data_types import FloatTensorType
from pydantic import ValidationError

from schemas import Transaction
from workers.models.integrity import write_manifest
from workers.transactions.features import private_feature_store
from workers.transactions.metrics import detection_metrics
from workers.transactions.risk import CARD_FILE, MODEL_NAME, NATIVE_FILE, ONNX_FILE, RiskModel, RiskModelError
from workers.transactions.signals import BASE_MODEL_FEATURES, featurize, model_row

BATCH = 512
METADATA_MIN_SHARE = 0.01  # a metadata field present in at least 1 % of rows becomes a feature
SPLIT = (0.7, 0.1, 0.2)  # train, validation, test, in time order
REVIEW_FPR, BLOCK_FPR = 0.005, 0.0002  # thresholds chosen on the validation period
PARAMS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 20,
    # Fraud is rare: with LightGBM's default minimum hessian per leaf, trees can stop splitting.
    "min_sum_hessian_in_leaf": 1e-5, "feature_fraction": 0.9, "bagging_fraction": 0.8, "bagging_freq": 1,
    "lambda_l2": 1.0, "metric": "average_precision", "verbose": -1, "num_threads": 1, "deterministic": True,
    "seed": 7,
}  # fmt: skip
MAX_ROUNDS, EARLY_STOPPING = 400, 40


class LabelledFileError(ValueError):
    """A labelled file cannot be used; the message names the line and the field."""


def read_labelled(path: Path) -> tuple[list[Transaction], np.ndarray]:
    """Transactions and labels, sorted by (timestamp, id); raises LabelledFileError."""
    rows: list[tuple[Transaction, int]] = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("expected a JSON object")
                label = record.pop("label")
                record.pop("scenario", None)
                transaction = Transaction.model_validate(record)
            except (ValueError, KeyError) as error:
                raise LabelledFileError(f"{path}:{number}: {_describe(error)}") from None
            if label not in (0, 1) or isinstance(label, float):
                raise LabelledFileError(f"{path}:{number}: label must be 0 or 1, not {label!r}")
            rows.append((transaction, int(label)))
    if not rows:
        raise LabelledFileError(f"{path}: no transactions")
    rows.sort(key=lambda row: (row[0].timestamp, row[0].id))
    return [row[0] for row in rows], np.array([row[1] for row in rows], dtype=np.int8)


def _describe(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        return f"field {'.'.join(str(part) for part in first['loc'])}: {first['msg']}"
    if isinstance(error, KeyError):
        return f"missing {error.args[0]!r}"
    return str(error).splitlines()[0]


def replay_features(items: list[Transaction], zone: ZoneInfo) -> tuple[list[dict[str, Any]], list[dict[str, float]]]:
    """Signals and numeric metadata of each transaction at its point in time (items in time order)."""
    signals: list[dict[str, Any]] = []
    metadata: list[dict[str, float]] = []
    with private_feature_store() as store:
        for start in range(0, len(items), BATCH):
            _, batch_signals, batch_metadata = featurize(store, items[start:start + BATCH], zone)
            signals.extend(batch_signals)
            metadata.extend(batch_metadata)
    return signals, metadata


def metadata_features(metadata: list[dict[str, float]]) -> tuple[str, ...]:
    counts: dict[str, int] = {}
    for fields in metadata:
        for name in fields:
            counts[name] = counts.get(name, 0) + 1
    return tuple(sorted(name for name, count in counts.items() if count >= METADATA_MIN_SHARE * len(metadata)))


def _threshold(negative_scores: np.ndarray, fpr: float) -> float:
    """The smallest score that flags at most ``fpr`` of the legitimate transactions."""
    return float(np.quantile(negative_scores, 1.0 - fpr, method="higher")) + 1e-9


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_risk(items: list[Transaction], labels: np.ndarray, out_dir: Path, manifest_dir: Path, *,
               zone: ZoneInfo = ZoneInfo("UTC"), source: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train, evaluate on the later period, export and write the model directory; returns its card."""
    signals, metadata = replay_features(items, zone)
    meta_names = metadata_features(metadata)
    matrix = np.array([model_row(s, m, meta_names) for s, m in zip(signals, metadata, strict=True)], dtype=np.float32)
    features = [*BASE_MODEL_FEATURES, *(f"meta.{name}" for name in meta_names)]
    train_end = int(len(items) * SPLIT[0])
    valid_end = int(len(items) * (SPLIT[0] + SPLIT[1]))
    parts = {"train": slice(0, train_end), "validation": slice(train_end, valid_end), "test": slice(valid_end, None)}
    for part, rows in parts.items():
        if labels[rows].sum() == 0:
            raise LabelledFileError(f"the {part} period has no fraudulent transaction: more labelled data is needed")
    train = lightgbm.Dataset(matrix[parts["train"]], labels[parts["train"]], feature_name=_safe_names(features),
                             free_raw_data=False)
    valid = lightgbm.Dataset(matrix[parts["validation"]], labels[parts["validation"]], reference=train)
    booster = lightgbm.train(PARAMS, train, num_boost_round=MAX_ROUNDS, valid_sets=[valid],
                             callbacks=[lightgbm.early_stopping(EARLY_STOPPING, verbose=False)])
    booster = lightgbm.Booster(model_str=booster.model_to_string(num_iteration=booster.best_iteration))
    valid_scores = booster.predict(matrix[parts["validation"]])
    negatives = valid_scores[labels[parts["validation"]] == 0]
    review = _threshold(negatives, REVIEW_FPR)
    block = max(_threshold(negatives, BLOCK_FPR), review)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (ONNX_FILE, NATIVE_FILE, CARD_FILE):
        (out_dir / stale).unlink(missing_ok=True)
    booster.save_model(str(out_dir / NATIVE_FILE))
    onnx_model = onnxmltools.convert_lightgbm(booster, zipmap=False, target_opset=15,
                                              initial_types=[("input", FloatTensorType([None, len(features)]))])
    onnx_model.graph.name = MODEL_NAME  # the converter names it with a random id; same trees, same bytes
    (out_dir / ONNX_FILE).write_bytes(onnx_model.SerializeToString())
    onnx_version = _sha256(out_dir / ONNX_FILE)[:12]

    card: dict[str, Any] = {
        "name": MODEL_NAME,
        "version": onnx_version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "kind": "LightGBM gradient-boosted trees (binary), exported to ONNX with onnxmltools",
        "features": features,
        "metadata_features": list(meta_names),
        "data": {
            **(source or {}),
            "transactions": len(items), "fraud": int(labels.sum()),
            "from": items[0].timestamp.isoformat(), "to": items[-1].timestamp.isoformat(),
            "split": {part: {"from": items[rows][0].timestamp.isoformat(), "to": items[rows][-1].timestamp.isoformat(),
                             "transactions": len(items[rows]), "fraud": int(labels[rows].sum())}
                      for part, rows in parts.items()},
        },  # fmt: skip
        "training": {"params": PARAMS, "rounds": booster.current_iteration(), "split": "by time 70/10/20"},
        "metrics": {"test": detection_metrics(labels[parts["test"]], booster.predict(matrix[parts["test"]])),
                    "validation": detection_metrics(labels[parts["validation"]], valid_scores)},
        "thresholds": {"scores": {"review": round(review, 6), "block": round(block, 6)},
                       "chosen_on": "validation", "review_fpr": REVIEW_FPR, "block_fpr": BLOCK_FPR},
        "files": {name: _sha256(out_dir / name) for name in (ONNX_FILE, NATIVE_FILE)},
        "libraries": {name: package_version(name) for name in ("lightgbm", "onnxmltools", "onnxruntime", "onnx")},
    }
    (out_dir / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    Path(manifest_dir).mkdir(parents=True, exist_ok=True)
    write_manifest(MODEL_NAME, onnx_version, out_dir, Path(manifest_dir))
    _check_export(out_dir, Path(manifest_dir), matrix[parts["test"]])
    return card


def _safe_names(features: list[str]) -> list[str]:
    """LightGBM refuses some characters in feature names; the card keeps the real ones."""
    return ["".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name) for name in features]


def _check_export(out_dir: Path, manifest_dir: Path, rows: np.ndarray) -> None:
    model = RiskModel(out_dir, manifest_dir)
    sample = rows[: min(len(rows), 2000)]
    difference = float(np.abs(model.score(sample) - model.native_score(sample)).max())
    if difference > 1e-4:
        raise RiskModelError(f"ONNX scores differ from LightGBM's by up to {difference:.2e}: the export is wrong "
                             f"(is protobuf < 7 installed?)")


def file_source(path: Path) -> dict[str, Any]:
    return {"file": Path(path).name, "sha256": _sha256(Path(path))}
