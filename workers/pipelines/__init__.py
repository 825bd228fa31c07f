"""Batch pipelines, one per kind of work, each built from the settings by its own package."""

from __future__ import annotations

import importlib

from schemas import Kind
from workers.pipelines.base import Pipeline
from workers.settings import Settings

# Where each kind's pipeline is built. Workers consume, and `drain` waits for, only these kinds.
PIPELINE_BUILDERS: dict[Kind, str] = {
    Kind.documents: "workers.documents.pipeline:build_pipeline",
    Kind.transactions: "workers.transactions.pipeline:build_pipeline",
    Kind.products: "workers.products.pipeline:build_pipeline",
}
PIPELINE_KINDS: frozenset[Kind] = frozenset(PIPELINE_BUILDERS)
# Kinds whose hard cases (results marked needs_review) go on to the escalation queue.
ESCALATING_KINDS: frozenset[Kind] = frozenset({Kind.documents})


def build_pipeline(kind: Kind, settings: Settings, tier: str = "compact") -> Pipeline:
    module_name, _, function = PIPELINE_BUILDERS[kind].partition(":")
    return getattr(importlib.import_module(module_name), function)(settings, tier=tier)
