"""Export a local Hugging Face BERT-style encoder folder to ONNX, then quantize it to int8 per channel.

Only for building model files: needs ``torch`` and ``transformers`` (an export-only environment, never
the workers'). The output folder holds ``model.onnx`` (fp32), ``model.int8.onnx`` and the tokenizer files,
and ``encoder.json`` (what the ``encoder.onnx`` backend needs to know), ready for that backend; then write
its manifest with ``workers.models.integrity.write_manifest(NAME, VERSION, OUT_DIR, MANIFEST_DIR)``.

    python -m workers.models.encoders.export_onnx SOURCE_DIR OUT_DIR NAME VERSION LANGUAGES
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json")
_OPSET = 17
_MAX_TOKENS = 256


def export_fp32(source_dir: Path, out_path: Path) -> None:
    """Trace the encoder (token ids, mask, token types → last hidden state) with dynamic batch and length."""
    import torch
    from transformers import AutoModel

    class LastHiddenState(torch.nn.Module):
        """Keyword arguments in, one tensor out: the shape the exporter and the runtime agree on."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(source_dir).eval()

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones((2, 8), dtype=torch.int64)
    with torch.no_grad():
        torch.onnx.export(
            LastHiddenState(),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            out_path,
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={name: {0: "batch", 1: "sequence"}
                          for name in ("input_ids", "attention_mask", "token_type_ids", "last_hidden_state")},
            opset_version=_OPSET,
            dynamo=False,
        )


def quantize_int8(fp32_path: Path, int8_path: Path) -> None:
    """Dynamic int8 quantization, one scale per output channel (per-tensor loses ~4 points of cosine)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(fp32_path, int8_path, per_channel=True, weight_type=QuantType.QInt8)


def main(source_dir: Path, out_dir: Path, name: str, version: str, languages: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    config = json.loads((source_dir / "config.json").read_text())
    spec = {"name": name, "version": version, "languages": languages, "dim": config["hidden_size"],
            "model_file": "model.int8.onnx", "max_tokens": _MAX_TOKENS}
    (out_dir / "encoder.json").write_text(json.dumps(spec, indent=2) + "\n")
    export_fp32(source_dir, out_dir / "model.onnx")
    quantize_int8(out_dir / "model.onnx", out_dir / "model.int8.onnx")
    for name in _TOKENIZER_FILES:
        if (source_dir / name).exists():
            shutil.copy2(source_dir / name, out_dir / name)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), *sys.argv[3:6])
