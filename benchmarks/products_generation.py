"""Products: the generator's speed beside Hugging Face transformers, and how often its texts pass the check.

    python -m benchmarks.products_generation                       # everything, 1 thread
    python -m benchmarks.products_generation --threads 2 --hf-python /work/scratch/venv-torch/bin/python
    python -m benchmarks.products_generation --skip-quality --skip-pipeline

1. Backend throughput: the same prompts (the bundled products' English prompts, as the worker builds
   them), greedy, a fixed number of new tokens, with 1…16 sequences in flight: llama.cpp (this backend)
   and, when ``--hf-python`` names a Python with torch+transformers+gguf, transformers ``generate`` in fp32
   on the same GGUF model, with the same prompt tokens and thread count. Medians over ``--repeats``.
2. Pipeline: products/s through the whole pipeline (grammar, sampling, check, retry, template) with one
   product per call and with the worker's batch (SLIMLINE_PRODUCTS__MAX_BATCH_SIZE).
3. Quality: per language, on the bundled products, with the model asked to write every language: the
   share passing the check (first attempt, after the retry), template fallbacks and their reasons.

The machine may be shared (other processes on the same cores): numbers are noisy; compare the ratios
measured in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from schemas import Product
from workers.shared.generator import GenerationRequest
from workers.shared.generator.llama_cpp import LlamaCppGenerator, make_llama_cpp_generator
from workers.products.pipeline import ProductPipeline
from workers.products.prompts import product_messages
from workers.products.templates import TemplateRenderer
from workers.settings import Settings

SAMPLES = Path(__file__).parents[1] / "workers" / "products" / "data" / "sample_products.jsonl"
HF_BASELINE = Path(__file__).parent / "products_hf_baseline.py"


def _products() -> list[Product]:
    return [Product.model_validate_json(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines()]


def _english_request(product: Product, renderer: TemplateRenderer, max_tokens: int, index: int) -> GenerationRequest:
    return GenerationRequest(key=f"{product.id}:{index}", messages=product_messages(product, "en", renderer),
                             max_tokens=max_tokens, seed=index, prefill=product.name, greedy=True)


def backend_throughput(generator: LlamaCppGenerator, products: list[Product], in_flight: list[int],
                       max_tokens: int, repeats: int) -> dict[int, dict[str, float]]:
    renderer = TemplateRenderer()
    rows = {}
    for count in in_flight:
        rates, product_rates = [], []
        for repeat in range(repeats):
            requests = [_english_request(products[i % len(products)], renderer, max_tokens, repeat * 100 + i)
                        for i in range(count)]
            started = time.perf_counter()
            generations = generator.generate(requests)
            seconds = time.perf_counter() - started
            rates.append(sum(g.tokens for g in generations) / seconds)
            product_rates.append(count / seconds)
        rows[count] = {"tokens_per_s": statistics.median(rates), "products_per_s": statistics.median(product_rates)}
        print(f"  llama.cpp, {count:2d} in flight: {rows[count]['tokens_per_s']:7.1f} tokens/s "
              f"{rows[count]['products_per_s']:6.2f} products/s", flush=True)
    return rows


def hf_throughput(hf_python: str, generator: LlamaCppGenerator, products: list[Product], in_flight: list[int],
                  max_tokens: int, repeats: int, threads: int) -> dict[str, Any] | None:
    renderer = TemplateRenderer()
    prompts = [generator._prompt_tokens(_english_request(products[i % len(products)], renderer, max_tokens, i))
               for i in range(max(in_flight))]
    spec = {"gguf": str(generator.model_file.path), "prompts": prompts, "batch_sizes": in_flight,
            "max_new_tokens": max_tokens, "repeats": repeats, "threads": threads, "pad_token_id": 2}
    completed = subprocess.run([hf_python, str(HF_BASELINE)], input=json.dumps(spec), capture_output=True, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if completed.returncode != 0:
        print(f"  transformers baseline failed: {completed.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(completed.stdout)


def pipeline_throughput(pipeline: ProductPipeline, products: list[Product], batch_size: int) -> dict[str, float]:
    generator = pipeline.generator
    assert generator is not None
    rows = {}
    for size in (1, batch_size):
        tokens_before = generator.stats.generated_tokens
        started = time.perf_counter()
        for start in range(0, len(products), size):
            pipeline(products[start:start + size])
        seconds = time.perf_counter() - started
        rows[size] = {"products_per_s": len(products) / seconds,
                      "tokens_per_s": (generator.stats.generated_tokens - tokens_before) / seconds}
        print(f"  pipeline, batch {size:2d}: {rows[size]['products_per_s']:6.2f} products/s "
              f"{rows[size]['tokens_per_s']:7.1f} generated tokens/s", flush=True)
    return rows


def quality(pipeline: ProductPipeline, products: list[Product], batch_size: int) -> dict[str, Any]:
    per_language: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    rejected = 0
    for start in range(0, len(products), batch_size):
        for outcome in pipeline(products[start:start + batch_size]):
            if not isinstance(outcome, dict):
                rejected += 1
                continue
            for language, description in outcome["descriptions"].items():
                counts = per_language[language]
                counts["descriptions"] += 1
                attempts = description["attempts"]
                counts["first attempt passed"] += bool(attempts and attempts[0]["verdict"] == "pass")
                counts["model"] += description["path"] == "model"
                counts["template"] += description["path"] == "template"
                for attempt in attempts:
                    for code in {r["code"] for r in attempt["reasons"]}:
                        reasons[language][code] += 1
                if description["path"] == "template":
                    reasons[language][f"fallback: {description['reasons'][0]['code']}"] += 1
    print(f"  {'lang':4} {'descr.':>6} {'1st pass':>8} {'model':>6} {'template':>8}  "
          "reasons (per attempt) and fallbacks")
    for language, counts in sorted(per_language.items()):
        total = counts["descriptions"]
        print(f"  {language:4} {total:6d} {counts['first attempt passed'] / total:8.0%} {counts['model'] / total:6.0%} "
              f"{counts['template'] / total:8.0%}  {dict(reasons[language].most_common())}")
    print(f"  products rejected (a language no template covers): {rejected}")
    return {"per_language": {k: dict(v) for k, v in per_language.items()},
            "reasons": {k: dict(v) for k, v in reasons.items()}, "rejected": rejected}


def _generator(settings: Settings, threads: int, sequences: int, runtime_type: str | None = None) -> LlamaCppGenerator:
    """The configured model (SLIMLINE_PRODUCTS_MODEL_* as the worker reads them), hash-checked."""
    return make_llama_cpp_generator(
        model_path=settings.generator.model_path, model_name=settings.generator.model_name,
        model_version=settings.generator.model_version, manifest_dir=settings.generator.model_manifest_dir,
        threads=threads, max_sequences=sequences, context_tokens=settings.generator.context_tokens,
        runtime_type=runtime_type)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    settings = Settings()
    parser.add_argument("--threads", type=int, default=settings.generator.threads or settings.threads_per_process)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--in-flight", default="1,2,4,8,16")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--products", type=int, default=0,
                        help="Use N bundled products, spread over the file (0: all).")
    parser.add_argument("--hf-python", default=os.environ.get("SLIMLINE_BENCH_HF_PYTHON"),
                        help="A Python with torch, transformers and gguf, for the baseline.")
    parser.add_argument("--runtime-type", default=settings.generator.runtime_type,
                        help="Convert the weights at load (e.g. q8_0) for the pipeline and quality runs.")
    parser.add_argument("--compare-runtime-type", default="q8_0",
                        help="Also measure backend throughput with the weights converted to this type ('' to skip).")
    parser.add_argument("--quality-languages", default="en,de,fr,es,it",
                        help="The languages the model is asked to write in the quality run.")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--json", type=Path, help="Also write the numbers here.")
    args = parser.parse_args()

    products = _products()
    if args.products:  # spread over the file, so that every category is in the subset
        products = products[:: max(1, len(products) // args.products)][: args.products]
    in_flight = [int(n) for n in args.in_flight.split(",")]
    generator = _generator(settings, args.threads, max(in_flight + [16]))
    print(f"products benchmark: {generator.name} (sha256 {generator.sha256[:16]}…), {args.threads} thread(s), "
          f"{os.cpu_count()} cores (possibly shared), {len(products)} products, {args.max_new_tokens} new tokens")
    report: dict[str, Any] = {"threads": args.threads, "model": generator.name}

    print("1. backend throughput, greedy, same prompts")
    generator.generate([_english_request(products[0], TemplateRenderer(), 8, 0)])  # warm-up
    report["llama_cpp"] = backend_throughput(generator, products, in_flight, args.max_new_tokens, args.repeats)
    if args.hf_python:
        hf = hf_throughput(args.hf_python, generator, products, in_flight, args.max_new_tokens, args.repeats,
                           args.threads)
        if hf:
            report["transformers"] = hf
            print(f"  transformers {hf['torch']} fp32 (load {hf['load_seconds']:.1f} s):")
            for count in in_flight:
                row, ours = hf["results"][str(count)], report["llama_cpp"][count]
                ratio = ours["tokens_per_s"] / row["tokens_per_s"]
                print(f"  {count:2d} in flight: transformers {row['tokens_per_s']:7.1f} tokens/s "
                      f"{row['products_per_s']:6.2f} products/s → llama.cpp ×{ratio:.1f}")
    else:
        print("  transformers baseline skipped: give --hf-python (a venv with torch, transformers, gguf)")

    if args.compare_runtime_type:
        converted = _generator(settings, args.threads, max(in_flight + [16]), args.compare_runtime_type)
        print(f"  the same weights converted to {args.compare_runtime_type} at load ({converted.name}):")
        converted.generate([_english_request(products[0], TemplateRenderer(), 8, 0)])
        rows = backend_throughput(converted, products, in_flight, args.max_new_tokens, args.repeats)
        report[f"llama_cpp_{args.compare_runtime_type}"] = rows
        for count in in_flight:
            print(f"  {count:2d} in flight: {args.compare_runtime_type} ×"
                  f"{rows[count]['tokens_per_s'] / report['llama_cpp'][count]['tokens_per_s']:.2f} vs as shipped")
        if args.runtime_type == args.compare_runtime_type:
            generator.close()
            generator = converted
        else:
            converted.close()
    elif args.runtime_type:
        generator = _generator(settings, args.threads, max(in_flight + [16]), args.runtime_type)

    if not args.skip_pipeline:
        print(f"2. whole pipeline ({generator.name}), English, batch 1 vs the worker's batch "
              f"({settings.products.max_batch_size})")
        pipeline = ProductPipeline(Settings(generator={"threads": args.threads}), generator=generator)
        english_only = [p.model_copy(update={"languages": ["en"]}) for p in products[:8]]
        report["pipeline"] = pipeline_throughput(pipeline, english_only, settings.products.max_batch_size)

    if not args.skip_quality:
        languages = args.quality_languages.split(",")
        print(f"3. quality per language ({generator.name} asked to write {', '.join(languages)})")
        everything = ProductPipeline(Settings(generator={"threads": args.threads, "languages": languages}),
                                     generator=generator)
        report["quality"] = quality(everything, products, settings.products.max_batch_size)
    print(f"decode statistics: {generator.stats}")
    # The process holds what a products worker holds: the model, its KV cache, the checker, the templates.
    report["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (model, KV cache, checker, templates): {report['max_rss_mb']:.0f} MB")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
