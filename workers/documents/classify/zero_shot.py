"""Zero-shot classes by embedding similarity between a document and the descriptions of each label.

A label's similarity is the mean over its descriptions (one per language in the shipped file), so a
label is not favoured for having more lines. Similarities become probabilities through a softmax at the
encoder's temperature (``EncoderInfo.temperature``): each encoder's cosines sit in a band of their own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workers.documents.classify.labels import read_labels
from workers.documents.classify.result import Classification, best_labels, softmax
from workers.models.encoders.base import Encoder
from workers.registry import register


class ZeroShotClassifier:
    method = "zero_shot"

    def __init__(self, encoder: Encoder, labels_path: Path) -> None:
        descriptions = read_labels(labels_path)
        self.encoder = encoder
        self.labels = list(descriptions)
        self.temperature = encoder.info.temperature
        flat = [text for label in self.labels for text in descriptions[label]]
        owners = np.array([index for index, label in enumerate(self.labels) for _ in descriptions[label]])
        # (descriptions × labels) averaging matrix: similarities @ it = mean similarity per label.
        self._average = (owners[:, None] == np.arange(len(self.labels))[None, :]).astype(np.float32)
        self._average /= self._average.sum(axis=0, keepdims=True)
        self._descriptions = encoder.encode(flat)
        labels_hash = hashlib.sha256(labels_path.read_bytes()).hexdigest()[:12]
        self.model = f"{encoder.info.model}+labels:{labels_hash}"

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        similarities = (embeddings @ self._descriptions.T) @ self._average
        return softmax(similarities / self.temperature)

    def classify_embeddings(self, embeddings: np.ndarray) -> list[Classification]:
        return best_labels(self.probabilities(embeddings), self.labels, "zero_shot", self.model)

    def __call__(self, texts: Sequence[str]) -> list[Classification]:
        return self.classify_embeddings(self.encoder.encode(texts))


@register("classifier.zero_shot")
def make_zero_shot(encoder: Encoder, labels_path: Path) -> ZeroShotClassifier:
    return ZeroShotClassifier(encoder, labels_path)
