"""The transactions section of the settings: ``SLIMLINE_TRANSACTIONS__<FIELD>``, e.g. ``SLIMLINE_TRANSACTIONS__RULES_FILE``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from workers.runtime.batch_policy import BatchPolicy


class TransactionsSettings(BatchPolicy):
    # Latency-critical stream: small batches, short waits.
    max_batch_size: int = Field(default=32, ge=1, le=1024)
    # A free pool process waits this long for a batch to gather; a busy pool sends the next batch when one returns
    # (workers/runtime/batch_task.py), so batches grow with the load whatever this wait (benchmarks/transactions_latency.py).
    max_wait_seconds: float = Field(default=0.005, gt=0, le=60)

    # Per-account feature state lives in a Redis of its own so that its growth can never block the queues
    # (the broker runs with noeviction). Unset: the broker's server (keys "txf:{...}", every one with a TTL).
    features_redis_url: SecretStr | None = None
    # Deadline of one batch's feature call; past it (or on any Redis error) decisions use rules alone.
    features_timeout_seconds: float = Field(default=0.05, gt=0, le=10)
    # Windowed counters (must outlive the 7-day window), first-seen merchants/MCCs/countries, and the
    # feature snapshot kept per transaction id so that a redelivery gets the same features (redelivery horizon).
    state_ttl_seconds: int = Field(default=8 * 86_400, ge=7 * 86_400 + 3_600)
    seen_ttl_seconds: int = Field(default=90 * 86_400, ge=3_600)
    snapshot_ttl_seconds: int = Field(default=2 * 86_400, ge=60)
    rules_file: Path | None = None  # None: the shipped workers/transactions/data/rules.yaml
    # Workers use the newest rule version promoted in the review console (stored in the database) over the file,
    # and look for a newer one at most this often; 0: the file only, never the database.
    rules_refresh_seconds: float = Field(default=5.0, ge=0)
    model_dir: Path | None = None  # None: the shipped workers/transactions/data/risk-model/
    model_manifest_dir: Path | None = None  # None: workers/transactions/data/manifests/
    # Model score thresholds; None: the thresholds recorded in the model's card at training time.
    review_score: float | None = Field(default=None, ge=0, le=1)
    block_score: float | None = Field(default=None, ge=0, le=1)
    reason_codes: int = Field(default=3, ge=0, le=10)  # model reason codes per flagged transaction
    timezone: str = "UTC"  # the bank's local time zone, for the night-time feature
