"""The gateway section of the settings: ``SLIMLINE_GATEWAY__<FIELD>``, e.g. ``SLIMLINE_GATEWAY__PORT``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class GatewaySettings(BaseModel):
    host: str = "127.0.0.1"  # 0.0.0.0 in a container
    port: int = Field(default=8080, ge=0, le=65535)  # 0: any free port (printed at start)
    # POST /v1/transactions/decide: "gateway" decides inside the request, with the workers' pipeline on the same
    # account features, and enqueues the transaction for a worker to store (workers/gateway/decider.py); "worker"
    # enqueues it and waits for the worker's stored decision (one Redis hop and a database commit more).
    decide_in: Literal["gateway", "worker"] = "gateway"
    # With decide_in "worker": past this deadline the response is the rules-only decision, marked as such (the
    # worker still stores its own). In the gateway, SLIMLINE_TRANSACTIONS__FEATURES_TIMEOUT_SECONDS bounds a decision.
    deadline_ms: int = Field(default=150, ge=1, le=60_000)
    # POST /v1/documents?wait=true: the longest wait for the result; past it the answer is 202 (fetch it later
    # with GET /v1/documents/{id}).
    wait_ms: int = Field(default=5_000, ge=1, le=120_000)
    # A request body larger than this is refused with 413 before it is read whole (documents are also held to
    # SLIMLINE_MAX_DOCUMENT_CHARS each).
    max_body_bytes: int = Field(default=16 * 2**20, ge=1024)
    # Per API key unless the key has its own (`slimline api-keys create --rate-limit`), in the `limits` notation:
    # "300/second", "1000/minute;20/second". Counted in Redis, so several gateways share one budget per key.
    rate_limit: str = "300/second"
    # A verified API key is remembered this long: a revoked key stops working within this time.
    key_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # What a 429 for a full queue tells the caller to wait before retrying.
    queue_full_retry_after_seconds: int = Field(default=5, ge=1)
    access_log: bool = False  # uvicorn's line per request (paths carry item ids)
    docs: bool = True  # /docs: Swagger UI, served from the gateway itself (no CDN); /openapi.json always
