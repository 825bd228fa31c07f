"""A worker started with plain `celery -A tasks.app worker` is a whole Slimline worker: what a worker must do at
start and stop is a bootstep of the app (workers/lifecycle/), not something `slimline worker` adds. Signatures are
checked, the log masking filter is on the handlers that write the log, metrics answer, models are loaded before
the first message, and a stop leaves nothing in flight."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from schemas import Kind
from tests.conftest import Deployment
from tests.support.services import REPO_ROOT, WorkerProcess
from workers.client import enqueue
from workers.lifecycle.steps import prefetch_multiplier, resolve_queues
from workers.runtime.queues import in_flight, live_workers
from workers.runtime.redis_server import free_port
from workers.security.worker_start import StartRefused
from workers.settings import Settings

CELERY = [sys.executable, "-m", "celery", "-A", "tasks.app", "worker", "--loglevel", "INFO", "--concurrency", "1"]
IBAN = "DE89370400440532013000"
EMAIL = "alice.smith@example.com"
KEYS = {"producers": {
    "bank": {"kinds": ["transactions"], "keys": {"bank-1": "b" * 40}, "signing_key": "bank-1"},
    "slimline": {"kinds": ["*"], "keys": {"workers-1": "w" * 40}},
}}


def transaction(item_id: str) -> dict[str, Any]:
    return {"id": item_id, "account_id": "acc-7", "amount": "42.10", "currency": "EUR",
            "timestamp": "2026-12-01T10:15:00Z", "merchant": {"name": "Corner Shop", "category_code": "5411"},
            "channel": "card_present", "country": "DE"}


def signed_deployment(deployment: Deployment, tmp_path: Path) -> Path:
    keys = tmp_path / "producers.json"
    keys.write_text(json.dumps(KEYS))
    deployment.extra_env |= {"SLIMLINE_PRODUCER_KEYS_FILE": str(keys), "SLIMLINE_ALLOW_UNSIGNED": "false"}
    return keys


def test_plain_celery_worker_checks_signatures_masks_logs_serves_metrics_and_loads_models_first(
        sqlite_deployment: Deployment, tmp_path: Path) -> None:
    deployment = sqlite_deployment
    keys = signed_deployment(deployment, tmp_path)
    bank = Settings(redis_url=deployment.redis_server.url, database_url=deployment.database_url,
                    producer_keys_file=keys, producer_id="bank")
    # Work waits in the queue before the worker exists: it must not be taken before the models are loaded.
    assert enqueue(Kind.transactions, [transaction("t-1"), transaction("t-2")], app=deployment.app,
                   settings=bank).accepted == 2
    assert enqueue(Kind.transactions, [transaction("t-unsigned")], app=deployment.app,
                   settings=deployment.settings).accepted == 1
    # A message no task knows, carrying personal data: Celery logs its body when it discards it.
    deployment.app.send_task("slimline.nope", args=[{"iban": IBAN, "email": EMAIL}], queue="transactions")

    port = free_port()
    worker = WorkerProcess(deployment.env() | {"SLIMLINE_METRICS_PORT": str(port)}, tmp_path / "celery.log",
                           command=[*CELERY, "-Q", "transactions"]).start()
    deployment.workers.append(worker)
    deployment.drain()

    stored = {row["item_id"] for row in deployment.store.current_results(Kind.transactions)}
    assert stored == {"t-1", "t-2"}
    [refused] = [row for row in deployment.store.rejections(kind="transactions") if row.item_id == "t-unsigned"]
    assert refused.field == "signature"

    log = worker.log_path.read_text()
    lines = log.splitlines()
    models_loaded = next(n for n, line in enumerate(lines) if "models loaded in 1 pool process" in line)
    first_batch = next(n for n, line in enumerate(lines) if "batch transactions:" in line)
    assert models_loaded < first_batch
    assert "unregistered task" in log and "[IBAN]" in log and "[EMAIL]" in log
    assert IBAN not in log and EMAIL not in log

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=10) as ready:
        assert json.load(ready)["ready"] is True
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as scraped:
        metrics = scraped.read().decode()
    assert 'slimline_items_total{outcome="stored",queue="transactions"} 2.0' in metrics

    assert worker.stop() == 0
    assert in_flight(deployment.broker) == 0
    assert not live_workers(deployment.broker)


def celery_start(deployment: Deployment, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CELERY, *arguments], env=deployment.env(), cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)


def test_plain_celery_worker_refuses_to_start_without_keys(sqlite_deployment: Deployment) -> None:
    sqlite_deployment.extra_env |= {"SLIMLINE_ALLOW_UNSIGNED": "false"}
    run = celery_start(sqlite_deployment, "-Q", "transactions")
    assert run.returncode == 2, run.stderr
    assert "refusing to start: no producer keys" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("arguments, expected", [
    (["-Q", "documents", "--tier", "escalated"], "does not match the queues"),
    (["-Q", "documents,documents.escalate"], "a worker serves one tier"),
])
def test_plain_celery_worker_refuses_queues_that_do_not_make_one_tier(
        sqlite_deployment: Deployment, arguments: list[str], expected: str) -> None:
    run = celery_start(sqlite_deployment, *arguments)
    assert run.returncode == 2 and expected in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_queues_decide_kinds_and_tier() -> None:
    assert resolve_queues(None, None) == ([Kind.documents, Kind.transactions, Kind.products], "compact",
                                          ["documents", "transactions", "products"])
    assert resolve_queues(None, "escalated") == ([Kind.documents, Kind.products], "escalated",
                                                 ["documents.escalate", "products.escalate"])
    assert resolve_queues(["documents.escalate"], None) == ([Kind.documents], "escalated", ["documents.escalate"])
    with pytest.raises(StartRefused, match="one tier"):
        resolve_queues(["transactions", "documents.escalate"], None)
    with pytest.raises(StartRefused, match="not a Slimline queue"):
        resolve_queues(["transactions", "celery.pidbox"], None)


def test_prefetch_leaves_room_for_a_batch_per_process_and_one_filling_within_the_byte_budget() -> None:
    settings = Settings()
    assert prefetch_multiplier(settings, [Kind.transactions], 2) == 3 * 32 // 2
    small_budget = Settings(worker_prefetch_bytes=2**20, max_document_chars=100_000)  # fits one 864 KB message
    assert prefetch_multiplier(small_budget, [Kind.documents], 2) == 2  # at least a message per process and one more
