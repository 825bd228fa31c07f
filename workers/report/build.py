"""One report for a period: the store's rows through :mod:`workers.report.figures`, as one JSON-able dict."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from schemas import Kind
from workers.report import figures
from workers.report.settings import ReportSettings

if TYPE_CHECKING:
    from workers.db.store import OutcomeStore

SCHEMA_VERSION = 1
NOTES = [
    "Cost is the CPU seconds of the pool processes (time.process_time per batch) at the core-hour price; Redis, "
    "the database and the workers' main processes are not in it.",
    "A batch's CPU seconds are shared among its languages in proportion to their items; items without a "
    "language were rejected or failed.",
    "Hosted-LLM tokens are estimated from characters (workers/report/settings.py): the item as JSON ÷ "
    "chars_per_token plus instructions, and a typical answer.",
    "Accuracy is measured on what people reviewed (the human tier is the truth), mostly the hard cases: it is "
    "not the accuracy on all traffic.",
]


def build_report(store: OutcomeStore, prices: ReportSettings, since: datetime, until: datetime) -> dict[str, Any]:
    batches = store.batch_stats(since, until)
    latencies = store.latencies(since, until)
    groups = figures.cost_groups(batches, latencies, prices)
    reviewed_documents = store.reviewed_versions(Kind.documents, since, until)
    classes = figures.class_accuracy(reviewed_documents)
    entities = figures.entity_precision(reviewed_documents)
    flags = figures.flag_accuracy(store.labelled_flags(since, until))
    machine_products = store.machine_results(Kind.products, since, until)
    approved = store.current_reviewed(Kind.products, "approved", sorted({row["item_id"] for row in machine_products}))
    products = figures.products_grounding(machine_products, approved)
    return {
        "schema_version": SCHEMA_VERSION,
        "period": {"since": since, "until": until},
        "prices": prices.model_dump(),
        "notes": NOTES,
        "batches": len(batches),
        "groups": groups,
        "stages": figures.stage_costs(batches, prices),
        "accuracy": {"documents": {"class": classes["rows"], "confusion": classes["confusion"],
                                   "entities": entities},
                     "transactions": {"flags": flags},
                     "products": {"grounding": products}},
        "accuracy_per_cost": figures.accuracy_per_cost(groups, classes["rows"], flags, products),
        "timeline": figures.timeline(batches, latencies),
    }
