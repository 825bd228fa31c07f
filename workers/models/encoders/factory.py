"""Build an encoder by its registered name (each backend is an entry point: workers/registry.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workers import registry
from workers.models.encoders.base import DEFAULT_TOKEN_BUDGET, Encoder
from workers.settings import Settings


def create_encoder(name: str, *, threads: int = 1, token_budget: int = DEFAULT_TOKEN_BUDGET,
                   model_dir: Path | None = None, manifest_dir: Path | None = None) -> Encoder:
    """Every backend takes the same settings, so the name alone picks one; ``model_dir`` is for the
    backends that load a local folder (``encoder.onnx``)."""
    config: dict[str, Any] = {"threads": threads, "token_budget": token_budget, "manifest_dir": manifest_dir}
    if model_dir is not None:
        config["model_dir"] = model_dir
    return registry.create(name, **config)


def encoder_from_settings(settings: Settings) -> Encoder:
    """The documents' encoder as configured (``SLIMLINE_DOCUMENTS__ENCODER`` and its options). A local model
    folder is checked against its manifest in ``SLIMLINE_MODEL_MANIFEST_DIR``; packaged models always
    against Slimline's own manifests."""
    local = settings.documents.encoder_model_dir
    return create_encoder(settings.documents.encoder, threads=settings.threads_per_process,
                          token_budget=settings.documents.encoder_token_budget, model_dir=local,
                          manifest_dir=settings.model_manifest_dir if local else None)
