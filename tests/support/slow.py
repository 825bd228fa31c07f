"""A plugin (loaded with SLIMLINE_PLUGINS) whose entity component takes long on one marked document,
the way a long document or a product's generation does, and says each time it starts on it."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from schemas import Entity
from workers.documents.entities.spacy_backend import SpacyEntityExtractor
from workers.registry import register

MARKER = "SLOW-ITEM"
STARTED = "started on the slow item"
log = logging.getLogger(__name__)


class SlowExtractor(SpacyEntityExtractor):
    def __call__(self, texts: list[str]) -> list[list[Entity]]:
        if any(MARKER in text for text in texts):
            log.warning(STARTED)
            time.sleep(float(os.environ.get("SLIMLINE_TEST_SLOW_SECONDS", "10")))
        return super().__call__(texts)


@register("entities.slow_for_tests")
def make_slow(package: str, model_dir: Path | None = None, manifest_dir: Path | None = None) -> SlowExtractor:
    return SlowExtractor(package, model_dir, manifest_dir=manifest_dir)
