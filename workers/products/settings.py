"""The products section of the settings: ``SLIMLINE_PRODUCTS__<FIELD>``. The generator itself is shared with
documents: ``SLIMLINE_GENERATOR__<FIELD>`` (workers/shared/generator/settings.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from workers.runtime.batch_policy import BatchPolicy


class ProductsSettings(BatchPolicy):
    # Slow generative stream: few items per batch.
    max_batch_size: int = Field(default=4, ge=1, le=1024)
    max_wait_seconds: float = Field(default=1.0, gt=0, le=60)

    seed: int = 20240601
    # How the model is asked (workers/products/prompts.py): "plan" rewrites the template's text in the target
    # language into fluent prose; "facts" writes from a list of facts.
    prompt: Literal["plan", "facts"] = "plan"
    constrain_numbers: bool = True  # a grammar lets the model write only the product's own numbers
    # Token budgets: new tokens per description by language, and generated tokens per batch (first attempts and
    # retries; what does not fit is written by the template), which bounds how long one batch can take.
    max_new_tokens: dict[str, int] = {"en": 160, "de": 200, "fr": 200, "es": 200, "it": 200}
    batch_token_budget: int = Field(default=4096, ge=1)
    min_chars: int = Field(default=60, ge=1)
    max_chars: int = Field(default=1200, ge=1)
    # A shop's own list of superlatives and fluff for the grounding check (same format as
    # workers/products/data/fluff.json); None: the bundled list.
    fluff_path: Path | None = None

    # The escalated tier (a worker started with `--tier escalated`, consuming `products.escalate`): a bigger
    # model that rewrites, e.g. overnight, what the compact tier left to the templates. With `escalate` on, a
    # compact result with a template-written language that the escalated model writes is stored with
    # review_status needs_review and sent on; the escalated tier's result supersedes it as a new version.
    escalate: bool = False
    escalated_model: str = "qwen2.5-coder-1.5b"  # a catalogue name (workers/shared/generator/catalogue.py)
    escalated_languages: list[str] = ["en", "de", "fr", "es", "it"]
    escalated_runtime_type: str | None = None  # Q4_K_M runs with llama.cpp's repacked fast kernels as shipped
    escalated_max_new_tokens: dict[str, int] = {"en": 160, "de": 200, "fr": 200, "es": 200, "it": 200}
    escalated_batch_token_budget: int = Field(default=16384, ge=1)

    def escalated(self) -> ProductsSettings:
        """The escalated tier's view of this section (it does not escalate further)."""
        return self.model_copy(update={"escalate": False, "max_new_tokens": self.escalated_max_new_tokens,
                                       "batch_token_budget": self.escalated_batch_token_budget})

