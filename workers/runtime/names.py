"""Stable task names and queues: the public wire contract (see README, "Enqueue from any language")."""

from schemas import Kind

TASK_NAMES: dict[Kind, str] = {kind: f"slimline.{kind.value}.process" for kind in Kind}
QUEUES: dict[Kind, str] = {kind: kind.value for kind in Kind}
# Where the compact tier sends the hard cases of a kind; a worker started with `--tier escalated` consumes it.
ESCALATION_QUEUES: dict[Kind, str] = {kind: f"{kind.value}.escalate" for kind in Kind}
