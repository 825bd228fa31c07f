"""Batch pipelines, one per kind of work."""

from schemas import Kind

# Kinds whose pipeline has landed: workers consume, and `drain` waits for, only these queues.
PIPELINE_KINDS: frozenset[Kind] = frozenset({Kind.documents})
