"""Train the risk model from labelled transactions (``slimline train risk LABELLED.jsonl``).

Input: JSON lines, each a transaction in the contract plus ``"label": 0|1`` (and optionally
``"scenario"``, ignored). Features are computed exactly as live (signals.featurize) on a private Redis,
in timestamp order, so each row sees only earlier transactions.

How the shipped model is made (:func:`fit`), on all the labelled history after a warm-up (the first
7 days of a replay start from empty account state, unlike anything live; they build the state and are
not trained on), with ``account_age_days`` left out (in a replay it counts the days since the history
began: a calendar clock, not an age):
1. Time-ordered cross-validation chooses the number of boosting rounds and the few hyperparameters that
   matter on rare fraud: ``num_leaves``, ``min_sum_hessian_in_leaf`` (min_child_weight) and
   ``scale_pos_weight`` (class weighting). The history is cut into ``folds + 1`` blocks in time order;
   fold k trains on the blocks before block k+1 (less a one-day gap, so that an episode running across
   the cut does not train on its own later rows) and is scored on block k+1. The choice maximises the
   folds' mean average precision; the rounds are where that mean stops improving.
2. The chosen model is refit on all the history (a random split would let the model see the future of
   the same accounts; a single validation slice holds too few frauds to choose anything).
3. Thresholds come from the bank's policy (:class:`ThresholdPolicy`): the share of transactions, or of
   legitimate transactions (false-positive rate), that the score may send to review, and to block. They
   are quantiles of out-of-fold scores: scores of transactions the scoring model did not train on.

How it is measured (:func:`evaluate`): the same procedure is run on the history before the last
``holdout`` of the period (20 % by default), and that model is scored on the later slice it never saw:
average precision and recall at 0.1 % and 1 % FPR, with 95 % intervals by bootstrap over accounts, and
the review and block shares the policy's thresholds really give there. The shipped model is the refit
on everything, so the card's figures are those of its procedure on less data, a slightly pessimistic
estimate.

Output directory: model.onnx (ONNX Runtime scoring), model.lgb.txt (LightGBM text format, for reason
codes), card.json (features and which carry the model, the search, thresholds and their policy,
evaluation, data and file hashes); plus a SHA-256 manifest ``transactions-risk-<version>.json`` in the
manifest directory, checked before every load.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import lightgbm
import numpy as np
import onnxmltools
from onnxmltools.convert.common.data_types import FloatTensorType
from pydantic import ValidationError

from schemas import Transaction
from workers.models.integrity import write_manifest
from workers.transactions.features import private_feature_store
from workers.transactions.intervals import Bootstrap
from workers.transactions.risk import CARD_FILE, MODEL_NAME, NATIVE_FILE, ONNX_FILE, RiskModel, RiskModelError
from workers.transactions.signals import ACCOUNT_SIGNALS, BASE_MODEL_FEATURES, featurize, model_row

BATCH = 512
METADATA_MIN_SHARE = 0.01  # a metadata field present in at least 1 % of rows becomes a feature
GAP_SECONDS = 86_400  # between a fold's training rows and the block it is scored on
PARAMS: dict[str, Any] = {
    "objective": "binary", "learning_rate": 0.05, "min_data_in_leaf": 20, "feature_fraction": 0.9,
    "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0, "metric": "average_precision", "verbose": -1,
    "num_threads": 1, "deterministic": True, "seed": 7,
}  # fmt: skip
# What matters on rare fraud: tree size, the minimum hessian per leaf (min_child_weight: with p ~ 0.005 a
# row weighs ~0.005, so 1.0 means leaves of ~200 legitimate rows) and up-weighting fraud.
SEARCH: dict[str, tuple[Any, ...]] = {
    "num_leaves": (7, 15, 31), "min_sum_hessian_in_leaf": (1e-3, 1.0), "scale_pos_weight": (1.0, 10.0),
}  # fmt: skip
# The first days of a replay start from empty account state: every merchant is new and the 7-day windows
# are incomplete, which never happens live. Those rows build the state but are not trained on.
WARM_UP = "replayed for the accounts' state, not trained on: their features start from an empty state"
# In a replayed history, an account's age is the time since the history began for every account that
# existed before it: a calendar clock, which would let the model learn the period instead of behaviour
# (and makes its score drift on later data). Rules can still use it.
UNUSED = {"account_age_days": "in a replay it counts days since the history began, not the account's age"}
# Features computed from the account's history (Redis, account_features.lua); the rest describe the
# transaction alone or come from the bank's metadata.
HISTORY_FEATURES = tuple(name for name in BASE_MODEL_FEATURES if name in ACCOUNT_SIGNALS)


class LabelledFileError(ValueError):
    """A labelled file cannot be used (or holds too little fraud); the message says which line or why."""


@dataclass(frozen=True)
class Target:
    """A share the score may flag: of all transactions (``rate``) or of legitimate ones (``fpr``)."""

    basis: Literal["rate", "fpr"]
    share: float

    def __post_init__(self) -> None:
        if self.basis not in ("rate", "fpr") or not 0 < self.share < 1:
            raise ValueError(f"a threshold target needs basis 'rate' or 'fpr' and a share in (0, 1), not {self}")

    def __str__(self) -> str:
        return f"{self.share:.3%} of {'all' if self.basis == 'rate' else 'legitimate'} transactions"


@dataclass(frozen=True)
class ThresholdPolicy:
    """What the bank states: how much the model alone may send to review, and to block."""

    review: Target = Target("fpr", 0.005)
    block: Target = Target("fpr", 0.0002)


@dataclass(frozen=True)
class TrainingPlan:
    search: dict[str, tuple[Any, ...]] = field(default_factory=lambda: dict(SEARCH))
    folds: int = 4
    max_rounds: int = 600
    early_stopping: int = 50
    holdout: float = 0.2  # the later share of the period the evaluation is measured on
    warm_up_days: float = 7.0  # replayed to build the accounts' state, not trained on (see WARM_UP)
    unused: tuple[str, ...] = ("account_age_days",)  # kept in the input, never split on (see UNUSED)
    increasing: tuple[str, ...] = ()  # monotone constraints: the risk may only grow with these features
    policy: ThresholdPolicy = ThresholdPolicy()
    resamples: int = 1000


@dataclass
class History:
    """The labelled history as the model sees it: one row per transaction, in time order."""

    matrix: np.ndarray
    labels: np.ndarray
    features: list[str]
    metadata_features: tuple[str, ...]
    seconds: np.ndarray  # each transaction's timestamp (epoch seconds)
    accounts: np.ndarray  # each transaction's account, for the bootstrap
    items: list[Transaction]
    signals: list[dict[str, Any]]  # what the rules see (backtests and benchmarks use them)

    def period(self, rows: slice) -> dict[str, Any]:
        items = self.items[rows]
        return {"from": items[0].timestamp.isoformat(), "to": items[-1].timestamp.isoformat(),
                "transactions": len(items), "fraud": int(self.labels[rows].sum())}


@dataclass
class Fit:
    booster: lightgbm.Booster
    columns: list[int]  # of the history's features
    params: dict[str, Any]
    rounds: int
    search: list[dict[str, Any]]
    thresholds: dict[str, float]
    out_of_fold: dict[str, Any]
    rows: slice  # of the history, trained on (after the warm-up)

    def score(self, matrix: np.ndarray) -> np.ndarray:
        return self.booster.predict(matrix[:, self.columns])


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


def build_history(items: list[Transaction], labels: np.ndarray, zone: ZoneInfo = ZoneInfo("UTC")) -> History:
    """Replay the history (items in time order) into the model's rows."""
    signals, metadata = replay_features(items, zone)
    meta_names = metadata_features(metadata)
    matrix = np.array([model_row(s, m, meta_names) for s, m in zip(signals, metadata, strict=True)], dtype=np.float32)
    return History(
        matrix=matrix, labels=np.asarray(labels, dtype=np.int8),
        features=[*BASE_MODEL_FEATURES, *(f"meta.{name}" for name in meta_names)], metadata_features=meta_names,
        seconds=np.array([item.timestamp.timestamp() for item in items]),
        accounts=np.array([item.account_id for item in items]), items=items, signals=signals,
    )


