"""Batch pipelines, one per kind of work, each built from the settings by its own package: found through the
``slimline_pipelines`` entry points (pyproject.toml), as components are (workers/registry.py)."""

from __future__ import annotations

from schemas import Kind
from workers.pipelines.base import Pipeline
from workers.registry import pipeline_builder, pipeline_names
from workers.settings import Settings

# Kinds with a pipeline: workers consume, and `drain` waits for, only these.
PIPELINE_KINDS: frozenset[Kind] = frozenset(kind for kind in Kind if kind.value in pipeline_names())
# Kinds that must get the CPU first: workers serving none of these run at a lower priority (SLIMLINE_WORKER_NICE)
# than those that do (SLIMLINE_LATENCY_WORKER_NICE).
LATENCY_CRITICAL_KINDS: frozenset[Kind] = frozenset({Kind.transactions})
# Kinds whose hard cases (results marked needs_review) go on to the escalation queue.
ESCALATING_KINDS: frozenset[Kind] = frozenset({Kind.documents, Kind.products})


def build_pipeline(kind: Kind, settings: Settings, tier: str = "compact") -> Pipeline:
    return pipeline_builder(kind.value)(settings, tier=tier)
