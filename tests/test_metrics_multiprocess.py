"""The metrics module in prometheus-client's multiprocess mode: pool processes write, the worker main
process adds up; producer timestamps are read defensively from real Celery messages."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.support.services import REPO_ROOT
from workers.runtime import metrics
from workers.runtime.redis_server import RedisServer

# A pool process: loads "models", runs two batches, then waits until told to exit (stdin closed).
POOL_PROCESS = """
import sys
from workers.runtime import metrics
load, stored = float(sys.argv[1]), int(sys.argv[2])
metrics.record_pipeline_ready("documents", load, {"entities": load / 10})
for _ in range(2):
    metrics.record_batch("documents", stored + 1, {"validate": 0.001, "pipeline": 0.2, "persist": 0.01, "total": 0.3},
                         {"stored": stored, "rejected": 1})
    metrics.record_latency("documents", 2.0)
print("recorded", flush=True)
sys.stdin.read()
"""


def _pool_process(directory: Path, load_seconds: float, stored: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([sys.executable, "-c", POOL_PROCESS, str(load_seconds), str(stored)], env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "recorded"
    return process


def _samples(directory: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for metric in MultiProcessCollector(None, path=str(directory)).collect() for sample in metric.samples}


def _value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_two_pool_processes_add_up_and_a_dead_ones_live_gauges_go(tmp_path: Path) -> None:
    first = _pool_process(tmp_path, load_seconds=1.5, stored=3)
    second = _pool_process(tmp_path, load_seconds=2.5, stored=5)
    try:
        samples = _samples(tmp_path)
        assert _value(samples, "slimline_items_total", queue="documents", outcome="stored") == 2 * 3 + 2 * 5
        assert _value(samples, "slimline_items_total", queue="documents", outcome="rejected") == 4
        # Created at zero when the pipeline is ready, so increase() sees the first dead letter.
        assert _value(samples, "slimline_items_total", queue="documents", outcome="dead_lettered") == 0
        assert _value(samples, "slimline_batch_size_count", queue="documents") == 4
        assert _value(samples, "slimline_batch_size_sum", queue="documents") == 2 * 4 + 2 * 6
        assert _value(samples, "slimline_batch_seconds_count", queue="documents", stage="persist") == 4
        assert _value(samples, "slimline_batch_seconds_bucket", queue="documents", stage="pipeline", le="0.25") == 4
        assert _value(samples, "slimline_batch_seconds_bucket", queue="documents", stage="pipeline", le="0.1") == 0
        assert _value(samples, "slimline_enqueue_to_stored_seconds_count", queue="documents") == 4
        assert _value(samples, "slimline_model_load_seconds", queue="documents") == 2.5  # slowest live process
        assert _value(samples, "slimline_model_warm_up_seconds", queue="documents", component="entities") == 0.25
        assert _value(samples, "slimline_pool_processes_ready", queue="documents") == 2
        assert metrics.ready_processes(tmp_path) == {"documents": 2}
        assert metrics.sweep_dead_processes(tmp_path) == []

        second.communicate("")
        assert metrics.sweep_dead_processes(tmp_path) == [second.pid]
        samples = _samples(tmp_path)
        assert metrics.ready_processes(tmp_path) == {"documents": 1}
        assert _value(samples, "slimline_model_load_seconds", queue="documents") == 1.5
        # Counters of the dead process stay: a counter must never go backwards.
        assert _value(samples, "slimline_items_total", queue="documents", outcome="stored") == 16
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.communicate("")


def test_unknown_stage_or_outcome_is_refused() -> None:
    with pytest.raises(ValueError, match="lost"):
        metrics.record_batch("documents", 1, {"total": 0.1}, {"lost": 1})
    with pytest.raises(ValueError, match="decode"):
        metrics.record_batch("documents", 1, {"decode": 0.1}, {"stored": 1})


@pytest.mark.parametrize("header, expected", [
    (1_700_000_000.5, 1_700_000_000.5),
    (1_700_000_000, 1_700_000_000.0),
    ("1700000000.25", 1_700_000_000.25),
    (True, None), (None, None), ("yesterday", None), (float("nan"), None), (float("inf"), None),
    (-5.0, None), ([1.0], None), ({"t": 1}, None),
])
def test_sent_at_is_parsed_defensively(header: object, expected: float | None) -> None:
    assert metrics.sent_at({metrics.SENT_AT_HEADER: header}) == expected


def test_sent_at_needs_a_mapping() -> None:
    assert metrics.sent_at(None) is None
    assert metrics.sent_at(["slimline_sent_at"]) is None  # type: ignore[arg-type]
    assert metrics.seconds_since_sent({}, now=10.0) is None
    assert metrics.seconds_since_sent({metrics.SENT_AT_HEADER: 20.0}, now=10.0) == 0.0  # producer clock ahead


def test_oldest_message_age_from_a_real_celery_message(tmp_path: Path) -> None:
    """The header a producer sets with ``send_task(headers=...)`` is read from the consuming end."""
    from tasks.app import create_app
    from workers.settings import Settings

    server = RedisServer(tmp_path / "redis").start()
    try:
        app = create_app(Settings(redis_url=server.url))
        sent = time.time() - 30
        app.send_task("slimline.documents.process", args=[{"id": "a", "text": "x"}], queue="documents",
                      headers={metrics.SENT_AT_HEADER: sent})
        app.send_task("slimline.documents.process", args=[{"id": "b", "text": "x"}], queue="documents",
                      headers={metrics.SENT_AT_HEADER: time.time()})
        client = metrics.broker_client(Settings(redis_url=server.url))
        now = time.time()
        age = metrics.oldest_message_age(client.lindex("documents", -1), now)
        assert age is not None and math.isclose(age, now - sent, abs_tol=1e-3)
        app.send_task("slimline.documents.process", args=[{"id": "c", "text": "x"}], queue="transactions")
        assert metrics.oldest_message_age(client.lindex("transactions", -1), now) is None  # no header
        assert metrics.oldest_message_age(None, now) == 0.0  # empty queue
        assert metrics.oldest_message_age(b"\xff not json", now) is None
        assert metrics.oldest_message_age(json.dumps({"headers": "x"}).encode(), now) is None
        assert client.llen("documents") == 2  # read, never taken
    finally:
        server.stop()
