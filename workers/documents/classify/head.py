"""A trained linear head (multinomial logistic regression) saved without pickle: weights in ``.npz``,
config in JSON, both hash-checked through the model manifest mechanism before they are used.

Folder layout made by :func:`save_head`::

    DIR/head/weights.npz      coef (labels × dim), intercept (labels), labels (str)
    DIR/head/config.json      encoder it was trained on, labels, training metrics
    DIR/classifier-head-1.json   SHA-256 manifest of DIR/head
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workers.documents.classify.result import Classification, best_labels, softmax
from workers.models.encoders.base import Encoder
from workers.models.integrity import verify, write_manifest
from workers.registry import register

MANIFEST_NAME = "classifier-head"
FORMAT_VERSION = "1"


class HeadMismatchError(ValueError):
    """The head was trained on another encoder's vectors: its weights mean nothing for this one."""


def save_head(out_dir: Path, coef: np.ndarray, intercept: np.ndarray, labels: list[str],
              config: dict[str, Any]) -> str:
    """Write the head and its manifest; returns the SHA-256 of the weights file."""
    head_dir = out_dir / "head"
    head_dir.mkdir(parents=True, exist_ok=True)
    np.savez(head_dir / "weights.npz", coef=coef.astype(np.float32), intercept=intercept.astype(np.float32),
             labels=np.array(labels, dtype=str))
    (head_dir / "config.json").write_text(json.dumps({"format": FORMAT_VERSION, "labels": labels, **config},
                                                     indent=2, ensure_ascii=False) + "\n")
    write_manifest(MANIFEST_NAME, FORMAT_VERSION, head_dir, manifest_dir=out_dir)
    return hashlib.sha256((head_dir / "weights.npz").read_bytes()).hexdigest()


class TrainedClassifier:
    method = "trained"

    def __init__(self, encoder: Encoder, head_dir: Path) -> None:
        """Raises ModelIntegrityError if the files do not match their manifest, HeadMismatchError if the
        head was trained on another encoder."""
        verify(MANIFEST_NAME, FORMAT_VERSION, head_dir / "head", manifest_dir=head_dir)
        config = json.loads((head_dir / "head" / "config.json").read_text())
        if config["encoder"] != encoder.info.model:
            raise HeadMismatchError(
                f"classifier in {head_dir} was trained on {config['encoder']}, this worker runs "
                f"{encoder.info.model}: retrain it or set the matching encoder"
            )
        with np.load(head_dir / "head" / "weights.npz", allow_pickle=False) as weights:
            self._coef = weights["coef"]
            self._intercept = weights["intercept"]
            self.labels = [str(label) for label in weights["labels"]]
        self.encoder = encoder
        weights_hash = hashlib.sha256((head_dir / "head" / "weights.npz").read_bytes()).hexdigest()[:12]
        self.model = f"{encoder.info.model}+head:{weights_hash}"

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        return softmax(embeddings @ self._coef.T + self._intercept)

    def classify_embeddings(self, embeddings: np.ndarray) -> list[Classification]:
        return best_labels(self.probabilities(embeddings), self.labels, "trained", self.model)

    def __call__(self, texts: Sequence[str]) -> list[Classification]:
        return self.classify_embeddings(self.encoder.encode(texts))


@register("classifier.trained")
def make_trained(encoder: Encoder, head_dir: Path) -> TrainedClassifier:
    return TrainedClassifier(encoder, head_dir)
