"""The worker main process's metrics endpoint, run in its own process like a worker: a forked "pool
process" writes metrics, the main process serves them with the broker's state, and ``/ready`` follows
models, broker and database."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.services import REPO_ROOT
from workers.runtime import metrics
from workers.runtime.redis_server import RedisServer
from workers.settings import Settings

# A worker main process in miniature: starts the endpoint, then forks a pool process on command.
MAIN_PROCESS = """
import json, os, sys
from workers.runtime import metrics
from workers.settings import Settings

settings = Settings()
handle = metrics.start_metrics_server(settings, metrics.connectivity_check(settings), queues=["documents"],
                                      processes=1)
print(json.dumps({"port": handle.port, "directory": str(handle.directory)}), flush=True)
child = None
for line in sys.stdin:
    if line.strip() == "fork":
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(writer)
            metrics.record_pipeline_ready("documents", 1.25, {"entities": 0.5})
            metrics.record_batch("documents", 4, {"validate": 0.01, "pipeline": 0.3, "persist": 0.02, "total": 0.4},
                                 {"stored": 3, "rejected": 1})
            print("forked", flush=True)
            os.read(reader, 1)  # until the main process closes the pipe
            os._exit(0)
        os.close(reader)
        child = (pid, writer)
    elif line.strip() == "end-child":
        os.close(child[1])
        os.waitpid(child[0], 0)
        print("ended", flush=True)
    elif line.strip() == "stop":
        handle.stop()
        print("stopped", flush=True)
        break
"""


def _two_free_ports() -> tuple[int, socket.socket]:
    """A port held by a listener, and a free port right after it."""
    for _ in range(50):
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 1))
            return port, holder
        except OSError:
            holder.close()
    raise RuntimeError("no two consecutive free ports")


class MainProcess:
    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", MAIN_PROCESS], env=env, cwd=REPO_ROOT, text=True,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        started = json.loads(self.read())
        self.port: int = started["port"]
        self.directory = Path(started["directory"])

    def read(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def command(self, command: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=10)

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        response = self.get("/metrics")
        assert response.status_code == 200
        return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(response.text) for sample in family.samples}


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def temp_dir(tmp_path: Path) -> Path:
    """The main process's TMPDIR, holding the metrics directory a SIGKILLed worker left behind."""
    (tmp_path / "tmp").mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "tmp" / f"slimline-metrics-{gone.stdout.strip()}-abc123").mkdir()
    return tmp_path / "tmp"


@pytest.fixture
def main_process(redis_server: RedisServer, temp_dir: Path, tmp_path: Path) -> Iterator[tuple[MainProcess, int]]:
    busy_port, holder = _two_free_ports()
    env = {**os.environ, "TMPDIR": str(temp_dir), "PYTHONPATH": str(REPO_ROOT), "SLIMLINE_REDIS_URL": redis_server.url,
           "SLIMLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'slimline.db'}",
           "SLIMLINE_METRICS_PORT": str(busy_port), "SLIMLINE_METRICS_PORT_SPAN": "2"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    main = MainProcess(env)
    try:
        yield main, busy_port
    finally:
        holder.close()
        if main.process.poll() is None:
            main.process.kill()
            main.process.wait()


def _value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_endpoint_serves_pool_metrics_broker_state_and_readiness(main_process: tuple[MainProcess, int],
                                                                  redis_server: RedisServer, temp_dir: Path) -> None:
    main, busy_port = main_process
    assert main.port == busy_port + 1  # the first port of the span was taken
    assert [path.name for path in temp_dir.iterdir()] == [main.directory.name]  # the dead worker's is gone
    assert main.directory.name.startswith(f"slimline-metrics-{main.process.pid}-")
    not_ready = main.get("/ready")
    assert not_ready.status_code == 503
    assert not_ready.json()["problems"] == ["models of documents loaded in 0 of 1 pool processes"]

    from tasks.app import create_app

    producer = create_app(Settings(redis_url=redis_server.url))
    sent = time.time() - 30
    for item_id in ("a", "b"):
        producer.send_task("slimline.documents.process", args=[{"id": item_id, "text": "x"}], queue="documents",
                           headers={metrics.SENT_AT_HEADER: sent})

    assert main.command("fork") == "forked"
    ready = main.get("/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True, "problems": []})
    samples = main.samples()
    assert _value(samples, "slimline_items_total", queue="documents", outcome="stored") == 3
    assert _value(samples, "slimline_items_total", queue="documents", outcome="rejected") == 1
    assert _value(samples, "slimline_items_total", queue="documents", outcome="dead_lettered") == 0
    assert _value(samples, "slimline_batch_size_sum", queue="documents") == 4
    assert _value(samples, "slimline_model_load_seconds", queue="documents") == 1.25
    assert _value(samples, "slimline_queue_depth", queue="documents") == 2
    assert _value(samples, "slimline_queue_depth", queue="transactions") == 0
    age = _value(samples, "slimline_queue_oldest_age_seconds", queue="documents")
    assert age is not None and 30 <= age < 60
    assert _value(samples, "slimline_queue_oldest_age_seconds", queue="transactions") == 0
    assert _value(samples, "slimline_in_flight_messages") == 0
    assert _value(samples, "slimline_worker_ready", queue="documents") == 1
    assert [labels for (name, labels) in samples if name == "slimline_worker_info"][0][2] == ("queues", "documents")
    assert main.get("/elsewhere").status_code == 404

    assert main.command("end-child") == "ended"
    after = main.get("/ready")
    assert after.status_code == 503
    assert after.json()["problems"] == ["models of documents loaded in 0 of 1 pool processes"]
    assert _value(main.samples(), "slimline_items_total", queue="documents", outcome="stored") == 3

    assert main.command("fork") == "forked"
    redis_server.stop()
    down = main.get("/ready")
    assert down.status_code == 503 and down.json()["problems"] == ["broker unreachable (ConnectionError)"]
    samples = main.samples()  # still served, without the broker's part
    assert _value(samples, "slimline_worker_ready", queue="documents") == 0
    assert _value(samples, "slimline_queue_depth", queue="documents") is None
    assert not any("redis://" in problem for problem in down.json()["problems"])

    assert main.command("end-child") == "ended"
    assert main.command("stop") == "stopped"
    assert main.process.wait(timeout=10) == 0
    assert not main.directory.exists()


def test_port_zero_turns_metrics_off() -> None:
    handle = metrics.start_metrics_server(Settings(metrics_port=0), lambda: [], queues=["documents"], processes=1)
    assert (handle.port, handle.directory) == (None, None)
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_no_free_port_runs_without_metrics_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="workers.runtime.metrics"):
            handle = metrics.start_metrics_server(Settings(metrics_port=port), lambda: [], queues=["documents"],
                                                  processes=1)
    assert handle.port is None
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    assert f"no free port in {port}..{port}" in caplog.text
