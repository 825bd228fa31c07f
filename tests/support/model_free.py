"""A plugin (loaded with SLIMLINE_PLUGINS) that makes the documents pipeline model-free: language, entities,
encoder and summarizer are registered components doing trivial work, so that what a run measures is the shared
path (broker, batching, store) and not a model. ``MODEL_FREE_ENV`` selects them.

Two test hooks, both off unless their variable is set:
- ``SLIMLINE_TEST_BATCH_SECONDS``: each batch also sleeps this long, so a host holds work in flight when a
  fault hits it (a model's batch takes time too);
- ``SLIMLINE_TEST_PROCESSED_LOG``: each batch appends one line per document, ``<host> <first word of the text>``
  (``SLIMLINE_TEST_HOST`` names the host), in one ``O_APPEND`` write: the tests put the item's id first in its
  text and count how often each item was processed (at least once; a redelivery processes it again)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence

import numpy as np

from workers.documents.summarize.base import Summary
from workers.models.encoders.base import EncoderInfo, l2_normalize
from workers.registry import register

MODEL_FREE_ENV = {
    "SLIMLINE_PLUGINS": '["tests.support.model_free"]',
    "SLIMLINE_LANGUAGE_DETECTOR": "language.model_free",
    "SLIMLINE_DOCUMENTS__ENTITIES": "entities.model_free",
    "SLIMLINE_DOCUMENTS__ENCODER": "encoder.model_free",
    "SLIMLINE_DOCUMENTS__SUMMARIZER": "summarizer.model_free",
}
DIMENSIONS = 8


class FixedLanguage:
    name = "model-free"
    version = "1"

    def __call__(self, texts: list[str]) -> list[tuple[str | None, float | None]]:
        return [("en", 1.0) for _ in texts]


class RecordingEntities:
    """No entities; records which items were processed (and sleeps, if asked), once per batch."""

    def __init__(self) -> None:
        self.models_used: list[str | None] = []
        self.sleep_seconds = float(os.environ.get("SLIMLINE_TEST_BATCH_SECONDS", "0"))
        self.log_path = os.environ.get("SLIMLINE_TEST_PROCESSED_LOG")
        self.host = os.environ.get("SLIMLINE_TEST_HOST", "host")

    def __call__(self, texts: list[str], languages: list[str | None]) -> list[list[dict[str, object]]]:
        self.models_used = [None] * len(texts)
        if self.log_path:
            lines = "".join(f"{self.host} {text.split(maxsplit=1)[0] if text.strip() else '-'}\n" for text in texts)
            descriptor = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(descriptor, lines.encode())
            finally:
                os.close(descriptor)
        if self.sleep_seconds:
            time.sleep(self.sleep_seconds)
        return [[] for _ in texts]


class HashEncoder:
    """A vector from the text's SHA-256: deterministic, no model."""

    info = EncoderInfo(name="model-free", version="1", dim=DIMENSIONS, languages="multilingual")
    load_seconds = 0.0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = [np.frombuffer(hashlib.sha256(text.encode()).digest()[:DIMENSIONS], dtype=np.uint8) for text in texts]
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(texts), DIMENSIONS) - 127.5
        return l2_normalize(matrix)

    def warm_up(self) -> dict[str, float]:
        return {}


class FirstWordsSummarizer:
    def __call__(self, texts: Sequence[str], languages: Sequence[str | None]) -> list[Summary]:
        return [Summary(method="extractive", model="model-free", sentences=[], text=text[:80]) for text in texts]


@register("language.model_free")
def make_language() -> FixedLanguage:
    return FixedLanguage()


@register("entities.model_free")
def make_entities(settings: object) -> RecordingEntities:
    return RecordingEntities()


@register("encoder.model_free")
def make_encoder(**_: object) -> HashEncoder:
    return HashEncoder()


@register("summarizer.model_free")
def make_summarizer(**_: object) -> FirstWordsSummarizer:
    return FirstWordsSummarizer()


def processed_counts(log_path: str | os.PathLike[str]) -> dict[str, dict[str, int]]:
    """{item id: {host: times processed}} from a processed log."""
    counts: dict[str, dict[str, int]] = {}
    try:
        with open(log_path) as log:
            for line in log:
                host, _, item_id = line.strip().partition(" ")
                per_host = counts.setdefault(item_id, {})
                per_host[host] = per_host.get(host, 0) + 1
    except FileNotFoundError:
        pass
    return counts
