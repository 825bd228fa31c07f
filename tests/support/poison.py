"""A plugin (loaded with SLIMLINE_PLUGINS) whose entity component fails on one marked document,
the way a real model can fail on one pathological input."""

from __future__ import annotations

from pathlib import Path

from schemas import Entity
from workers.documents.entities.spacy_backend import SpacyEntityExtractor
from workers.registry import register

MARKER = "POISON-PILL"


class PoisonedExtractor(SpacyEntityExtractor):
    def __call__(self, texts: list[str]) -> list[list[Entity]]:
        if any(MARKER in text for text in texts):
            raise ValueError("pathological input")
        return super().__call__(texts)


@register("entities.poisoned_for_tests")
def make_poisoned(package: str, model_dir: Path | None = None, manifest_dir: Path | None = None) -> PoisonedExtractor:
    return PoisonedExtractor(package, model_dir, manifest_dir=manifest_dir)
