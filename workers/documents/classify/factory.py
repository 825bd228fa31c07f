"""The documents' classifier as configured: the trained head in ``SLIMLINE_DOCUMENTS__CLASSIFIER`` if set,
else zero-shot from ``SLIMLINE_DOCUMENTS__LABELS``."""

from __future__ import annotations

from workers import registry
from workers.documents.classify.head import TrainedClassifier
from workers.documents.classify.zero_shot import ZeroShotClassifier
from workers.models.encoders.base import Encoder
from workers.settings import Settings


def classifier_from_settings(encoder: Encoder, settings: Settings) -> ZeroShotClassifier | TrainedClassifier:
    if settings.documents.classifier is not None:
        return registry.create("classifier.trained", encoder=encoder, head_dir=settings.documents.classifier)
    return registry.create("classifier.zero_shot", encoder=encoder, labels_path=settings.documents.labels)
