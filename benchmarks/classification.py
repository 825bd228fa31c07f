"""Document classes on documents the models never saw: zero-shot against trained heads, per language.

Run from the repository root: ``python -m benchmarks.classification`` (options: ``--help``).

For each encoder (default: the documents' default encoder; ``--encoder`` repeatable), it runs the same
code as ``slimline train classifier``: a held-out split of ``labelled_documents.jsonl`` stratified by
label and language (25 %, seed 0), a logistic-regression head fitted on the rest, heads fitted on only 8
and 16 examples per class, and zero-shot from the labels file, all measured on the held-out split. The
labels file's descriptions were chosen on the training split only. The baseline of each encoder is its
own zero-shot classifier: "vs zero-shot" divides macro-F1 by it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from workers.documents.classify.labels import DEFAULT_LABELS_PATH
from workers.documents.classify.train import train_classifier
from workers.models.encoders.factory import create_encoder
from workers.settings import Settings

LABELLED = Path(__file__).resolve().parents[1] / "workers" / "documents" / "data" / "labelled_documents.jsonl"
LANGUAGES = ("en", "de", "fr", "es", "it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", action="append", help="registered encoder name (repeatable)")
    parser.add_argument("--labelled", type=Path, default=LABELLED)
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS_PATH)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    encoders = args.encoder or [Settings().documents.encoder]

    table = Table(title=f"held-out split of {args.labelled.name}: accuracy / macro-F1")
    for column in ("encoder", "classifier", "n", "accuracy", "macro-F1", "vs zero-shot", *LANGUAGES):
        table.add_column(column)
    figures = {}
    for name in encoders:
        encoder = create_encoder(name, threads=args.threads)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as out_dir:
            report = train_classifier(args.labelled, Path(out_dir), encoder, labels_path=args.labels)
        seconds = time.perf_counter() - started
        figures[name] = {"seconds": seconds, "train_rows": report.train_rows, "metrics": report.metrics}
        baseline = report.metrics["zero_shot"]["macro_f1"]
        for classifier in ("zero_shot", "trained_8_per_class", "trained_16_per_class", "trained"):
            if classifier not in report.metrics:
                continue
            metrics = report.metrics[classifier]
            per_language = metrics["per_language"]
            table.add_row(
                encoder.info.model, classifier, str(metrics["n"]), f"{metrics['accuracy']:.3f}",
                f"{metrics['macro_f1']:.3f}", f"{metrics['macro_f1'] / baseline:.2f}",
                *(f"{per_language[lang]['accuracy']:.2f} / {per_language[lang]['macro_f1']:.2f}"
                  if lang in per_language else "" for lang in LANGUAGES),
            )
        verdict = "beats" if report.metrics["trained"]["macro_f1"] > baseline else "does NOT beat"
        Console(stderr=True).print(f"{encoder.info.model}: trained head {verdict} zero-shot on held-out data "
                                   f"({report.train_rows} training rows, {seconds:.1f} s including embedding)")
    Console(width=200).print(table)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
