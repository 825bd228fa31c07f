"""From the store's rows to the report's figures: pure functions, no database and no plotting.

Work and cost come from ``batch_stats`` (one row per batch), latency from the results' send and store times, and
accuracy from what people decided (the human tier is the truth). A batch's CPU seconds are shared among its
languages in proportion to their items."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from workers.report.settings import ReportSettings

ALL = "all"  # the language of a group that adds up every language of its kind, tier and model
STAGES = ("validate", "pipeline", "persist")
FLAGGED_ACTIONS = ("review", "block")
BUCKETS_SECONDS = (1, 5, 10, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)
MAX_BUCKETS = 60

GroupKey = tuple[str, str, str | None, str | None, str | None]  # kind, tier, model, model version, language


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _group(key: GroupKey) -> dict[str, Any]:
    kind, tier, model, model_version, language = key
    return {"kind": kind, "tier": tier, "model": model, "model_version": model_version, "language": language}


# --- work, latency and cost -------------------------------------------------------------------------------


def _shares(batch: dict[str, Any]) -> Iterable[tuple[str | None, int, int]]:
    """(language, items, input characters) of a batch: its languages, then what no language covers
    (rejected or failed items, or a kind without languages) as language None."""
    languages: dict[str, dict[str, int]] = batch.get("languages") or {}
    items = chars = 0
    for language, counts in sorted(languages.items()):
        items += counts["items"]
        chars += counts["input_chars"]
        yield language, counts["items"], counts["input_chars"]
    if batch["size"] > items:
        yield None, batch["size"] - items, max(batch["input_chars"] - chars, 0)


def cost_groups(batches: Sequence[dict[str, Any]], latencies: Sequence[dict[str, Any]],
                prices: ReportSettings) -> list[dict[str, Any]]:
    """Per kind, tier, model and version: one row for all languages and, where the kind has languages, one per
    language: items, CPU and wall seconds per 1,000 items, latency p50/p95, cost per 1,000 items, and the same
    items priced at a hosted LLM's per-token prices."""
    sums: dict[GroupKey, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    languages_of: dict[tuple[Any, ...], set[str | None]] = defaultdict(set)
    for batch in batches:
        base = (batch["kind"], batch["tier"], batch["model"], batch["model_version"])
        for language, items, chars in _shares(batch):
            share = items / batch["size"]
            for key in {(*base, ALL), (*base, language)}:
                group = sums[key]
                group["items"] += items
                group["input_chars"] += chars
                group["cpu_seconds"] += batch["cpu_seconds"] * share
                group["wall_seconds"] += batch["total_seconds"] * share
            languages_of[base].add(language)
        sums[(*base, ALL)]["batches"] += 1
    seconds: dict[GroupKey, list[float]] = defaultdict(list)
    for row in latencies:
        base = (row["kind"], row["tier"], row["model"], row["model_version"])
        seconds[(*base, ALL)].append(row["seconds"])
        seconds[(*base, row["language"])].append(row["seconds"])

    groups = []
    for key in sorted(sums, key=lambda k: tuple("" if part is None else str(part) for part in k)):
        base, language = key[:4], key[4]
        if language != ALL and languages_of[base] == {None}:
            continue  # a kind without languages: its "all" row says it all
        total = sums[key]
        items = int(total["items"])
        cpu_per_1k = 1000 * total["cpu_seconds"] / items if items else None
        latency = seconds.get(key, [])
        row = _group(key) | {
            "batches": int(total["batches"]) if language == ALL else None,
            "items": items,
            "cpu_seconds": total["cpu_seconds"],
            "cpu_seconds_per_1k": cpu_per_1k,
            "wall_seconds_per_1k": 1000 * total["wall_seconds"] / items if items else None,
            "latency_count": len(latency),
            "latency_p50_seconds": percentile(latency, 50),
            "latency_p95_seconds": percentile(latency, 95),
            "cost_per_1k": None if cpu_per_1k is None else cpu_per_1k / 3600 * prices.core_hour_price,
        } | llm_cost(key[0], items, int(total["input_chars"]), prices)
        row["llm_cost_ratio"] = _ratio(row["llm_cost_per_1k"] or 0.0, row["cost_per_1k"] or 0.0)
        groups.append(row)
    return groups


def llm_cost(kind: str, items: int, input_chars: int, prices: ReportSettings) -> dict[str, float | None]:
    """The same items sent to a hosted LLM: tokens in (the item as JSON ÷ characters per token, plus the
    instructions) and out (a typical answer), priced per 1,000 tokens (see workers/report/settings.py)."""
    if not items:
        return {"llm_input_tokens_per_item": None, "llm_output_tokens_per_item": None, "llm_cost_per_1k": None}
    tokens_in = input_chars / items / prices.chars_per_token + prices.llm_prompt_tokens.get(kind, 0)
    tokens_out = float(prices.llm_output_tokens.get(kind, 0))
    # per 1,000 items: tokens × price per 1,000 tokens
    cost = tokens_in * prices.llm_price_per_1k_tokens + tokens_out * prices.llm_output_price_per_1k_tokens
    return {"llm_input_tokens_per_item": tokens_in, "llm_output_tokens_per_item": tokens_out, "llm_cost_per_1k": cost}


def stage_costs(batches: Sequence[dict[str, Any]], prices: ReportSettings) -> list[dict[str, Any]]:
    """Per kind, tier, model and version, and stage (validate, pipeline, persist): wall and CPU seconds and cost
    per 1,000 items. Persist ends with the batch's statistics row, just before the commit."""
    sums: dict[tuple[Any, ...], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for batch in batches:
        base = (batch["kind"], batch["tier"], batch["model"], batch["model_version"])
        sums[base]["items"] += batch["size"]
        for stage in STAGES:
            sums[base][f"{stage}_wall"] += batch[f"{stage}_seconds"]
            sums[base][f"{stage}_cpu"] += batch[f"{stage}_cpu_seconds"]
    rows = []
    for base in sorted(sums, key=lambda k: tuple(str(part) for part in k)):
        total = sums[base]
        per_1k = 1000 / total["items"]
        for stage in STAGES:
            cpu = total[f"{stage}_cpu"] * per_1k
            rows.append(_group((*base, ALL)) | {
                "stage": stage, "items": int(total["items"]), "wall_seconds_per_1k": total[f"{stage}_wall"] * per_1k,
                "cpu_seconds_per_1k": cpu, "cost_per_1k": cpu / 3600 * prices.core_hour_price})
    return rows


# --- accuracy where a person reviewed ---------------------------------------------------------------------


def _served_and_truth(versions: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]] | None:
    """The machine versions of the content a person reviewed last, and that human version."""
    humans = [version for version in versions if version["tier"] == "human"]
    if not humans:
        return None
    truth = humans[-1]
    machine = [version for version in versions
               if version["tier"] != "human" and version["content_hash"] == truth["content_hash"]]
    return (machine, truth) if machine else None


def _label(result: dict[str, Any]) -> str | None:
    return (result.get("classification") or {}).get("label")


def class_accuracy(reviewed: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Documents: each machine version's class against the person's, per tier, model version and language
    (and over all languages); a confusion matrix per language of what was served (the last machine version,
    i.e. the escalated tier's where a document escalated). Reviewed documents are those a person was asked
    about, mostly the hard ones: this is accuracy on them, not on all traffic."""
    counts: dict[tuple[str, str | None, str], list[int]] = defaultdict(lambda: [0, 0])
    served: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for versions in reviewed.values():
        found = _served_and_truth(versions)
        if found is None:
            continue
        machine, human = found
        truth = _label(human["result"])
        if truth is None:
            continue
        for version in machine:
            language = version["result"].get("language") or "?"
            correct = int(_label(version["result"]) == truth)
            for key in ((version["tier"], version["model_version"], language),
                        (version["tier"], version["model_version"], ALL)):
                counts[key][0] += 1
                counts[key][1] += correct
        last = machine[-1]
        served[last["result"].get("language") or "?"].append((truth, str(_label(last["result"]))))
    rows = [{"kind": "documents", "tier": tier, "model_version": model_version, "language": language,
             "reviewed": reviewed_count, "correct": correct, "accuracy": correct / reviewed_count}
            for (tier, model_version, language), (reviewed_count, correct) in sorted(
                counts.items(), key=lambda item: tuple(str(part) for part in item[0]))]
    return {"rows": rows, "confusion": {language: confusion(pairs) for language, pairs in sorted(served.items())}}


def confusion(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Rows: the person's class; columns: the model's."""
    labels = sorted({label for pair in pairs for label in pair})
    index = {label: position for position, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for truth, predicted in pairs:
        matrix[index[truth]][index[predicted]] += 1
    return {"labels": labels, "matrix": matrix}


def _entity_key(entity: dict[str, Any]) -> tuple[Any, ...]:
    return entity.get("label"), entity.get("start"), entity.get("end"), entity.get("text")


def entity_precision(reviewed: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Documents whose human version says its entities were reviewed (``entities_reviewed: true``, set by a
    review that corrects entities): per label, the served entities a person kept (precision) and the person's
    entities the model found (recall). A review of the class alone says nothing about entities."""
    per_label: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # predicted, kept, truth
    documents = 0
    for versions in reviewed.values():
        found = _served_and_truth(versions)
        if found is None or not found[1]["result"].get("entities_reviewed"):
            continue
        documents += 1
        predicted = {_entity_key(entity) for entity in found[0][-1]["result"].get("entities") or []}
        truth = {_entity_key(entity) for entity in found[1]["result"].get("entities") or []}
        for key in predicted:
            per_label[str(key[0])][0] += 1
            per_label[str(key[0])][1] += key in truth
        for key in truth:
            per_label[str(key[0])][2] += 1
    rows = [{"label": label, "predicted": predicted, "kept": kept, "reviewed": truth,
             "precision": _ratio(kept, predicted), "recall": _ratio(kept, truth)}
            for label, (predicted, kept, truth) in sorted(per_label.items())]
    return {"documents": documents, "rows": rows}


def flag_accuracy(labelled: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Transactions an analyst labelled: precision of the flags (review or block) and recall of the fraud
    analysts confirmed (a confirmed fraud that was allowed is a miss), and the precision/recall curve and
    average precision of the risk score over the labelled transactions that have one."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fraud = [row for row in labelled if row["review_status"] == "confirmed_fraud"]
    flagged = [row for row in labelled if row["action"] in FLAGGED_ACTIONS]
    caught = sum(row["action"] in FLAGGED_ACTIONS for row in fraud)
    summary = {"labelled": len(labelled), "confirmed_fraud": len(fraud), "dismissed": len(labelled) - len(fraud),
               "flagged": len(flagged), "flagged_fraud": caught,
               "precision": _ratio(caught, len(flagged)), "recall": _ratio(caught, len(fraud)),
               "model_versions": sorted({str(row["model_version"]) for row in labelled})}
    scored = [row for row in labelled if row["score"] is not None]
    labels = [int(row["review_status"] == "confirmed_fraud") for row in scored]
    curve: list[dict[str, float]] = []
    average_precision = None
    if 0 < sum(labels) < len(labels):
        precision, recall, thresholds = precision_recall_curve(labels, [row["score"] for row in scored])
        # sklearn's order (recall falling); the last point (precision 1, recall 0) has no threshold
        curve = [{"threshold": float(threshold) if threshold is not None else None, "precision": float(p),
                  "recall": float(r)} for p, r, threshold in zip(precision, recall, [*thresholds, None], strict=True)]
        average_precision = float(average_precision_score(labels, [row["score"] for row in scored]))
    return summary | {"scored": len(scored), "average_precision": average_precision, "pr_curve": curve}


def products_grounding(machine: Sequence[dict[str, Any]], approved: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per language: of the descriptions the generator was tried on, the share whose text passed the grounding
    check (and of all attempts, the share that passed); of the descriptions in products a person approved,
    the share they kept as the machine wrote it (not replaced by a person's text)."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in machine:
        for language, description in (row["result"].get("descriptions") or {}).items():
            attempts = description.get("attempts") or []
            counts[language]["descriptions"] += 1
            counts[language]["tried"] += bool(attempts)
            counts[language]["passed"] += description.get("path") == "model" and description.get("verdict") == "pass"
            counts[language]["attempts"] += len(attempts)
            counts[language]["attempts_passed"] += sum(attempt.get("verdict") == "pass" for attempt in attempts)
    for row in approved:
        for language, description in (row["result"].get("descriptions") or {}).items():
            counts[language]["approved"] += 1
            counts[language]["kept"] += description.get("path") != "human"
    return [{"kind": "products", "language": language, **dict(c),
             "grounding_pass_rate": _ratio(c["passed"], c["tried"]),
             "attempt_pass_rate": _ratio(c["attempts_passed"], c["attempts"]),
             "kept_rate": _ratio(c["kept"], c["approved"])}
            for language, c in sorted(counts.items())]


# --- accuracy per cost ------------------------------------------------------------------------------------


def accuracy_per_cost(groups: Sequence[dict[str, Any]], classes: Sequence[dict[str, Any]], flags: dict[str, Any],
                      products: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Right answers per unit of currency: accuracy × 1,000 ÷ cost per 1,000 items, beside a hosted LLM's best
    case at its price (every answer right). Accuracy: class accuracy for documents, flag precision for
    transactions, grounding pass rate for products."""
    def matching(kind: str, tier: str | None, model_version: str | None, language: str) -> dict[str, Any] | None:
        return next((g for g in groups if g["kind"] == kind and g["language"] == language
                     and (tier is None or g["tier"] == tier)
                     and (model_version is None or g["model_version"] == model_version)), None)

    wanted = [("documents", row["tier"], row["model_version"], row["language"], "class accuracy", row["accuracy"],
               row["reviewed"]) for row in classes]
    if flags.get("precision") is not None:
        wanted.append(("transactions", "compact", None, ALL, "flag precision", flags["precision"], flags["flagged"]))
    wanted += [("products", "compact", None, ALL, f"grounding pass rate ({row['language']})", row["grounding_pass_rate"],
                row["tried"]) for row in products if row["grounding_pass_rate"] is not None]
    rows = []
    for kind, tier, model_version, language, metric, value, count in wanted:
        group = matching(kind, tier, model_version, language)
        cost = group["cost_per_1k"] if group else None
        llm = group["llm_cost_per_1k"] if group else None
        rows.append({"kind": kind, "tier": tier, "model_version": model_version, "language": language,
                     "metric": metric, "value": value, "count": count, "cost_per_1k": cost,
                     "right_per_currency_unit": value * 1000 / cost if cost else None,
                     "llm_cost_per_1k": llm, "llm_best_case_right_per_currency_unit": 1000 / llm if llm else None})
    return rows


# --- over time --------------------------------------------------------------------------------------------


def timeline(batches: Sequence[dict[str, Any]], latencies: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Items per second and latency p50/p95 per kind in time buckets (at most 60 of a round size)."""
    times = [batch["started_at"] for batch in batches] + [row["stored_at"] for row in latencies]
    if not times:
        return {"bucket_seconds": None, "points": []}
    first, last = min(times), max(times)
    span = (last - first).total_seconds()
    bucket = next((size for size in BUCKETS_SECONDS if span / size < MAX_BUCKETS), BUCKETS_SECONDS[-1])
    origin = datetime.fromtimestamp(first.timestamp() // bucket * bucket, tz=first.tzinfo)

    def slot(moment: datetime) -> int:
        return int((moment - origin).total_seconds() // bucket)

    items: dict[tuple[str, int], int] = defaultdict(int)
    seconds: dict[tuple[str, int], list[float]] = defaultdict(list)
    for batch in batches:
        items[(batch["kind"], slot(batch["started_at"]))] += batch["size"]
    for row in latencies:
        seconds[(row["kind"], slot(row["stored_at"]))].append(row["seconds"])
    points = [{"kind": kind, "start": origin + timedelta(seconds=index * bucket),
               "items": items.get((kind, index), 0), "items_per_second": items.get((kind, index), 0) / bucket,
               "latency_p50_seconds": percentile(seconds.get((kind, index), []), 50),
               "latency_p95_seconds": percentile(seconds.get((kind, index), []), 95)}
              for kind, index in sorted(set(items) | set(seconds))]
    return {"bucket_seconds": bucket, "points": points}
