"""A plugin (loaded with SLIMLINE_PLUGINS) whose entity component fails on one marked document,
the way a real model can fail on one pathological input."""

from __future__ import annotations

from typing import Any

from workers.documents.entities.multilingual import build_entity_extractor
from workers.registry import register
from workers.settings import Settings

MARKER = "POISON-PILL"


class PoisonedExtractor:
    def __init__(self, settings: Settings) -> None:
        self.inner = build_entity_extractor(settings)
        self.models_used: list[str | None] = []

    def __call__(self, texts: list[str], languages: list[str | None]) -> list[list[dict[str, Any]]]:
        if any(MARKER in text for text in texts):
            raise ValueError("pathological input")
        entities = self.inner(texts, languages)
        self.models_used = self.inner.models_used
        return entities


@register("entities.poisoned_for_tests")
def make_poisoned(settings: Settings) -> PoisonedExtractor:
    return PoisonedExtractor(settings)
