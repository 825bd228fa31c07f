"""Stable task names and queues: the public wire contract (see README, "Enqueue from any language")."""

from schemas import Kind

TASK_NAMES: dict[Kind, str] = {kind: f"slimline.{kind.value}.process" for kind in Kind}
QUEUES: dict[Kind, str] = {kind: kind.value for kind in Kind}
# Where the compact tier sends the hard cases of a kind; a worker started with `--tier escalated` consumes it.
ESCALATION_QUEUES: dict[Kind, str] = {kind: f"{kind.value}.escalate" for kind in Kind}
# Lanes: work of a kind that must not wait behind that kind's bulk backlog has a queue of its own, consumed by a
# worker of its own (SLIMLINE_WORKER_LANE=urgent). The HTTP gateway sends `?priority=urgent` documents there.
LANE_QUEUES: dict[str, dict[Kind, str]] = {"urgent": {Kind.documents: "documents.urgent"}}


def lane_queues(kinds: list[Kind] | tuple[Kind, ...] = tuple(Kind)) -> list[str]:
    """Every lane queue of these kinds."""
    return [queues[kind] for queues in LANE_QUEUES.values() for kind in kinds if kind in queues]
