"""What the gateway answers: the response half of its contract (the request half is schemas/messages.py).
Every model here appears in /openapi.json."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from schemas import ItemError

ItemStatus = Literal["accepted", "rejected", "too_large", "not_sent", "stored", "failed", "pending"]


class ItemOutcome(BaseModel):
    """One item of a request, in the order sent (``position`` is the NDJSON line, 1-based)."""

    position: int
    id: str | None = Field(description="The item's id, when it has one.")
    status: ItemStatus = Field(description=(
        "accepted: enqueued; rejected / too_large: refused (see errors), nothing enqueued; not_sent: the queue "
        "was full before this item (resend it); with wait=true also stored (result attached), failed (the "
        "item kept failing: a dead letter), pending (not done within the wait: GET it later)."))
    message_id: str | None = Field(default=None, description="The task id of the enqueued message.")
    errors: list[ItemError] = Field(default_factory=list)
    result: dict[str, Any] | None = Field(default=None, description="With wait=true: the stored result.")
    review_status: str | None = None
    tier: str | None = None


class IngestResponse(BaseModel):
    kind: str
    accepted: int
    rejected: int
    items: list[ItemOutcome]


class ErrorResponse(BaseModel):
    detail: str
    items: list[ItemOutcome] | None = None


class RuleFired(BaseModel):
    code: str
    action: str
    description: str | None = None


class Decision(BaseModel):
    """A transaction's decision, returned inside the request (POST /v1/transactions/decide)."""

    id: str
    message_id: str
    outcome: Literal["allow", "review", "block"]
    score: float | None = Field(description="The risk model's score; null when decided on rules alone.")
    rules_fired: list[RuleFired]
    reason_codes: list[str] = Field(description="Stable codes: the rules that fired, then the model's reasons.")
    model_reasons: list[dict[str, Any]] = Field(default_factory=list)
    decided_by: str = Field(description="rules+model, or rules.")
    decided_in: Literal["gateway", "worker", "rules_only"] = Field(
        description="gateway: decided inside the request on the account features, and enqueued for a worker to store "
                    "(GET /v1/transactions/{id} a moment later); worker: the worker's stored decision "
                    "(SLIMLINE_GATEWAY__DECIDE_IN=worker); rules_only: the deadline passed.")
    rules_only: bool = Field(description="True when no decision came within the deadline: this is the gateway's "
                                         "rules-only decision. A worker's decision is still stored "
                                         "(GET /v1/transactions/{id}).")
    fallback_reason: str | None = None
    stored: bool = Field(description="True: this is the stored decision (committed before this response). False: "
                                     "the transaction is queued and a worker stores its decision after this response.")
    review_status: str | None = None
    rule_set_version: str | None = None
    model_version: str | None = None
    degraded: dict[str, str] | None = None
    elapsed_ms: float = Field(description="Gateway time from the request to this response.")


class Version(BaseModel):
    version: int
    is_current: bool
    tier: str
    review_status: str | None
    result: dict[str, Any]
    model: str | None
    model_version: str | None
    producer: str | None
    sent_at: datetime | None
    processed_at: datetime
    note: str | None = None


class ItemResult(BaseModel):
    """An item's current result and every version (oldest first)."""

    kind: str
    id: str
    current: Version
    versions: list[Version]


class Health(BaseModel):
    ready: bool
    problems: list[str]
