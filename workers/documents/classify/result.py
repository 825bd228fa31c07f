"""One classification outcome, stored under ``classification`` in a document's result."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

Method = Literal["zero_shot", "trained"]


@dataclass(frozen=True)
class Classification:
    label: str
    score: float  # probability of the chosen label (softmax over the labels)
    margin: float  # its probability minus the runner-up's: small means the two are hard to tell apart
    method: Method
    model: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def best_labels(probabilities: np.ndarray, labels: list[str], method: Method, model: str) -> list[Classification]:
    """Top label per row, with its probability and its margin over the second best."""
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    return [
        Classification(label=labels[int(best)], score=round(float(pair[1]), 4),
                       margin=round(float(pair[1] - pair[0]), 4), method=method, model=model)
        for best, pair in zip(probabilities.argmax(axis=1), top_two, strict=True)
    ]
