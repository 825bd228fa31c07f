"""Encode once for class and summary: CPU per document of the documents pipeline's class + summary step,
embedding each document once (its sentences) against embedding it twice (whole text for the class, then
its sentences for the summary), on the same letters in the same run; and what it does to the class.

Run from the repository root: ``python -m benchmarks.classification_encode_once`` (options: ``--help``).

Both ways do the same work with the same components: the configured encoder and zero-shot classifier and
the extractive summarizer. Twice (the pipeline before): ``encoder.encode(texts)`` → classifier, and the
summary's candidate sentences embedded again → summary. Once (the pipeline now): ``encode_sentences`` →
the document's vector → classifier, and the same sentence vectors → summary. The two alternate, batch by
batch, ``--repeats`` times; CPU seconds (this process) per document, medians. Quality: zero-shot accuracy
on the labelled letters with each kind of document vector (test split: ids ending in 03/06/09), and how
many summaries are the same.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.arguments import positive_int

REPO_ROOT = Path(__file__).resolve().parents[1]
LABELLED = REPO_ROOT / "workers" / "documents" / "data" / "labelled_documents.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="encoder.usem3", help="registered encoder name")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--repeats", type=positive_int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from workers.documents.classify.labels import DEFAULT_LABELS_PATH
    from workers.documents.classify.zero_shot import ZeroShotClassifier
    from workers.documents.summarize.extractive import (
        EncodedSentences,
        ExtractiveSummarizer,
        document_vectors,
        encode_sentences,
        informative,
        spread,
    )
    from workers.documents.summarize.sentences import sentence_spans
    from workers.models.encoders.factory import create_encoder

    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    encoder = create_encoder(args.encoder, threads=1)
    classifier = ZeroShotClassifier(encoder, DEFAULT_LABELS_PATH)
    summarizer = ExtractiveSummarizer(encoder)
    batches = [rows[start : start + args.batch_size] for start in range(0, len(rows), args.batch_size)]

    def twice(batch: list[dict[str, Any]]) -> tuple[list[Any], list[Any], Any]:
        texts, languages = [r["text"] for r in batch], [r["language"] for r in batch]
        whole = encoder.encode(texts)
        classes = classifier.classify_embeddings(whole)
        candidates = []
        for text, language in zip(texts, languages, strict=True):
            spans = informative(text, sentence_spans(text, language))
            candidates.append([spans[i] for i in spread(len(spans), summarizer.max_candidates)])
        flat = encoder.encode([text[s:e] for text, spans in zip(texts, candidates, strict=True) for s, e in spans])
        encoded, offset = [], 0
        for spans in candidates:
            encoded.append(EncodedSentences(spans, flat[offset : offset + len(spans)], np.zeros(0)))
            offset += len(spans)
        return classes, summarizer.summarize_encoded(texts, encoded), whole

    def once(batch: list[dict[str, Any]]) -> tuple[list[Any], list[Any], Any]:
        texts, languages = [r["text"] for r in batch], [r["language"] for r in batch]
        encoded = encode_sentences(encoder, texts, languages, summarizer.max_candidates)
        vectors = document_vectors(encoded)
        return classifier.classify_embeddings(vectors), summarizer.summarize_encoded(texts, encoded), vectors

    once(batches[0][:4]), twice(batches[0][:4])  # warm up
    cpu: dict[str, list[float]] = {"twice": [], "once": []}
    outputs: dict[str, list[Any]] = {}
    for _ in range(args.repeats):
        for name, way in (("twice", twice), ("once", once)):
            started, results = time.process_time(), []
            for batch in batches:
                results.append(way(batch))
            cpu[name].append((time.process_time() - started) * 1000 / len(rows))
            outputs[name] = results
    ms = {name: statistics.median(runs) for name, runs in cpu.items()}

    truth = [r["label"] for r in rows]
    test = [r["id"].endswith(("-03", "-06", "-09")) for r in rows]
    quality = {}
    for name, results in outputs.items():
        labels = [c.label for classes, _, _ in results for c in classes]
        right = [label == t for label, t in zip(labels, truth, strict=True)]
        quality[name] = {"all": float(np.mean(right)), "test": float(np.mean([ok for ok, t in zip(right, test) if t])),
                         "per_language": {lang: float(np.mean([ok for ok, r in zip(right, rows) if r["language"] == lang]))
                                          for lang in ("en", "de", "fr", "es", "it")}}
    summaries = [s.text for _, summaries, _ in outputs["twice"] for s in summaries]
    same = sum(a == s.text for a, s in zip(summaries, [s for _, ss, _ in outputs["once"] for s in ss], strict=True))

    table = Table(title=f"class + summary of {len(rows)} letters, {encoder.info.model}, batches of {args.batch_size}, "
                        f"CPU ms per document (median of {args.repeats}), load average "
                        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    for column in ("way", "CPU ms/doc", "vs twice", "zero-shot acc. all", "test split", "en de fr es it"):
        table.add_column(column)
    for name in ("twice", "once"):
        q = quality[name]
        table.add_row(name, f"{ms[name]:.2f}", f"{ms[name] / ms['twice']:.2f}", f"{q['all']:.3f}", f"{q['test']:.3f}",
                      " ".join(f"{v:.2f}" for v in q["per_language"].values()))
    console = Console(width=200)
    console.print(table)
    console.print(f"saved {ms['twice'] - ms['once']:.2f} CPU ms per document; summaries identical: {same} of {len(rows)}")
    if args.json:
        args.json.write_text(json.dumps({"cpu_ms_per_document": ms, "runs": cpu, "quality": quality,
                                         "identical_summaries": same, "documents": len(rows)}, indent=2))


if __name__ == "__main__":
    main()
