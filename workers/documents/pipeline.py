"""Documents: language → entities (spaCy NER where a model exists for the language, the rule layer
everywhere) → class (zero-shot from label descriptions, or a trained head) → extractive summary.
Each step is a registered component chosen by name in the settings and built from them; one encoder
serves classification and summaries, and it embeds each document once: its sentences, whose vectors
are the extractive summary's candidates and, averaged, the document's vector for the classifier.

A document whose class score or margin falls below ``SLIMLINE_DOCUMENTS__REVIEW_SCORE`` /
``SLIMLINE_DOCUMENTS__REVIEW_MARGIN`` gets ``review_status: needs_review``: the compact tier sends it on
to the escalation queue, and a person can resolve it (`slimline review documents`)."""

from __future__ import annotations

import time
from typing import Any

from schemas import Document, Kind
from workers import registry
from workers.settings import Settings

from workers.documents.classify.factory import classifier_from_settings
from workers.documents.summarize.extractive import ExtractiveSummarizer, document_vectors, encode_sentences
from workers.models.encoders.factory import encoder_from_settings

# Importing the backends registers them.

_WARM_UP = [("Alice Martin of Acme Bank in Paris paid EUR 3,000.00 on 2 May 2024 to DE89370400440532013000.", "en"),
            ("Rechnung Nr. 4471 vom 3. Mai 2024: bitte zahlen Sie 1.245,80 € bis Ende Mai.", "de"),
            ("Facture n° 2024-0619 du 21 juin 2024 – Atelier Vélo Lumière, Orléans.", "fr")]


class DocumentPipeline:
    kind = Kind.documents
    model = "slimline-documents"  # each component's own model is in the result (language_model, entity_model…)
    model_version = "2"

    def __init__(self, settings: Settings, tier: str = "compact") -> None:
        self.tier = tier
        self.language = registry.create(settings.language_detector)
        self.entities = registry.create(settings.documents.entities, settings=settings)
        self.encoder = encoder_from_settings(settings)
        self.classifier = classifier_from_settings(self.encoder, settings)
        # The abstractive summarizer also needs the generator's settings (products_*).
        generator_settings = {"settings": settings} if settings.documents.summarizer == "summarizer.abstractive" else {}
        self.summarizer = registry.create(
            settings.documents.summarizer, encoder=self.encoder, max_sentences=settings.documents.summary_sentences,
            max_chars=settings.documents.summary_chars, max_candidates=settings.documents.summary_candidates,
            **generator_settings)
        self.summary_candidates = settings.documents.summary_candidates
        self.review_score = settings.documents.review_score
        self.review_margin = settings.documents.review_margin
        self.language_model = f"{self.language.name}=={self.language.version}"

    def __call__(self, documents: list[Document]) -> list[dict[str, Any]]:
        texts = [document.text for document in documents]
        detected = iter(self.language([document.text for document in documents if document.language is None]))
        languages = [(document.language, None) if document.language else next(detected) for document in documents]
        codes = [language for language, _ in languages]
        entity_lists = self.entities(texts, codes)
        entity_models = list(self.entities.models_used)
        classes, summaries = self.classify_and_summarize(texts, codes)
        return [
            {
                "language": language,
                "language_score": score,
                "language_model": None if document.language else self.language_model,
                "classification": classification.as_dict(),
                "entities": entities,
                "entity_model": entity_model,  # None: the rule layer alone (no NER model for this language)
                "summary": summary.model_dump(),
                "text_chars": len(document.text),
                "review_status": "needs_review" if self._hard(classification) else None,
            }
            for document, (language, score), entities, entity_model, classification, summary
            in zip(documents, languages, entity_lists, entity_models, classes, summaries, strict=True)
        ]

    def classify_and_summarize(self, texts: list[str], languages: list[str | None]) -> tuple[list[Any], list[Any]]:
        """Encode once: the sentences' vectors give the class (through the document's vector) and, for the
        extractive summarizer, the summary. An abstractive summarizer embeds what it writes itself."""
        encoded = encode_sentences(self.encoder, texts, languages, self.summary_candidates)
        classes = self.classifier.classify_embeddings(document_vectors(encoded))
        if isinstance(self.summarizer, ExtractiveSummarizer):
            return classes, self.summarizer.summarize_encoded(texts, encoded)
        return classes, self.summarizer(texts, languages)

    def _hard(self, classification: Any) -> bool:
        return classification.score < self.review_score or classification.margin < self.review_margin

    def warm_up(self) -> dict[str, float]:
        started = time.perf_counter()
        self.language([text for text, _ in _WARM_UP])
        language_seconds = time.perf_counter() - started
        timings = {"language_seconds": language_seconds}
        texts, languages = [text for text, _ in _WARM_UP], [language for _, language in _WARM_UP]
        for name, step in (("entities", lambda: self.entities(texts, languages)),
                           ("classifier_and_summarizer", lambda: self.classify_and_summarize(texts, languages))):
            started = time.perf_counter()
            step()
            timings[f"{name}_seconds"] = time.perf_counter() - started
        return timings


def build_pipeline(settings: Settings, tier: str = "compact") -> DocumentPipeline:
    """The compact configuration, or the escalated one: its own encoder (a head trained on another
    encoder does not apply: zero-shot unless it has its own) and longer summaries."""
    registry.load_plugins(settings.plugins)
    if tier == "escalated":
        settings = settings.model_copy(update={"documents": settings.documents.escalated()})
    return DocumentPipeline(settings, tier)
