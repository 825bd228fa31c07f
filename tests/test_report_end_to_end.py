"""`slimline report` on a database filled by a real worker (documents, transactions and products through Redis) and
by people's reviews made with the CLI: every batch leaves a row of statistics in its own transaction, and the
report's counts, costs, token estimates and accuracies are the ones those batches and reviews imply."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rich.console import Console
from schemas import Document, Kind
from tests.conftest import Deployment
from tests.support.services import REPO_ROOT
from workers.db.models_report import BatchStat
from workers.report.build import build_report
from workers.report.render import to_terminal
from workers.report.settings import ReportSettings
from workers.transactions.simulator import SimulationConfig, simulate

pytest.importorskip("llama_cpp", reason="the generator's llama.cpp build is installed by scripts/install-models.sh")

DOCUMENTS = REPO_ROOT / "workers" / "documents" / "data" / "labelled_documents.jsonl"
PRODUCTS = REPO_ROOT / "workers" / "products" / "data" / "sample_products.jsonl"
PRICE = {"SLIMLINE_REPORT__CORE_HOUR_PRICE": "0.09", "SLIMLINE_REPORT__LLM_PRICE_PER_1K_TOKENS": "0.001"}


def _documents() -> tuple[list[dict], dict[str, str]]:
    """Four documents in each of English and French (no language given: the worker detects it), and their classes."""
    rows = [json.loads(line) for line in DOCUMENTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    chosen = [row for language in ("en", "fr") for row in [r for r in rows if r["language"] == language][::15][:4]]
    return [{"id": row["id"], "text": row["text"]} for row in chosen], {row["id"]: row["label"] for row in chosen}


def _transactions() -> list[dict]:
    items = simulate(SimulationConfig(accounts=30, days=4, seed=5))
    return [{key: value for key, value in item.items() if key not in ("label", "scenario")} for item in items]


def _products() -> list[dict]:
    rows = [json.loads(line) for line in PRODUCTS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row | {"languages": ["en", "de"]} for row in rows[:2]]


def _cli(deployment: Deployment, *args: str) -> str:
    """The mounted `slimline` command, run in this process (one import instead of one per call) against the
    deployment's Redis and database."""
    from typer.testing import CliRunner

    from workers.cli.main import app
    from workers.settings import get_settings

    environment = {name: value for name, value in deployment.env().items() if name.startswith("SLIMLINE_")}
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(app, list(args), env=environment, catch_exceptions=False)
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    return done.stdout


def _group(report: dict, kind: str, language: str = "all") -> dict:
    [group] = [g for g in report["groups"] if g["kind"] == kind and g["tier"] == "compact" and g["language"] == language]
    return group


