"""Hugging Face transformers ``generate`` on the same GGUF model and the same prompt tokens (torch fp32).

Run by ``benchmarks.products_generation`` with the Python of a separate virtualenv that has torch,
transformers and gguf (torch never goes into Slimline's own venv). Reads a JSON spec on stdin, prints
JSON on stdout: per batch size, the median generated tokens/s and products (sequences)/s.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path


def main() -> None:
    spec = json.load(sys.stdin)
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(spec["threads"])
    gguf = Path(spec["gguf"])
    started = time.perf_counter()
    # transformers dequantizes the GGUF's weights to fp32: the same model as llama.cpp runs, unquantized.
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.eval()
    load_seconds = time.perf_counter() - started
    pad = spec["pad_token_id"]
    results = {}
    for batch_size in spec["batch_sizes"]:
        prompts = spec["prompts"][:batch_size]
        width = max(len(p) for p in prompts)
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])  # left padding
        attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        rates, product_rates = [], []
        for _ in range(spec["repeats"]):
            started = time.perf_counter()
            with torch.inference_mode():
                output = model.generate(input_ids=input_ids, attention_mask=attention, do_sample=False,
                                        max_new_tokens=spec["max_new_tokens"], min_new_tokens=spec["max_new_tokens"],
                                        pad_token_id=pad)
            seconds = time.perf_counter() - started
            generated = (output.shape[1] - width) * len(prompts)
            rates.append(generated / seconds)
            product_rates.append(len(prompts) / seconds)
        results[str(batch_size)] = {"tokens_per_s": statistics.median(rates),
                                    "products_per_s": statistics.median(product_rates)}
    json.dump({"load_seconds": load_seconds, "torch": torch.__version__, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
