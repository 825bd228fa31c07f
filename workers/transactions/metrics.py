"""Detection metrics on a labelled period: what the issue asks to report for rules, model and both."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_curve


def recall_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """The highest recall reachable while flagging at most ``fpr`` of the legitimate transactions."""
    false_positive_rate, true_positive_rate, _ = roc_curve(labels, scores)
    return float(true_positive_rate[false_positive_rate <= fpr].max())


def precision_at_k(labels: np.ndarray, scores: np.ndarray, k: int = 100) -> float:
    """Of the ``k`` highest scores (ties broken by position), the share that are fraud."""
    top = np.argsort(-scores, kind="stable")[:k]
    return float(labels[top].mean()) if len(top) else 0.0


def detection_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    return {
        "transactions": int(len(labels)),
        "fraud": int(labels.sum()),
        "average_precision": round(float(average_precision_score(labels, scores)), 4),
        "recall_at_0.1pct_fpr": round(recall_at_fpr(labels, scores, 0.001), 4),
        "recall_at_1pct_fpr": round(recall_at_fpr(labels, scores, 0.01), 4),
        "precision_at_100": round(precision_at_k(labels, scores, 100), 4),
    }


def flag_metrics(labels: np.ndarray, flagged: np.ndarray) -> dict[str, float | int]:
    """Precision and recall of a yes/no decision (a rule fired, a transaction was flagged)."""
    labels, flagged = np.asarray(labels, dtype=bool), np.asarray(flagged, dtype=bool)
    hits = int((labels & flagged).sum())
    return {
        "flagged": int(flagged.sum()),
        "true_positives": hits,
        "precision": round(hits / flagged.sum(), 4) if flagged.any() else None,
        "recall": round(hits / labels.sum(), 4) if labels.any() else None,
    }