def test_report_counts_costs_and_accuracy_of_real_work_and_cli_reviews(sqlite_deployment: Deployment,
                                                                       tmp_path: Path) -> None:
    deployment = sqlite_deployment
    deployment.extra_env.update(PRICE)
    deployment.start_worker(queues="documents,transactions,products")
    documents, classes = _documents()
    transactions, products = _transactions(), _products()
    deployment.enqueue(documents)
    deployment.enqueue(transactions, kind=Kind.transactions)
    deployment.enqueue(products, kind=Kind.products)
    deployment.drain(timeout=300)
    store = deployment.store

    # Every batch left one row of statistics, written with its outcomes.
    batches = store.batch_stats(*_period())
    for kind, sent in (("documents", documents), ("transactions", transactions), ("products", products)):
        rows = [b for b in batches if b["kind"] == kind]
        assert sum(b["size"] for b in rows) == sum(b["results"] for b in rows) == len(sent)
        assert all(b["cpu_seconds"] > 0 and b["total_seconds"] >= b["pipeline_seconds"] > 0 for b in rows)

    # People review: an English document keeps the model's class, a French one gets another; analysts label
    # three transactions (two flags, one allowed transaction that was fraud after all); one product approved,
    # one corrected.
    served = {row["item_id"]: row["result"] for row in store.current_results(Kind.documents)}
    reviewed = {documents[0]["id"]: served[documents[0]["id"]]["classification"]["label"],
                documents[4]["id"]: next(label for label in sorted(set(classes.values()))
                                         if label != served[documents[4]["id"]]["classification"]["label"])}
    for item_id, label in reviewed.items():
        _cli(deployment, "review", "documents", "resolve", item_id, "--label", label, "--as", "reviewer")
    decisions = store.current_results(Kind.transactions)
    flagged = [row for row in decisions if row["result"]["action"] != "allow"]
    allowed = [row for row in decisions if row["result"]["action"] == "allow"]
    assert len(flagged) >= 2 and allowed, "the simulated history should give flags and allowed transactions"
    for row, label in ((flagged[0], "confirmed_fraud"), (flagged[1], "dismissed"), (allowed[0], "confirmed_fraud")):
        _cli(deployment, "flags", "review", row["item_id"], "--as", label, "--actor", "analyst")
    _cli(deployment, "products", "review", "approve", products[0]["id"], "--actor", "editor")
    _cli(deployment, "products", "review", "edit", products[1]["id"], "--language", "en", "--text",
         "A plain description a person wrote.", "--actor", "editor")

    html_file = tmp_path / "report.html"
    report = json.loads(_cli(deployment, "report", "--since", "1h", "--format", "json", "--html", str(html_file)))

    assert report["schema_version"] == 1 and report["prices"]["core_hour_price"] == 0.09
    assert {"period", "groups", "stages", "accuracy", "accuracy_per_cost", "timeline", "notes"} <= set(report)
    # Work and cost: items as sent, CPU measured, cost at the configured price, latency of every result.
    for kind, sent in (("documents", documents), ("transactions", transactions), ("products", products)):
        group = _group(report, kind)
        assert group["items"] == len(sent) and group["latency_count"] == len(sent)
        assert group["cpu_seconds"] > 0
        assert group["cost_per_1k"] == pytest.approx(group["cpu_seconds_per_1k"] / 3600 * 0.09)
        assert 0 < group["latency_p50_seconds"] <= group["latency_p95_seconds"]
    languages = Counter(result["language"] for result in served.values())
    assert {lang: _group(report, "documents", lang)["items"] for lang in languages} == dict(languages)
    assert sum(_group(report, "documents", lang)["cpu_seconds"] for lang in languages) == pytest.approx(
        _group(report, "documents")["cpu_seconds"])
    # The hosted LLM's input tokens: each document as JSON, 4 characters a token, plus 300 of instructions.
    chars = sum(len(Document.model_validate(document).model_dump_json()) for document in documents)
    documents_group = _group(report, "documents")
    assert documents_group["llm_input_tokens_per_item"] == pytest.approx(chars / len(documents) / 4 + 300)
    assert documents_group["llm_cost_per_1k"] == pytest.approx(
        documents_group["llm_input_tokens_per_item"] * 0.001 + 250 * 0.0006)
    stages = [s for s in report["stages"] if s["kind"] == "documents"]
    assert [s["stage"] for s in stages] == ["validate", "pipeline", "persist"]
    assert sum(s["cpu_seconds_per_1k"] for s in stages) == pytest.approx(documents_group["cpu_seconds_per_1k"])

    # Class accuracy: the model's class against the reviewer's, per language.
    expected = Counter()
    for item_id, label in reviewed.items():
        language = served[item_id]["language"]
        correct = served[item_id]["classification"]["label"] == label
        for key in (language, "all"):
            expected[(key, "reviewed")] += 1
            expected[(key, "correct")] += correct
    rows = {row["language"]: row for row in report["accuracy"]["documents"]["class"] if row["tier"] == "compact"}
    for language in {served[item_id]["language"] for item_id in reviewed} | {"all"}:
        assert rows[language]["reviewed"] == expected[(language, "reviewed")]
        assert rows[language]["correct"] == expected[(language, "correct")]
    assert rows["all"]["accuracy"] == 0.5  # the kept class is right, the changed one wrong
    confusion = report["accuracy"]["documents"]["confusion"]
    assert sum(sum(line) for c in confusion.values() for line in c["matrix"]) == len(reviewed)
    assert report["accuracy"]["documents"]["entities"]["documents"] == 0  # class reviews say nothing of entities

    flags = report["accuracy"]["transactions"]["flags"]
    assert (flags["labelled"], flags["flagged"], flags["confirmed_fraud"]) == (3, 2, 2)
    assert flags["precision"] == pytest.approx(0.5) and flags["recall"] == pytest.approx(0.5)
    assert flags["pr_curve"] and flags["average_precision"] is not None

    grounding = {row["language"]: row for row in report["accuracy"]["products"]["grounding"]}
    assert (grounding["en"]["approved"], grounding["en"]["kept"]) == (2, 1)  # one English text was replaced
    assert (grounding["de"]["approved"], grounding["de"]["kept"]) == (2, 2)
    assert grounding["en"]["descriptions"] == 2 and grounding["en"]["tried"] >= 1  # the generator writes English
    assert grounding["de"]["tried"] == 0  # German comes from templates

    per_cost = [r for r in report["accuracy_per_cost"] if r["kind"] == "documents" and r["language"] == "all"]
    assert per_cost[0]["right_per_currency_unit"] == pytest.approx(
        rows["all"]["accuracy"] * 1000 / documents_group["cost_per_1k"])

    # The HTML file holds the tables and every plot as an embedded PNG.
    page = html_file.read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3 + len(confusion) + 1  # throughput, latency, cost per stage, confusions, PR curve
    assert all(base64.b64decode(image).startswith(b"\x89PNG\r\n\x1a\n") for image in images)
    assert "Throughput over time" in page and "Precision/recall of the risk score" in page

    console = Console(record=True, width=200)
    to_terminal(build_report(store, ReportSettings(), *_period()), console)
    table = console.export_text()
    assert "Work, latency and cost per 1,000 items (USD)" in table and "Flags against analysts' labels" in table

    # Retention purges a kind's batch statistics with its outcomes, and leaves the other kinds'.
    store.purge({"documents": 0}, actor="test")
    with store.sessions() as session:
        left = dict(list(session.execute(select(BatchStat.kind, func.count()).group_by(BatchStat.kind))))
    assert "documents" not in left and left["transactions"] > 0


