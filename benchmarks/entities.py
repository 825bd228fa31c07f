"""Entity quality on the gold set, and entity speed, measured in one run.

Run from the repository root: ``python -m benchmarks.entities`` (``--errors dev`` lists the rule layer's
misses and spurious entities on the dev split: the only split rules may be tuned on; ``--json PATH``).

Quality (``workers/documents/data/entities_gold.jsonl``, 131 texts in en/de/fr/es/it, see
``workers/documents/entities/evaluation.py``): exact-match precision/recall/F1 (start, end and label must
all agree) per language and per label, on the ``test`` split (never tuned on) and on ``dev``;
"norm" is the share of true positives whose normalized value is right. Rows:

- rules: the rule layer alone (``entities.rules`` with the shipped triage lexicon), every language.
- merged: the rule entities the pipeline keeps (``entities.multilingual``: spaCy for en/fr, rules, merge
  policy), scored on the same labels: the recall lost where spaCy wins an overlap. spaCy's own DATE and
  MONEY spans ("two hours", "yesterday") are left out here: the gold set only annotates dates with a year.
- baseline, spaCy en alone: ``en_core_web_sm`` MONEY and DATE on the English texts (the only rule labels
  spaCy has), beside the rule layer on the same texts and labels.

Speed: texts/second (median of ``--repeats``) of the rule layer, of the merged extractor, and of spaCy's
``nlp.pipe`` alone on the same batch (the baseline the ratios divide by), one process, one native thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from workers.runtime.threads import pin_native_threads

pin_native_threads(1)

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from workers.documents.entities.entity import RULE_LABELS  # noqa: E402
from workers.documents.entities.evaluation import GoldText, Score, load_gold, score  # noqa: E402
from workers.documents.entities.multilingual import build_entity_extractor  # noqa: E402
from workers.documents.entities.rules import RuleEntityExtractor  # noqa: E402
from workers.settings import Settings  # noqa: E402

LEXICON_LABELS = frozenset({"SYMPTOM", "MEDICATION"})
ALL_LABELS = RULE_LABELS | LEXICON_LABELS
console = Console()


def _table(title: str, scores: dict[str, Score]) -> Table:
    table = Table(title=title)
    for column in ("group", "P", "R", "F1", "TP", "FP", "FN", "norm"):
        table.add_column(column, justify="right" if column != "group" else "left")
    for name in sorted(scores, key=lambda n: (n == "all", n)):
        s = scores[name]
        norm = f"{s.normalized_right}/{s.normalized_judged}" if s.normalized_judged else "-"
        table.add_row(name, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.true_positives),
                      str(s.false_positives), str(s.false_negatives), norm)
    return table


def _median_rate(run: Callable[[], object], items: int, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return items / statistics.median(seconds)


def _summary(scores: dict[str, Score]) -> dict[str, dict[str, float]]:
    return {name: {"precision": s.precision, "recall": s.recall, "f1": s.f1, "tp": s.true_positives,
                   "fp": s.false_positives, "fn": s.false_negatives} for name, s in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", choices=["dev", "test"], help="list the rule layer's errors on this split")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()

    settings = Settings()
    gold = load_gold()
    rules = RuleEntityExtractor(settings.documents.lexicon, settings.documents.phone_regions, settings.documents.date_order)
    merged_extractor = build_entity_extractor(settings)
    texts = [item.text for item in gold]
    languages: list[str | None] = [item.language for item in gold]
    rule_output = rules(texts, languages)
    merged_output = [[e for e in entities if e["source"] != "spacy"] for entities in merged_extractor(texts, languages)]
    report: dict[str, object] = {}

    for split in ("test", "dev"):
        picked = [i for i, item in enumerate(gold) if item.split == split]
        split_gold: list[GoldText] = [gold[i] for i in picked]
        for name, output in (("rules", rule_output), ("merged", merged_output)):
            predicted = [output[i] for i in picked]
            by_language, _ = score(split_gold, predicted, ALL_LABELS, key="language")
            by_label, errors = score(split_gold, predicted, ALL_LABELS, key="label")
            console.print(_table(f"{name} · {split} split ({len(picked)} texts) · per language", by_language))
            if name == "rules":
                console.print(_table(f"{name} · {split} split · per label", by_label))
            report[f"{name}/{split}/language"] = _summary(by_language)
            report[f"{name}/{split}/label"] = _summary(by_label)
            if name == "rules" and args.errors == split:
                for item_id, entity in errors.missed:
                    console.print(f"missed   {item_id} {entity['label']:<16} {entity['text']!r}")
                for item_id, entity in errors.spurious:
                    console.print(f"spurious {item_id} {entity['label']:<16} {entity['text']!r}")
                for item_id, entity, expected in errors.misnormalized:
                    console.print(f"norm     {item_id} {entity['label']:<16} {entity['text']!r} "
                                  f"{entity.get('normalized')!r} != {expected!r}")

    english = [i for i, item in enumerate(gold) if item.language == "en"]
    nlp = merged_extractor.ner["en"].nlp
    en_gold = [gold[i] for i in english]
    spacy_only = [
        [{"text": e.text, "label": e.label_, "start": e.start_char, "end": e.end_char, "source": "spacy"}
         for e in doc.ents] for doc in nlp.pipe([gold[i].text for i in english])
    ]
    money_date = frozenset({"MONEY", "DATE"})
    baseline, _ = score(en_gold, spacy_only, money_date)
    rules_en, _ = score(en_gold, [rule_output[i] for i in english], money_date)
    console.print(_table("baseline: spaCy en alone · English texts, MONEY and DATE, both splits", baseline))
    console.print(_table("rules · English texts, MONEY and DATE, both splits", rules_en))
    report["baseline_spacy_en_money_date"] = _summary(baseline)
    report["rules_en_money_date"] = _summary(rules_en)

    batch = texts * 4
    batch_languages = languages * 4
    rates = {
        "spaCy en nlp.pipe alone (baseline)": _median_rate(lambda: list(nlp.pipe(batch, batch_size=32)), len(batch), args.repeats),
        "rule layer": _median_rate(lambda: rules(batch, batch_languages), len(batch), args.repeats),
        "merged (spaCy en/fr + rules)": _median_rate(lambda: merged_extractor(batch, batch_languages), len(batch), args.repeats),
    }
    speed = Table(title=f"speed · {len(batch)} texts (the gold set ×4), median of {args.repeats}, 1 thread")
    speed.add_column("extractor")
    speed.add_column("texts/s", justify="right")
    speed.add_column("vs baseline", justify="right")
    base = rates["spaCy en nlp.pipe alone (baseline)"]
    for name, rate in rates.items():
        speed.add_row(name, f"{rate:.0f}", f"{rate / base:.2f}×")
    console.print(speed)
    report["speed_texts_per_second"] = rates
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
