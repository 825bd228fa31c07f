"""Detection metrics with bootstrap intervals, resampling accounts rather than transactions: the
transactions of one fraud episode belong to one account and are caught or missed together, so
resampling single transactions would make the intervals too narrow.

Scores are sorted once; each resample only reweights rows (an account drawn twice counts twice), so a
thousand resamples of a few hundred thousand rows take seconds. Several scorers share the same
resamples, which gives intervals for their differences too (``Bootstrap.difference``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FPRS = {"recall_at_0.1pct_fpr": 0.001, "recall_at_1pct_fpr": 0.01}
METRICS = ("average_precision", *FPRS)


class _Ranking:
    """One scorer's rows in descending score order, with the last position of each run of equal scores."""

    def __init__(self, labels: np.ndarray, scores: np.ndarray) -> None:
        self.order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
        self.labels = np.asarray(labels, dtype=np.float64)[self.order]
        ordered = np.asarray(scores, dtype=np.float64)[self.order]
        self.ends = np.flatnonzero(np.r_[ordered[1:] != ordered[:-1], True])

    def metrics(self, weights: np.ndarray) -> np.ndarray:
        """Average precision and recall at each FPR of FPRS (ties count as one threshold, as in scikit-learn)."""
        weights = weights[self.order]
        true_positives = np.cumsum(weights * self.labels)[self.ends]
        false_positives = np.cumsum(weights * (1.0 - self.labels))[self.ends]
        positives, negatives = true_positives[-1], false_positives[-1]
        if positives == 0 or negatives == 0:
            return np.full(len(METRICS), np.nan)
        flagged = true_positives + false_positives
        precision = np.divide(true_positives, flagged, out=np.zeros_like(flagged), where=flagged > 0)
        recall = true_positives / positives
        average_precision = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
        false_positive_rate = false_positives / negatives
        recalls = [float(np.max(recall[false_positive_rate <= fpr], initial=0.0)) for fpr in FPRS.values()]
        return np.array([average_precision, *recalls])


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": round(self.value, 4), "low": round(self.low, 4), "high": round(self.high, 4)}

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


class Bootstrap:
    """Point metrics and 95 % percentile intervals of several scorers on one labelled period."""

    def __init__(self, labels: np.ndarray, scores: dict[str, np.ndarray], groups: np.ndarray, *,
                 resamples: int = 1000, seed: int = 0) -> None:
        labels = np.asarray(labels)
        _, group_index = np.unique(np.asarray(groups), return_inverse=True)
        group_count = int(group_index.max()) + 1 if len(group_index) else 0
        rankings = {name: _Ranking(labels, values) for name, values in scores.items()}
        self.resamples = resamples
        self.base_rate = float(labels.mean()) if len(labels) else float("nan")
        self.points = {name: ranking.metrics(np.ones(len(labels))) for name, ranking in rankings.items()}
        rng = np.random.default_rng(seed)
        self.draws: dict[str, np.ndarray] = {name: np.empty((resamples, len(METRICS))) for name in scores}
        self.base_rates = np.empty(resamples)
        for r in range(resamples):
            weights = np.bincount(rng.integers(group_count, size=group_count), minlength=group_count)[group_index]
            weights = weights.astype(np.float64)
            self.base_rates[r] = np.sum(weights * labels) / max(np.sum(weights), 1.0)
            for name, ranking in rankings.items():
                self.draws[name][r] = ranking.metrics(weights)

    def interval(self, name: str, metric: str = "average_precision") -> Interval:
        column = METRICS.index(metric)
        low, high = np.nanpercentile(self.draws[name][:, column], [2.5, 97.5])
        return Interval(float(self.points[name][column]), float(low), float(high))

    def difference(self, name: str, other: str, metric: str = "average_precision") -> Interval:
        """``name`` minus ``other``, resample by resample."""
        column = METRICS.index(metric)
        deltas = self.draws[name][:, column] - self.draws[other][:, column]
        low, high = np.nanpercentile(deltas, [2.5, 97.5])
        point = self.points[name][column] - self.points[other][column]
        return Interval(float(point), float(low), float(high))

    def share_of_lift(self, name: str, without: str) -> Interval:
        """How much of ``name``'s average precision above the base rate is lost in ``without``."""
        full, reduced = self.draws[name][:, 0], self.draws[without][:, 0]
        shares = (full - reduced) / (full - self.base_rates)
        low, high = np.nanpercentile(shares, [2.5, 97.5])
        point = (self.points[name][0] - self.points[without][0]) / (self.points[name][0] - self.base_rate)
        return Interval(float(point), float(low), float(high))

    def summary(self, name: str) -> dict[str, dict[str, float]]:
        return {metric: self.interval(name, metric).as_dict() for metric in METRICS}
