"""Products: which generator writes which language, how fast, and how often its texts pass the checks.

    python -m benchmarks.products_generation                      # the default variants, 12 pairs a language
    python -m benchmarks.products_generation --variants smollm2-135m:q8_0:plan,qwen2.5-coder-0.5b::plan
    python -m benchmarks.products_generation --pairs-per-language 2 --skip-throughput   # a quick look

A variant is MODEL:RUNTIME_TYPE:PROMPT: a catalogue model (workers/shared/generator/catalogue.py), the type its
weights are converted to at load (empty: as shipped) and the prompt style (workers/products/prompts.py). Each
variant runs in its own process (so that its peak RSS is its own) and measures:

1. tokens/s with 1 and 16 sequences in flight: greedy, the bundled products' English prompts as the worker
   builds them, a fixed number of new tokens (the prompt's time included). Medians over ``--repeats``.
2. quality: the whole pipeline (grammar, sampling, grounding check, greedy retry, template fallback) with the
   model asked to write every language, on ``--pairs-per-language`` bundled product-language pairs per language
   (12: 60 pairs), in the worker's batches. Per language: how many slots the model wrote passing the check
   (first attempt, after the retry); the rest are templates. Every text goes to ``--texts`` for reading.
3. products per hour: the bundled products with all their languages, as the quality run writes them
   (pairs/hour from that run ÷ languages per product).

The grounding check is workers/products/grounding.py as it is in this checkout (say which version you used).
The machine may be shared (other processes on the same cores): numbers are noisy; compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp

from schemas import Product
from workers.products.pipeline import ProductPipeline
from workers.products.prompts import product_messages
from workers.products.templates import TemplateRenderer
from workers.settings import Settings
from workers.shared.generator import GenerationRequest
from workers.shared.generator.llama_cpp import LlamaCppGenerator, make_llama_cpp_generator

SAMPLES = Path(__file__).parents[1] / "workers" / "products" / "data" / "sample_products.jsonl"
HF_BASELINE = Path(__file__).parent / "products_hf_baseline.py"
LANGUAGES = ("en", "de", "fr", "es", "it")
DEFAULT_VARIANTS = ("smollm2-135m:q8_0:facts", "smollm2-135m:q8_0:plan", "qwen2.5-coder-0.5b::facts",
                    "qwen2.5-coder-0.5b::plan", "qwen2.5-coder-0.5b:q8_0:plan", "qwen2.5-coder-1.5b::plan")


@dataclass(frozen=True)
class Variant:
    model: str
    runtime_type: str | None
    prompt: str

    @classmethod
    def parse(cls, text: str) -> Variant:
        model, runtime_type, prompt = (text.split(":") + ["", ""])[:3]
        return cls(model, runtime_type or None, prompt or "plan")

    def __str__(self) -> str:
        return f"{self.model}:{self.runtime_type or ''}:{self.prompt}"


def products() -> list[Product]:
    return [Product.model_validate_json(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines()]


def sample_pairs(all_products: list[Product], per_language: int,
                 languages: tuple[str, ...] = LANGUAGES) -> list[Product]:
    """``per_language`` products per language, spread over the file, each asked for the chosen languages only."""
    chosen: dict[str, list[str]] = defaultdict(list)
    for language in languages:
        asking = [p for p in all_products if language in p.languages]
        step = max(1, len(asking) // per_language)
        for product in asking[::step][:per_language]:
            chosen[product.id].append(language)
    return [p.model_copy(update={"languages": [lang for lang in p.languages if lang in chosen[p.id]]})
            for p in all_products if p.id in chosen]


def _english_request(product: Product, renderer: TemplateRenderer, prompt: str, max_tokens: int,
                     index: int) -> GenerationRequest:
    return GenerationRequest(key=f"{product.id}:{index}", messages=product_messages(product, "en", renderer, prompt),
                             max_tokens=max_tokens, seed=index, prefill=product.name, greedy=True)


def throughput(generator: LlamaCppGenerator, sample: list[Product], prompt: str, in_flight: list[int],
               max_tokens: int, repeats: int) -> dict[int, float]:
    renderer = TemplateRenderer()
    rates = {}
    for count in in_flight:
        measured = []
        for repeat in range(repeats):
            requests = [_english_request(sample[i % len(sample)], renderer, prompt, max_tokens, repeat * 100 + i)
                        for i in range(count)]
            started = time.perf_counter()
            generations = generator.generate(requests)
            measured.append(sum(g.tokens for g in generations) / (time.perf_counter() - started))
        rates[count] = statistics.median(measured)
        print(f"    {count:2d} in flight: {rates[count]:6.1f} tokens/s", flush=True)
    return rates


def hf_throughput(hf_python: str, generator: LlamaCppGenerator, sample: list[Product], prompt: str,
                  in_flight: list[int], max_tokens: int, repeats: int, threads: int) -> dict[str, Any] | None:
    """The baseline: transformers ``generate`` in fp32 on the same GGUF (dequantized), same prompt tokens and
    threads, in another Python (``--hf-python``: one with torch, transformers and gguf)."""
    renderer = TemplateRenderer()
    prompts = [generator._prompt_tokens(_english_request(sample[i % len(sample)], renderer, prompt, max_tokens, i))
               for i in range(max(in_flight))]
    spec = {"gguf": str(generator.model_file.path), "prompts": prompts, "batch_sizes": in_flight,
            "max_new_tokens": max_tokens, "repeats": repeats, "threads": threads,
            "pad_token_id": llama_cpp.llama_vocab_eos(generator._vocab)}
    completed = subprocess.run([hf_python, str(HF_BASELINE)], input=json.dumps(spec), capture_output=True, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    if completed.returncode != 0:
        print(f"    transformers baseline failed: {completed.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(completed.stdout)


def quality(pipeline: ProductPipeline, sample: list[Product], batch_size: int, texts: Path | None) -> dict[str, Any]:
    per_language: dict[str, Counter[str]] = defaultdict(Counter)
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    out = texts.open("w", encoding="utf-8") if texts else None  # written as it goes: a cut run can be rescored
    started = time.perf_counter()
    for start in range(0, len(sample), batch_size):
        batch = sample[start:start + batch_size]
        for product, outcome in zip(batch, pipeline(batch), strict=True):
            for language, description in outcome["descriptions"].items():
                counts = per_language[language]
                counts["pairs"] += 1
                attempts = description["attempts"]
                counts["first"] += bool(attempts and attempts[0]["verdict"] == "pass")
                counts["model"] += description["path"] == "model"
                for attempt in attempts:
                    reasons[language].update({r["code"] for r in attempt["reasons"]})
                row = {"product_id": product.id, "language": language, "path": description["path"],
                       "text": description["text"],
                       "attempts": [{"text": a.get("text"), "codes": [r["code"] for r in a["reasons"]]} for a in attempts]}
                if out:
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    out.flush()
    seconds = time.perf_counter() - started
    if out:
        out.close()
    pairs = sum(c["pairs"] for c in per_language.values())
    return {"per_language": {k: dict(v) for k, v in per_language.items()},
            "reasons": {k: dict(v.most_common()) for k, v in reasons.items()},
            "seconds": seconds, "pairs_per_hour": 3600 * pairs / seconds}


def run_variant(variant: Variant, args: argparse.Namespace) -> dict[str, Any]:
    """One variant, in this process: load, throughput, quality."""
    settings = Settings()
    started = time.perf_counter()
    generator = make_llama_cpp_generator(model=variant.model, cache_dir=settings.generator.cache_dir,
                                         threads=args.threads, max_sequences=16,
                                         context_tokens=settings.generator.context_tokens,
                                         runtime_type=variant.runtime_type)
    report: dict[str, Any] = {"variant": str(variant), "name": generator.name, "sha256": generator.sha256,
                              "load_seconds": time.perf_counter() - started, "threads": args.threads}
    print(f"  {variant}: {generator.name} (sha256 {generator.sha256[:16]}…), loaded in "
          f"{report['load_seconds']:.1f} s", flush=True)
    all_products = products()
    if not args.skip_throughput:
        english = [p for p in all_products if "en" in p.languages]
        generator.generate([_english_request(english[0], TemplateRenderer(), variant.prompt, 4, 0)])  # warm-up
        report["tokens_per_s"] = throughput(generator, english, variant.prompt, [1, 16], args.max_new_tokens,
                                            args.repeats)
        if args.hf_python:
            hf = hf_throughput(args.hf_python, generator, english, variant.prompt, [1, 16], args.max_new_tokens,
                               args.repeats, args.threads)
            if hf:
                report["transformers"] = hf
                for count in (1, 16):
                    theirs = hf["results"][str(count)]["tokens_per_s"]
                    print(f"    transformers fp32, {count:2d} in flight: {theirs:6.1f} tokens/s → llama.cpp "
                          f"×{report['tokens_per_s'][count] / theirs:.1f}", flush=True)
    if args.skip_quality:
        report["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return report
    pipeline = ProductPipeline(Settings(generator={"threads": args.threads, "languages": list(LANGUAGES)},
                                        products={"prompt": variant.prompt}), generator=generator)
    sample = sample_pairs(all_products, args.pairs_per_language, tuple(args.languages.split(",")))
    texts = args.texts_dir / f"{str(variant).replace(':', '+')}.jsonl" if args.texts_dir else None
    report["quality"] = quality(pipeline, sample, settings.products.max_batch_size, texts)
    languages_per_product = statistics.mean(len(p.languages) for p in all_products)
    report["products_per_hour"] = report["quality"]["pairs_per_hour"] / languages_per_product
    report["generated_tokens"] = generator.stats.generated_tokens
    report["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def rescore(texts_dir: Path) -> None:
    """Judge the texts a earlier run wrote (--texts-dir) with the grounding check of this checkout: a slot is the
    model's if its first attempt passes, or that fails and its greedy retry passes. The retry is greedy on the same
    prompt, so it is the text the pipeline would write again; a slot whose first attempt passed the old check
    has no retry on file and counts as a template if the new check rejects it (an underestimate)."""
    checker = ProductPipeline(Settings(generator={"languages": []})).checker
    by_id = {p.id: p for p in products()}
    print("rescored with the check of this checkout: model-written slots passing, per language")
    print(f"{'variant':34} " + " ".join(f"{lang:>8}" for lang in LANGUAGES))
    for path in sorted(texts_dir.glob("*.jsonl")):
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            product, language = by_id[row["product_id"]], row["language"]
            counts[language]["pairs"] += 1
            texts = [a["text"] for a in row["attempts"] if a.get("text") is not None]
            verdicts = [checker.check(text, product, language).passed for text in texts]
            counts[language]["first"] += bool(verdicts[:1] == [True])
            counts[language]["model"] += bool(verdicts and (verdicts[0] or (len(verdicts) > 1 and verdicts[1])))
        cells = [f"{counts[lang]['model']:>3}/{counts[lang]['pairs']:<2}({counts[lang]['first']:>2})" for lang in LANGUAGES]
        print(f"{path.stem.replace('+', ':'):34} " + " ".join(f"{c:>8}" for c in cells))


def print_table(reports: list[dict[str, Any]], per_language: int) -> None:
    print(f"\nmodel-written slots passing the check, of {per_language} per language (first attempt in brackets); "
          "the rest are templates")
    header = f"{'variant':34} " + " ".join(f"{lang:>8}" for lang in LANGUAGES)
    header += f" {'tok/s@1':>8} {'tok/s@16':>8} {'RSS MB':>7} {'products/h':>10}"
    print(header)
    for report in reports:
        if "error" in report:
            print(f"{report['variant']:34} failed: {report['error']}")
            continue
        if "quality" not in report:
            rates = report["tokens_per_s"]
            print(f"{report['variant']:34} {'(throughput only)':>44} {rates['1']:8.1f} {rates['16']:8.1f} "
                  f"{report['max_rss_mb']:7.0f}")
            continue
        cells = []
        for lang in LANGUAGES:
            counts = report["quality"]["per_language"].get(lang, {})
            cells.append(f"{counts.get('model', 0):>3}/{counts.get('pairs', 0):<2}({counts.get('first', 0):>2})")
        rates = report.get("tokens_per_s", {})
        print(f"{report['variant']:34} " + " ".join(f"{c:>8}" for c in cells)
              + f" {rates.get(1, rates.get('1', float('nan'))):8.1f} {rates.get(16, rates.get('16', float('nan'))):8.1f}"
              + f" {report['max_rss_mb']:7.0f} {report['products_per_hour']:10.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help="MODEL:RUNTIME_TYPE:PROMPT,…")
    parser.add_argument("--threads", type=int, default=1,
                        help="llama.cpp threads (1: on a shared 2-core machine more threads spin and collapse)")
    parser.add_argument("--pairs-per-language", type=int, default=12)
    parser.add_argument("--languages", default=",".join(LANGUAGES), help="the quality run's languages")
    parser.add_argument("--max-new-tokens", type=int, default=64, help="for the throughput runs")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--hf-python", default=os.environ.get("SLIMLINE_BENCH_HF_PYTHON"),
                        help="a Python with torch, transformers and gguf: transformers as the speed baseline")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--texts-dir", type=Path, help="write every generated text here, one JSONL per variant")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--rescore", type=Path, metavar="TEXTS_DIR",
                        help="generate nothing: judge the texts of an earlier --texts-dir run with this checkout's check")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one variant, print its JSON report
    args = parser.parse_args()
    if args.texts_dir:
        args.texts_dir.mkdir(parents=True, exist_ok=True)
    if args.rescore:
        rescore(args.rescore)
        return
    if args.one:
        print("REPORT " + json.dumps(run_variant(Variant.parse(args.one), args)), flush=True)
        return

    variants = [Variant.parse(v) for v in args.variants.split(",")]
    print(f"products generation benchmark: {len(variants)} variant(s), {args.threads} thread(s), "
          f"{os.cpu_count()} cores (possibly shared), {args.pairs_per_language} pairs per language")
    reports = []
    for variant in variants:
        command = [sys.executable, "-m", "benchmarks.products_generation", "--one", str(variant),
                   "--threads", str(args.threads), "--pairs-per-language", str(args.pairs_per_language),
                   "--max-new-tokens", str(args.max_new_tokens), "--repeats", str(args.repeats),
                   "--languages", args.languages]
        command += ["--skip-throughput"] if args.skip_throughput else []
        command += ["--skip-quality"] if args.skip_quality else []
        command += ["--hf-python", args.hf_python] if args.hf_python else []
        command += ["--texts-dir", str(args.texts_dir)] if args.texts_dir else []
        completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        lines = completed.stdout.splitlines()
        for line in lines:
            if not line.startswith("REPORT "):
                print(line, flush=True)
        found = [json.loads(line[7:]) for line in lines if line.startswith("REPORT ")]
        reports.append(found[0] if found else {"variant": str(variant), "error": f"exit {completed.returncode}"})
    print_table(reports, args.pairs_per_language)
    if args.json:
        args.json.write_text(json.dumps(reports, indent=2, default=str))


if __name__ == "__main__":
    main()
