"""The report's plots, drawn offline with matplotlib (Agg: no display, no network) as PNG bytes. Each returns
None when the report has no data for it."""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DPI = 96


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def _by_kind(points: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    kinds: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for point in points:
        kinds[point["kind"]].append(point)
    return kinds


def throughput(timeline: dict[str, Any]) -> bytes | None:
    if not timeline["points"]:
        return None
    figure, axes = plt.subplots(figsize=(8, 3.2))
    for kind, points in sorted(_by_kind(timeline["points"]).items()):
        axes.plot([p["start"] for p in points], [p["items_per_second"] for p in points], marker="o", label=kind)
    axes.set_title(f"Throughput (items/s, {timeline['bucket_seconds']} s buckets)")
    axes.set_ylabel("items/s")
    axes.legend()
    figure.autofmt_xdate()
    return _png(figure)


def latency(timeline: dict[str, Any]) -> bytes | None:
    points = [p for p in timeline["points"] if p["latency_p50_seconds"] is not None]
    if not points:
        return None
    figure, axes = plt.subplots(figsize=(8, 3.2))
    for kind, series in sorted(_by_kind(points).items()):
        line, = axes.plot([p["start"] for p in series], [p["latency_p50_seconds"] for p in series], marker="o",
                          label=f"{kind} p50")
        axes.plot([p["start"] for p in series], [p["latency_p95_seconds"] for p in series], linestyle="--",
                  color=line.get_color(), label=f"{kind} p95")
    axes.set_title("Latency, enqueue to stored (s)")
    axes.set_ylabel("seconds")
    axes.legend()
    figure.autofmt_xdate()
    return _png(figure)


def cost_per_stage(stages: list[dict[str, Any]], currency: str) -> bytes | None:
    if not stages:
        return None
    names = sorted({(row["kind"], row["tier"], row["model_version"]) for row in stages}, key=str)
    figure, axes = plt.subplots(figsize=(8, 0.6 * len(names) + 1.6))
    left = [0.0] * len(names)
    for stage in ("validate", "pipeline", "persist"):
        values = [next((row["cost_per_1k"] for row in stages if (row["kind"], row["tier"], row["model_version"])
                        == name and row["stage"] == stage), 0.0) for name in names]
        axes.barh([f"{kind} {tier} v{version}" for kind, tier, version in names], values, left=left, label=stage)
        left = [a + b for a, b in zip(left, values, strict=True)]
    axes.set_title(f"Cost per 1,000 items by stage ({currency}, pool-process CPU)")
    axes.set_xlabel(currency)
    axes.legend()
    return _png(figure)


def confusion_matrix(language: str, confusion: dict[str, Any]) -> bytes:
    labels, matrix = confusion["labels"], confusion["matrix"]
    size = max(3.0, 0.55 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size + 1, size))
    image = axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    darkest = max((count for values in matrix for count in values), default=0)
    for row, values in enumerate(matrix):
        for column, count in enumerate(values):
            if count:
                axes.text(column, row, str(count), ha="center", va="center",
                          color="white" if count > darkest / 2 else "black")
    axes.set_xlabel("model")
    axes.set_ylabel("person")
    axes.set_title(f"Document classes, {language}: person vs model")
    figure.colorbar(image, ax=axes, shrink=0.7)
    return _png(figure)


def precision_recall(flags: dict[str, Any]) -> bytes | None:
    curve = flags["pr_curve"]
    if not curve:
        return None
    figure, axes = plt.subplots(figsize=(5, 4))
    axes.plot([p["recall"] for p in curve], [p["precision"] for p in curve], drawstyle="steps-post")  # as sklearn
    axes.set_xlim(0, 1.02)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_title(f"Risk score on {flags['scored']} labelled transactions (AP {flags['average_precision']:.3f})")
    return _png(figure)


def all_plots(report: dict[str, Any]) -> dict[str, bytes]:
    """Every plot the report has data for, by title."""
    documents, currency = report["accuracy"]["documents"], report["prices"]["currency"]
    plots: dict[str, bytes | None] = {
        "Throughput over time": throughput(report["timeline"]),
        "Latency over time": latency(report["timeline"]),
        "Cost per stage": cost_per_stage(report["stages"], currency),
    }
    for language, confusion in documents["confusion"].items():
        plots[f"Confusion matrix, documents in {language}"] = confusion_matrix(language, confusion)
    plots["Precision/recall of the risk score"] = precision_recall(report["accuracy"]["transactions"]["flags"])
    return {title: png for title, png in plots.items() if png is not None}
