"""Every metric the alert rules and the Grafana dashboard name is exported by a live worker, with counts
that match the work it did (real Redis, a real worker process, a real database)."""

from __future__ import annotations

import json
import re
import time

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Deployment
from tests.support.services import REPO_ROOT
from workers.runtime.metrics import SENT_AT_HEADER
from workers.runtime.redis_server import free_port

ALERTS = REPO_ROOT / "monitoring" / "alerts.yml"
DASHBOARD = REPO_ROOT / "monitoring" / "grafana" / "dashboards" / "slimline.json"
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')  # label values, e.g. job="slimline-workers"
SLIMLINE_METRIC = re.compile(r"\bslimline_[a-zA-Z0-9_]+\b")


def alert_expressions() -> list[str]:
    return [rule["expr"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [*dashboard["panels"], *(inner for panel in dashboard["panels"] for inner in panel.get("panels", []))]
    expressions = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    return expressions + [variable["definition"] for variable in dashboard["templating"]["list"]]


def metric_names(expression: str) -> set[str]:
    return set(SLIMLINE_METRIC.findall(QUOTED.sub('""', expression)))


def test_alerts_and_dashboard_name_slimline_metrics() -> None:
    """The parser below finds what it should (a guard against checking nothing)."""
    in_alerts = set().union(*map(metric_names, alert_expressions()))
    in_dashboard = set().union(*map(metric_names, dashboard_expressions()))
    assert {"slimline_queue_oldest_age_seconds", "slimline_items_total", "slimline_queue_depth",
            "slimline_worker_ready", "slimline_enqueue_to_stored_seconds_bucket"} <= in_alerts
    assert {"slimline_queue_depth", "slimline_items_total", "slimline_batch_size_bucket",
            "slimline_batch_seconds_bucket", "slimline_enqueue_to_stored_seconds_bucket"} <= in_dashboard
    assert metric_names('up{job="slimline_not_a_metric"} + slimline_a_metric') == {"slimline_a_metric"}


def _wait_ready(port: int, deployment: Deployment, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.TransportError as error:
            last = repr(error)
        time.sleep(0.5)
    logs = "\n".join(worker.log_tail() for worker in deployment.workers)
    raise AssertionError(f"worker not ready on :{port}/ready after {timeout}s ({last}); is "
                         f"start_metrics_server called by `slimline worker`?\n{logs}")


def _samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def _value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_every_metric_named_by_alerts_and_dashboard_is_exported_by_a_live_worker(
        sqlite_deployment: Deployment) -> None:
    port = free_port()
    sqlite_deployment.extra_env["SLIMLINE_METRICS_PORT"] = str(port)
    sqlite_deployment.start_worker(concurrency=1)
    _wait_ready(port, sqlite_deployment)

    documents = [{"id": f"metrics-{n}", "text": f"Invoice {n} from Northwind Traders Ltd, dated 12 March 2024."}
                 for n in range(5)]
    assert sqlite_deployment.enqueue(documents).accepted == 5
    # One message the producer's validation would have stopped, so the worker rejects it.
    sqlite_deployment.app.send_task("slimline.documents.process", args=[{"id": "bad id", "text": "x"}],
                                    queue="documents", headers={SENT_AT_HEADER: time.time()})
    sqlite_deployment.drain()

    samples = _samples(port)
    exported = {name for name, _ in samples}
    referenced = set().union(*map(metric_names, alert_expressions() + dashboard_expressions()))
    assert not referenced - exported, f"named by alerts/dashboard, not exported: {sorted(referenced - exported)}"

    assert _value(samples, "slimline_items_total", queue="documents", outcome="stored") == 5
    assert _value(samples, "slimline_items_total", queue="documents", outcome="rejected") == 1
    assert _value(samples, "slimline_items_total", queue="documents", outcome="dead_lettered") == 0
    assert _value(samples, "slimline_enqueue_to_stored_seconds_count", queue="documents") == 5
    assert _value(samples, "slimline_batch_size_sum", queue="documents") == 6
    batches = _value(samples, "slimline_batch_size_count", queue="documents")
    assert batches is not None and batches >= 1
    for stage in ("validate", "pipeline", "persist", "total"):
        assert _value(samples, "slimline_batch_seconds_count", queue="documents", stage=stage) == batches
    assert _value(samples, "slimline_queue_depth", queue="documents") == 0
    assert _value(samples, "slimline_worker_ready", queue="documents") == 1
    assert (_value(samples, "slimline_model_load_seconds", queue="documents") or 0) > 0