# -- choosing, refitting, thresholds ------------------------------------------------------------------------


def time_folds(seconds: np.ndarray, labels: np.ndarray, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds over rows in time order: (training rows, scored rows) per fold."""
    blocks = np.array_split(np.arange(len(seconds)), folds + 1)
    if any(len(block) == 0 for block in blocks):
        raise LabelledFileError(f"{len(seconds)} transactions after the warm-up: too few for {folds} folds")
    result = []
    for k in range(1, folds + 1):
        scored = blocks[k]
        train = np.arange(scored[0])
        train = train[seconds[train] < seconds[scored[0]] - GAP_SECONDS]
        if labels[scored].sum() == 0 or labels[train].sum() == 0:
            raise LabelledFileError(
                f"cross-validation fold {k} of {folds} has no fraudulent transaction to "
                f"{'score' if labels[scored].sum() == 0 else 'learn from'}: more labelled history (or fewer folds) "
                f"is needed")
        result.append((train, scored))
    return result


def _candidates(search: dict[str, tuple[Any, ...]]) -> list[dict[str, Any]]:
    names = sorted(search)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*(search[n] for n in names))]


def _safe_names(features: list[str]) -> list[str]:
    """LightGBM refuses some characters in feature names; the card keeps the real ones."""
    return ["".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name) for name in features]


def threshold(scores: np.ndarray, labels: np.ndarray, target: Target) -> float:
    """The smallest score that flags at most the target's share of the (legitimate) transactions."""
    pool = scores if target.basis == "rate" else scores[labels == 0]
    return float(np.quantile(pool, 1.0 - target.share, method="higher")) + 1e-9


def fit(history: History, rows: slice, plan: TrainingPlan, columns: list[int] | None = None,
        progress: Callable[[str], None] = lambda message: None) -> Fit:
    """Choose by time-ordered cross-validation on ``rows``, refit on all of them, set thresholds."""
    columns = list(range(len(history.features))) if columns is None else columns
    names = [history.features[c] for c in columns]
    unknown = set(plan.increasing) - set(names)
    if unknown:
        raise ValueError(f"monotone constraint on unknown feature(s): {', '.join(sorted(unknown))}")
    warm = int(np.searchsorted(history.seconds, history.seconds[0] + plan.warm_up_days * 86_400))
    rows = slice(max(rows.start or 0, warm), len(history.labels) if rows.stop is None else rows.stop)
    matrix, labels = history.matrix[rows][:, columns], history.labels[rows]
    for name in set(plan.unused) & set(names):
        matrix[:, names.index(name)] = np.nan  # constant: LightGBM never splits on it
    folds = time_folds(history.seconds[rows], labels, plan.folds)
    dataset = lightgbm.Dataset(matrix, labels, feature_name=_safe_names(names), free_raw_data=False)
    base = {**PARAMS, **({"monotone_constraints": [int(name in plan.increasing) for name in names]}
                         if plan.increasing else {})}
    search, best = [], None
    for number, candidate in enumerate(_candidates(plan.search), start=1):
        params = {**base, **candidate}
        result = lightgbm.cv(params, dataset, num_boost_round=plan.max_rounds, folds=folds, return_cvbooster=True,
                             callbacks=[lightgbm.early_stopping(plan.early_stopping, verbose=False)])
        curve = result["valid average_precision-mean"]
        rounds = int(np.argmax(curve)) + 1
        search.append({**candidate, "rounds": rounds, "cv_average_precision": round(float(curve[rounds - 1]), 4)})
        progress(f"candidate {number}: {candidate} -> mean AP {curve[rounds - 1]:.4f} at {rounds} rounds")
        if best is None or curve[rounds - 1] > best[0]:
            best = (curve[rounds - 1], params, rounds, result["cvbooster"])
    assert best is not None
    _, params, rounds, cv_booster = best
    out_of_fold = np.concatenate([booster.predict(matrix[scored], num_iteration=rounds)
                                  for booster, (_, scored) in zip(cv_booster.boosters, folds, strict=True)])
    scored_rows = np.concatenate([scored for _, scored in folds])
    review = threshold(out_of_fold, labels[scored_rows], plan.policy.review)
    block = max(threshold(out_of_fold, labels[scored_rows], plan.policy.block), review)
    booster = lightgbm.train(params, lightgbm.Dataset(matrix, labels, feature_name=_safe_names(names)),
                             num_boost_round=rounds)
    return Fit(booster=booster, columns=columns, params=params, rounds=rounds, search=search,
               thresholds={"review": review, "block": block},
               out_of_fold={"transactions": len(scored_rows), "fraud": int(labels[scored_rows].sum())}, rows=rows)


def evaluate(history: History, plan: TrainingPlan,
             progress: Callable[[str], None] = lambda message: None) -> tuple[dict[str, Any], Fit]:
    """Fit on the history before the holdout, measure on the holdout; the report and that model."""
    cut = int(len(history.labels) * (1 - plan.holdout))
    earlier, later = slice(0, cut), slice(cut, None)
    if history.labels[later].sum() == 0:
        raise LabelledFileError("the later period held out for evaluation has no fraudulent transaction: more "
                                "labelled history is needed")
    model = fit(history, earlier, plan, progress=progress)
    labels, scores = history.labels[later], model.score(history.matrix[later])
    bootstrap = Bootstrap(labels, {"model": scores}, history.accounts[later], resamples=plan.resamples)
    realised = {}
    for action, target in (("review", plan.policy.review), ("block", plan.policy.block)):
        flagged = scores >= model.thresholds[action]
        realised[action] = {"target": str(target), "share_of_all": round(float(flagged.mean()), 5),
                            "share_of_legitimate": round(float(flagged[labels == 0].mean()), 5),
                            "recall": round(float(flagged[labels == 1].mean()), 4)}
    report = {
        "method": f"the same procedure on the first {1 - plan.holdout:.0%} of the period, scored on the last "
                  f"{plan.holdout:.0%}; 95 % intervals by bootstrap over accounts ({plan.resamples} resamples)",
        "trained_on": history.period(model.rows), "measured_on": history.period(later),
        "base_rate": round(bootstrap.base_rate, 5), "metrics": bootstrap.summary("model"),
        "thresholds_realised": realised, "chosen": {k: model.params[k] for k in plan.search}, "rounds": model.rounds,
    }
    return report, model


def importance(fit_result: Fit, features: list[str]) -> dict[str, Any]:
    """Share of the total split gain per feature (strongest first), and per group: the account's history
    (the Redis features), the transaction itself, the bank's metadata."""
    gains = fit_result.booster.feature_importance("gain")
    total = float(gains.sum()) or 1.0
    names = [features[c] for c in fit_result.columns]
    shares = [(name, round(float(gain) / total, 4)) for name, gain in sorted(zip(names, gains, strict=True),
                                                                              key=lambda pair: -pair[1])]
    groups = {"account_history": 0.0, "transaction": 0.0, "bank_metadata": 0.0}
    for name, share in shares:
        group = ("bank_metadata" if name.startswith("meta.") else
                 "account_history" if name in HISTORY_FEATURES else "transaction")
        groups[group] += share
    return {"gain_share": [[name, share] for name, share in shares],
            "gain_share_by_group": {k: round(v, 4) for k, v in groups.items()}}


# -- the model directory -------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_risk(items: list[Transaction], labels: np.ndarray, out_dir: Path, manifest_dir: Path, *,
               zone: ZoneInfo = ZoneInfo("UTC"), source: dict[str, Any] | None = None,
               plan: TrainingPlan = TrainingPlan(),
               progress: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Measure the procedure on a later slice, fit on all the history, export; returns the card."""
    labels = np.asarray(labels, dtype=np.int8)
    if labels.sum() == 0:
        raise LabelledFileError("the labelled history has no fraudulent transaction")
    progress(f"replaying {len(items)} transactions for their features")
    return train_from_history(build_history(items, labels, zone), out_dir, manifest_dir, source=source, plan=plan,
                              progress=progress)


def train_from_history(history: History, out_dir: Path, manifest_dir: Path, *, source: dict[str, Any] | None = None,
                       plan: TrainingPlan = TrainingPlan(),
                       progress: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """:func:`train_risk` on an already replayed history."""
    labels = history.labels
    progress("evaluation: the procedure on the earlier period, measured on the later one")
    evaluation, _ = evaluate(history, plan, progress=progress)
    progress("the shipped model: the procedure on all the history")
    final = fit(history, slice(0, len(labels)), plan, progress=progress)
    booster = final.booster

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (ONNX_FILE, NATIVE_FILE, CARD_FILE):
        (out_dir / stale).unlink(missing_ok=True)
    booster.save_model(str(out_dir / NATIVE_FILE))
    onnx_model = onnxmltools.convert_lightgbm(booster, zipmap=False, target_opset=15,
                                              initial_types=[("input", FloatTensorType([None, len(history.features)]))])
    onnx_model.graph.name = MODEL_NAME  # the converter names it with a random id; same trees, same bytes
    # ... and lists the opsets in set order, which changes with Python's hash seed: sort them.
    opsets = sorted((opset.domain, opset.version) for opset in onnx_model.opset_import)
    del onnx_model.opset_import[:]
    for domain, opset_version in opsets:
        onnx_model.opset_import.add(domain=domain, version=opset_version)
    (out_dir / ONNX_FILE).write_bytes(onnx_model.SerializeToString())
    onnx_version = _sha256(out_dir / ONNX_FILE)[:12]
    everything = slice(0, len(labels))

    card: dict[str, Any] = {
        "name": MODEL_NAME,
        "version": onnx_version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "kind": "LightGBM gradient-boosted trees (binary), exported to ONNX with onnxmltools",
        "features": history.features,
        "metadata_features": list(history.metadata_features),
        "importance": importance(final, history.features),
        "data": {**(source or {}), **history.period(everything)},
        "training": {
            "method": f"hyperparameters and rounds by time-ordered cross-validation ({plan.folds} expanding-window "
                      f"folds, {GAP_SECONDS // 3600} h gap, mean average precision), then refit on all the history",
            "params": final.params, "rounds": final.rounds, "search": final.search,
            "refit_on": history.period(final.rows), "monotone_increasing": list(plan.increasing),
            "warm_up": {"days": plan.warm_up_days, "why": WARM_UP},
            "unused_features": {name: UNUSED.get(name, "left out by the plan") for name in plan.unused},
        },
        "thresholds": {
            "scores": {"review": round(final.thresholds["review"], 6), "block": round(final.thresholds["block"], 6)},
            "policy": {"review": asdict(plan.policy.review), "block": asdict(plan.policy.block)},
            "chosen_on": f"out-of-fold scores of the cross-validation ({final.out_of_fold['transactions']} "
                         f"transactions, {final.out_of_fold['fraud']} fraudulent)",
        },
        "evaluation": evaluation,
        "files": {name: _sha256(out_dir / name) for name in (ONNX_FILE, NATIVE_FILE)},
        "libraries": {name: package_version(name) for name in ("lightgbm", "onnxmltools", "onnxruntime", "onnx")},
    }
    (out_dir / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    Path(manifest_dir).mkdir(parents=True, exist_ok=True)
    write_manifest(MODEL_NAME, onnx_version, out_dir, Path(manifest_dir))
    _check_export(out_dir, Path(manifest_dir), history.matrix[-2000:])
    return card


def _check_export(out_dir: Path, manifest_dir: Path, rows: np.ndarray) -> None:
    model = RiskModel(out_dir, manifest_dir)
    difference = float(np.abs(model.score(rows) - model.native_score(rows)).max())
    if difference > 1e-4:
        raise RiskModelError(f"ONNX scores differ from LightGBM's by up to {difference:.2e}: the export is wrong "
                             f"(is protobuf < 7 installed?)")


def file_source(path: Path) -> dict[str, Any]:
    return {"file": Path(path).name, "sha256": _sha256(Path(path))}
