"""A plugin (loaded with SLIMLINE_PLUGINS) whose entity component takes long on one marked document,
the way a long document or a product's generation does, and says each time it starts on it."""

from __future__ import annotations

import logging
import os
import time

from tests.support.poison import PoisonedExtractor
from workers.registry import register
from workers.settings import Settings

MARKER = "SLOW-ITEM"
STARTED = "started on the slow item"
log = logging.getLogger(__name__)


class SlowExtractor(PoisonedExtractor):
    def __call__(self, texts: list[str], languages: list[str | None]) -> list[list[dict]]:  # type: ignore[type-arg]
        if any(MARKER in text for text in texts):
            log.warning(STARTED)
            time.sleep(float(os.environ.get("SLIMLINE_TEST_SLOW_SECONDS", "10")))
        return super().__call__(texts, languages)


@register("entities.slow_for_tests")
def make_slow(settings: Settings) -> SlowExtractor:
    return SlowExtractor(settings)