def _period():
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    return now - timedelta(hours=1), now + timedelta(minutes=1)


@pytest.mark.postgres
def test_report_reads_the_same_figures_on_postgresql(postgres_deployment: Deployment) -> None:
    """The report's reads (JSON fields of results, timestamps) on PostgreSQL: outcomes and a batch's statistics
    saved in one transaction as a worker saves them, a person's review, then the report."""
    from datetime import datetime, timezone

    from workers.db.store import Outcomes

    store = postgres_deployment.store
    sent = datetime.now(timezone.utc)
    results = [{"item_id": f"d{index}", "content_hash": f"h{index}", "tier": "compact", "review_status": None,
                "sent_at": sent, "model": "slimline-documents", "model_version": "2", "message_id": f"m{index}",
                "result": {"language": language, "classification": {"label": "invoice"}}}
               for index, language in enumerate(("en", "en", "de"))]
    stats = {"kind": "documents", "tier": "compact", "model": "slimline-documents", "model_version": "2",
             "worker": "w:1", "started_at": sent, "size": 3, "results": 3, "rejected": 0, "failed": 0,
             "input_chars": 900, "validate_seconds": 0.01, "pipeline_seconds": 0.2, "persist_seconds": 0.02,
             "total_seconds": 0.23, "validate_cpu_seconds": 0.01, "pipeline_cpu_seconds": 0.15,
             "persist_cpu_seconds": 0.01, "cpu_seconds": 0.17,
             "languages": {"en": {"items": 2, "input_chars": 600}, "de": {"items": 1, "input_chars": 300}}}
    store.save(Kind.documents, Outcomes(results=results, batch_stats=lambda: stats))
    store.review(Kind.documents, "d2", actor="reviewer", review_status="resolved",
                 result={"language": "de", "classification": {"label": "contract"}})

    report = build_report(store, ReportSettings(), *_period())
    groups = {g["language"]: g for g in report["groups"]}
    assert (groups["all"]["items"], groups["en"]["items"], groups["de"]["items"]) == (3, 2, 1)
    assert groups["all"]["latency_count"] == 3 and groups["en"]["latency_count"] == 2
    assert groups["de"]["cpu_seconds"] == pytest.approx(0.17 / 3)
    [german] = [row for row in report["accuracy"]["documents"]["class"] if row["language"] == "de"]
    assert (german["reviewed"], german["correct"]) == (1, 0)
    assert report["accuracy"]["documents"]["confusion"]["de"] == {"labels": ["contract", "invoice"],
                                                                  "matrix": [[0, 1], [0, 0]]}
