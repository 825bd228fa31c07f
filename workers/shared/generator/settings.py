"""The generator section of the settings, shared by products and abstractive document summaries:
``SLIMLINE_GENERATOR__<FIELD>``, e.g. ``SLIMLINE_GENERATOR__MODEL_PATH``."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field


def default_cache_dir() -> Path:
    """Where split models are joined at install time: SLIMLINE_GENERATOR__CACHE_DIR, or the user's cache."""
    configured = os.environ.get("SLIMLINE_GENERATOR__CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "slimline" / "models"


class GeneratorSettings(BaseModel):
    # A registered backend and its GGUF. No path: the catalogue model named by `model`
    # (workers/shared/generator/catalogue.py: shipped by pinned packages, hash-checked against
    # workers/models/manifests/; a split model joined into `cache_dir` at install time). A path: your own GGUF,
    # verified as its folder against <model_manifest_dir>/<model_name>-<model_version>.json (`slimline model-manifest`).
    backend: str = "generator.llama_cpp"
    model: str = "smollm2-135m"
    cache_dir: Path = Field(default_factory=default_cache_dir)
    model_path: Path | None = None
    model_name: str | None = None
    model_version: str | None = None
    model_manifest_dir: Path | None = None
    # Convert the verified weights at load time: "q8_0" holds every Q4_1 value almost exactly and has fast
    # batched kernels (1.7-3.2x the tokens/s of Q4_1 here, benchmarks/products_generation.py). None: as shipped.
    runtime_type: str | None = "q8_0"
    # Languages the model writes well; the others among en/de/fr/es/it go straight to the template. [] = no model.
    # SmolLM2-135M: English only (its German/Italian are mostly English; its Spanish/French pass the check
    # but are not fluent: benchmarks/products_generation.py).
    languages: list[str] = ["en"]
    # Native threads of the generator. None: SLIMLINE_THREADS_PER_PROCESS. Size it to the cores the process is
    # given (one products process × 2 threads on 2 cores, not two processes × 2: oversubscription collapses).
    threads: int | None = Field(default=None, ge=1)
    temperature: float = Field(default=0.7, gt=0, le=2)
    top_k: int = Field(default=40, ge=1)
    top_p: float = Field(default=0.9, gt=0, le=1)
    repeat_penalty: float = Field(default=1.1, ge=1)
    sequences_in_flight: int = Field(default=16, ge=1, le=64)
    context_tokens: int = Field(default=8192, ge=256)
