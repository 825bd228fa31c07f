"""`slimline model-manifest`: hash a local model so workers can verify it before loading."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from workers.cli.common import CliError, ExitCode, console


def model_manifest(
    model_dir: Annotated[Path, typer.Argument(help="A spaCy model folder (with meta.json).")],
    out_dir: Annotated[Path, typer.Option(help="Where to write the manifest (SLIMLINE_MODEL_MANIFEST_DIR).")],
) -> None:
    """Record the SHA-256 of every file of a local model, so workers can verify it before loading."""
    import spacy

    from workers.models.integrity import write_manifest

    if not (model_dir / "meta.json").is_file():
        raise CliError(f"{model_dir} has no meta.json: give the folder of a spaCy model", ExitCode.USAGE)
    meta = spacy.util.load_meta(model_dir / "meta.json")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = write_manifest(f"{meta['lang']}_{meta['name']}", meta["version"], model_dir, manifest_dir=out_dir)
    console.print(f"wrote {path}")
