"""Named entities with a spaCy pipeline, NER only, run with ``nlp.pipe`` over a whole batch."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import spacy
from spacy.language import Language

from schemas import Entity
from workers.models.integrity import MANIFEST_DIR, verify

# Components an NER-only pipeline does not need (tok2vec feeds ner, so it stays; French's
# morphologizer is not read by its ner).
_NOT_NEEDED = ["tagger", "morphologizer", "parser", "attribute_ruler", "lemmatizer", "senter"]

# (start_char, end_char, label as the model says it) of one entity.
Span = tuple[int, int, str]


def _installed_model_dir(package: str) -> Path:
    """The data folder inside an installed spaCy model package (the one holding config.cfg)."""
    package_dir = Path(importlib.import_module(package).__file__).parent
    candidates = [p.parent for p in package_dir.glob("*/config.cfg")]
    if len(candidates) != 1:
        raise FileNotFoundError(f"expected one model folder with config.cfg in {package_dir}, found {candidates}")
    return candidates[0]


class SpacyEntityExtractor:
    def __init__(self, package: str, model_dir: Path | None = None, batch_size: int = 64,
                 manifest_dir: Path | None = None) -> None:
        """Load the installed ``package``, or the model in ``model_dir`` if given (its manifest is looked
        up in ``manifest_dir``, default: Slimline's own manifests)."""
        if model_dir is None:
            self.name, self.version = package, importlib.metadata.version(package)
            model_dir = _installed_model_dir(package)
        else:
            meta = spacy.util.load_meta(model_dir / "meta.json")
            self.name, self.version = f"{meta['lang']}_{meta['name']}", meta["version"]
        verify(self.name, self.version, model_dir, manifest_dir or MANIFEST_DIR)
        self.batch_size = batch_size
        self.nlp: Language = spacy.load(model_dir, exclude=_NOT_NEEDED)

    def spans(self, texts: list[str]) -> list[list[Span]]:
        """Entity spans per text with the model's own labels, one ``nlp.pipe`` over the whole batch."""
        return [
            [(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]
            for doc in self.nlp.pipe(texts, batch_size=self.batch_size)
        ]

    def __call__(self, texts: list[str]) -> list[list[Entity]]:
        return [
            [Entity(text=text[start:end], label=label, start=start, end=end) for start, end, label in spans]
            for text, spans in zip(texts, self.spans(texts), strict=True)
        ]
