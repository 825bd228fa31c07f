"""`slimline train classifier LABELLED.jsonl --out DIR`: fit a classification head on encoder embeddings.

Exit codes: 0 trained and saved; 1 the encoder's model files failed their hash check; 2 bad input (no such
file, a line that is not ``{"text", "label"}``, too few examples, an output folder already in use, an
encoder name nothing registered).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from workers.cli.common import CliError, ExitCode, console, out, progress, settings
from workers.documents.classify.labels import LabelsFileError
from workers.documents.classify.train import LabelledDataError, TrainingReport, train_classifier
from workers.models.encoders.factory import encoder_from_settings
from workers.models.integrity import ModelIntegrityError

app = typer.Typer(no_args_is_help=True)


@app.callback()
def train() -> None:
    """Train models on labelled data."""


@app.command("classifier")
def classifier(
    labelled: Annotated[Path, typer.Argument(help="JSON Lines: one {\"text\", \"label\", \"language\"?} per line.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the head; then SLIMLINE_DOCUMENTS__CLASSIFIER=DIR.")],
    test_fraction: Annotated[float, typer.Option(min=0.05, max=0.5, help="Share held out for measuring.")] = 0.25,
    seed: Annotated[int, typer.Option(help="Seed of the split and of the few-shot samples.")] = 0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a head already in --out.")] = False,
) -> None:
    """Fit a logistic-regression head on the document encoder's embeddings; report accuracy and macro-F1
    on a held-out split (also with 8 and 16 examples per class, and zero-shot), then save it with its hash."""
    if not labelled.is_file():
        raise CliError(f"no labelled file at {labelled}", ExitCode.USAGE)
    if out_dir.exists() and not out_dir.is_dir():
        raise CliError(f"{out_dir} is a file: --out needs a folder", ExitCode.USAGE)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise CliError(f"{out_dir} is not empty: choose another --out or pass --overwrite", ExitCode.USAGE)
    config = settings()
    try:
        encoder = encoder_from_settings(config)
    except KeyError as error:  # an encoder name nothing registered
        raise CliError(f"SLIMLINE_DOCUMENTS__ENCODER: {error.args[0]}", ExitCode.USAGE) from None
    except ModelIntegrityError as error:
        raise CliError(str(error), ExitCode.FAILED) from None
    labels_path = config.documents.labels if config.documents.labels.is_file() else None
    if labels_path is None:
        console.print(f"no labels file at {config.documents.labels}: no zero-shot comparison")
    try:
        with progress() as bar:
            task = bar.add_task(f"embedding with {encoder.info.model}", total=None)
            report = train_classifier(
                labelled, out_dir, encoder, labels_path=labels_path, test_fraction=test_fraction,
                seed=seed, progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except (LabelledDataError, LabelsFileError) as error:
        raise CliError(str(error), ExitCode.USAGE) from None
    print_report(report)
    console.print(f"saved to {out_dir} (weights sha256 {report.weights_sha256[:12]}); "
                  f"use it with SLIMLINE_DOCUMENTS__CLASSIFIER={out_dir}")


def print_report(report: TrainingReport) -> None:
    languages = sorted({lang for metrics in report.metrics.values() for lang in metrics["per_language"]})
    table = Table("classifier", "accuracy", "macro-F1", *languages, caption="per-language columns: macro-F1",
                  title=f"held-out: {report.test_rows} of {report.rows} documents, {len(report.labels)} labels")
    table.columns[0].no_wrap = True
    for name, metrics in report.metrics.items():
        per_language = [f"{metrics['per_language'][lang]['macro_f1']:.3f}" if lang in metrics["per_language"] else ""
                        for lang in languages]
        table.add_row(name, f"{metrics['accuracy']:.3f}", f"{metrics['macro_f1']:.3f}", *per_language)
    out.print(table)
