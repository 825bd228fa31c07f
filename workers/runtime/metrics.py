"""Prometheus metrics of a worker: every metric defined once, small hooks the runtime calls, and the
endpoint the worker's main process serves (``/metrics``, ``/ready``).

Celery's prefork pool runs batches in child processes, so metrics use prometheus-client's
multiprocess mode: every process writes its values to files in a directory private to the worker
(``PROMETHEUS_MULTIPROC_DIR``), and the main process adds them up when scraped. The broker's state
(queue depth, age of the oldest message, messages in flight) is read from Redis by the main process
at scrape time, with read-only commands that never take or move a message.

Every metric has labels: prometheus-client creates a labelled metric's value files on first use
(``.labels(...)``), which happens after :func:`start_metrics_server` has chosen the directory.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from workers.runtime.connection import broker_tls, redis_url
from workers.settings import Settings

log = logging.getLogger(__name__)

OUTCOMES = ("stored", "rejected", "retried", "dead_lettered", "requeued")
STAGES = ("validate", "pipeline", "persist", "total")
SENT_AT_HEADER = "slimline_sent_at"  # producer's clock, epoch seconds

# --- written by pool processes (multiprocess files) ---

ITEMS = Counter("slimline_items", "Messages by outcome: stored, rejected (bad input), retried, "
                "dead_lettered (kept failing), requeued (given back, e.g. database down).", ["queue", "outcome"])
BATCH_SIZE = Histogram("slimline_batch_size", "Messages per batch.", ["queue"],
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
BATCH_SECONDS = Histogram("slimline_batch_seconds", "Seconds per batch and stage (validate, pipeline, persist, "
                          "total).", ["queue", "stage"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
ENQUEUE_TO_STORED = Histogram("slimline_enqueue_to_stored_seconds", "Seconds from the producer's send to the "
                              "stored outcome (producer clock vs worker clock).", ["queue"],
                              buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600))
MODEL_LOAD_SECONDS = Gauge("slimline_model_load_seconds", "Seconds to build a queue's pipeline (models "
                           "loaded), slowest live pool process.", ["queue"], multiprocess_mode="livemax")
WARM_UP_SECONDS = Gauge("slimline_model_warm_up_seconds", "Seconds of a pipeline component's warm-up, slowest "
                        "live pool process.", ["queue", "component"], multiprocess_mode="livemax")
PROCESSES_READY = Gauge("slimline_pool_processes_ready", "Live pool processes with the queue's models loaded.",
                        ["queue"], multiprocess_mode="livesum")


# --- hooks (called by the runtime, in pool processes) ---

def record_batch(queue: str, size: int, stage_seconds: Mapping[str, float], outcomes: Mapping[str, int]) -> None:
    """One finished batch: its size, seconds per stage (keys from :data:`STAGES`) and message count
    per outcome (keys from :data:`OUTCOMES`)."""
    unknown = (set(stage_seconds) - set(STAGES)) | (set(outcomes) - set(OUTCOMES))
    if unknown:
        raise ValueError(f"unknown stage or outcome {sorted(unknown)}; stages {STAGES}, outcomes {OUTCOMES}")
    BATCH_SIZE.labels(queue).observe(size)
    for stage, seconds in stage_seconds.items():
        BATCH_SECONDS.labels(queue, stage).observe(seconds)
    for outcome, count in outcomes.items():
        if count:
            ITEMS.labels(queue, outcome).inc(count)


def record_latency(queue: str, seconds: float) -> None:
    """Enqueue-to-stored time of one stored item (see :func:`seconds_since_sent`)."""
    ENQUEUE_TO_STORED.labels(queue).observe(max(seconds, 0.0))


def record_pipeline_ready(queue: str, load_seconds: float, warm_up_seconds: Mapping[str, float]) -> None:
    """This pool process built the queue's pipeline and warmed it up (``Pipeline.warm_up()``'s timings).

    Also creates the queue's outcome counters at zero, so that ``increase()`` sees their first event."""
    MODEL_LOAD_SECONDS.labels(queue).set(load_seconds)
    for component, seconds in warm_up_seconds.items():
        WARM_UP_SECONDS.labels(queue, component).set(seconds)
    for outcome in OUTCOMES:
        ITEMS.labels(queue, outcome)
    PROCESSES_READY.labels(queue).set(1)


def sent_at(headers: Mapping[str, Any] | None) -> float | None:
    """The producer's send time from message headers, or None if absent or not a plausible time."""
    value = headers.get(SENT_AT_HEADER) if isinstance(headers, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def seconds_since_sent(headers: Mapping[str, Any] | None, now: float | None = None) -> float | None:
    """Seconds since the producer sent the message (0 if its clock is ahead), or None if unknown."""
    sent = sent_at(headers)
    if sent is None:
        return None
    return max((time.time() if now is None else now) - sent, 0.0)


# --- the worker main process: broker state, readiness, HTTP endpoint ---

ReadinessCheck = Callable[[], list[str]]
"""Returns what keeps the worker from working (empty: ready). Must not raise."""


def broker_client(settings: Settings) -> redis.Redis:
    """A Redis client for scrapes and probes: short timeouts, so a stuck broker cannot stall a scrape."""
    return redis.Redis.from_url(redis_url(settings), socket_timeout=2, socket_connect_timeout=2,
                                **(broker_tls(settings) or {}))


def connectivity_check(settings: Settings) -> ReadinessCheck:
    """Broker answers PING and the database answers ``SELECT 1`` (reasons name the error type only:
    messages may contain URLs)."""
    from sqlalchemy import text

    from workers.db.engine import make_engine

    broker = broker_client(settings)
    engine = make_engine(settings.database_url.get_secret_value())

    def check() -> list[str]:
        problems = []
        try:
            broker.ping()
        except Exception as error:  # noqa: BLE001 - any failure means not ready
            problems.append(f"broker unreachable ({type(error).__name__})")
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as error:  # noqa: BLE001
            problems.append(f"database unreachable ({type(error).__name__})")
        return problems

    return check


def oldest_message_age(raw: bytes | str | None, now: float) -> float | None:
    """Age of a raw kombu message by its producer timestamp header; 0 for no message, None if unknown."""
    if raw is None:
        return 0.0
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return seconds_since_sent(message.get("headers") if isinstance(message, dict) else None, now)


class BrokerCollector(Collector):
    """Queue depth and oldest message age of every queue, and messages in flight, read at scrape time.

    Every worker reports every queue (so a worker of one queue sees another queue nobody consumes):
    aggregate with ``max by (queue)``. In flight is broker-wide: kombu keeps one unacked index for all
    queues."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def collect(self) -> Iterator[Metric]:
        from workers.runtime.queues import in_flight, queue_depths

        try:
            depths = queue_depths(self.client)
            # The consuming end of a queue is its right (workers/runtime/broker.py moves from RIGHT).
            oldest = {queue: self.client.lindex(queue, -1) for queue, length in depths.items() if length}
            flying = in_flight(self.client)
        except redis.RedisError as error:
            log.debug("metrics: broker unreachable (%s); queue metrics left out of this scrape",
                      type(error).__name__)
            return
        now = time.time()
        depth = GaugeMetricFamily("slimline_queue_depth", "Messages waiting in the queue.", labels=["queue"])
        age = GaugeMetricFamily("slimline_queue_oldest_age_seconds", "Age of the next message to be taken "
                                "(0 when empty), by its producer timestamp.", labels=["queue"])
        for queue, length in depths.items():
            depth.add_metric([queue], length)
            seconds = oldest_message_age(oldest[queue], now) if length else 0.0
            if seconds is not None:
                age.add_metric([queue], seconds)
        yield depth
        yield age
        yield GaugeMetricFamily("slimline_in_flight_messages", "Messages taken by workers and not yet "
                                "acknowledged, all queues.", value=flying)


class WorkerCollector(Collector):
    """This worker's readiness per consumed queue, and who it is."""

    def __init__(self, readiness: ReadinessCheck, queues: Sequence[str]) -> None:
        self.readiness = readiness
        self.queues = list(queues)

    def collect(self) -> Iterator[Metric]:
        ready = not self.readiness()
        gauge = GaugeMetricFamily("slimline_worker_ready", "1 if this worker can take work from the queue "
                                  "(models loaded, broker and database reachable).", labels=["queue"])
        for queue in self.queues:
            gauge.add_metric([queue], 1 if ready else 0)
        yield gauge
        info = GaugeMetricFamily("slimline_worker_info", "This worker (value 1).",
                                 labels=["hostname", "pid", "queues", "version"])
        info.add_metric([socket.gethostname(), str(os.getpid()), ",".join(self.queues), _version()], 1)
        yield info


def _version() -> str:
    try:
        return metadata.version("slimline")
    except metadata.PackageNotFoundError:
        return "unknown"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def sweep_dead_processes(path: str | Path) -> list[int]:
    """Drop the live gauges of pool processes that are gone (killed ones included); their counters stay."""
    dead = [pid for pid in {int(name.stem.rsplit("_", 1)[1]) for name in Path(path).glob("gauge_live*_*.db")}
            if not _alive(pid)]
    for pid in dead:
        mark_process_dead(pid, str(path))
    return dead


def _new_metrics_dir() -> Path:
    """A fresh directory named after this worker's pid; those of killed workers (never cleaned up) go."""
    prefix = "slimline-metrics-"
    for stale in Path(tempfile.gettempdir()).glob(f"{prefix}*-*"):
        pid = stale.name.removeprefix(prefix).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-"))


def ready_processes(path: str | Path) -> dict[str, int]:
    """Live pool processes with models loaded, per queue, from the multiprocess files."""
    counts: dict[str, int] = {}
    for metric in MultiProcessCollector(None, path=str(path)).collect():
        if metric.name == "slimline_pool_processes_ready":
            for sample in metric.samples:
                counts[sample.labels["queue"]] = int(sample.value)
    return counts


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Scrapes and probes are not worth a log line each."""


@dataclass
class MetricsServer:
    """The worker's metrics endpoint; ``port`` is None when metrics are off or no port was free."""

    port: int | None = None
    directory: Path | None = None
    _server: ThreadingWSGIServer | None = None
    _owner_pid: int = field(default_factory=os.getpid)

    def stop(self) -> None:
        """Stop serving and remove the metrics files. Only the process that started it does anything
        (pool processes inherit this object through the fork)."""
        if os.getpid() != self._owner_pid:
            return
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


def _bind(host: str, ports: Iterable[int], app: Callable[..., Any]) -> ThreadingWSGIServer | None:
    for port in ports:
        try:
            return make_server(host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
        except OSError:
            continue
    return None


def _use_multiprocess_dir(directory: Path) -> None:
    """Point prometheus-client at ``directory``. It picks file-backed values from this variable when it
    is first imported, which may have happened already; choosing again is safe because no metric of
    this module has created a value yet (they are all labelled). Pool processes inherit both."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.get_value_class()


def start_metrics_server(settings: Settings, readiness_check: ReadinessCheck, *, queues: Sequence[str],
                         processes: int) -> MetricsServer:
    """Serve ``/metrics`` and ``/ready`` from the worker main process. Call before the pool forks.

    ``/ready`` is 200 when ``readiness_check`` reports nothing and every one of ``processes`` pool
    processes has loaded the models of every queue, else 503 with the reasons as JSON. Without a
    free port in the configured span the worker runs without metrics (logged as an error; Prometheus
    shows the target down)."""
    if settings.metrics_port == 0:
        return MetricsServer()
    directory = _new_metrics_dir()

    def problems() -> list[str]:
        try:
            reasons = list(readiness_check())
        except Exception as error:  # noqa: BLE001 - a failing check means not ready
            reasons = [f"readiness check failed ({type(error).__name__})"]
        sweep_dead_processes(directory)
        loaded = ready_processes(directory)
        for queue in queues:
            if loaded.get(queue, 0) < processes:
                reasons.append(f"models of {queue} loaded in {loaded.get(queue, 0)} of {processes} pool processes")
        return reasons

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    registry.register(BrokerCollector(broker_client(settings)))
    registry.register(WorkerCollector(problems, queues))
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            sweep_dead_processes(directory)
            return metrics_app(environ, start_response)
        if path == "/ready":
            reasons = problems()
            body = json.dumps({"ready": not reasons, "problems": reasons}).encode()
            start_response("200 OK" if not reasons else "503 Service Unavailable",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"/metrics or /ready\n"]

    first = settings.metrics_port
    server = _bind(settings.metrics_host, range(first, min(first + settings.metrics_port_span, 65536)), app)
    if server is None:
        shutil.rmtree(directory, ignore_errors=True)
        last = first + settings.metrics_port_span - 1
        log.error("metrics: no free port in %d..%d on %s; this worker runs without metrics "
                  "(set SLIMLINE_METRICS_PORT or SLIMLINE_METRICS_PORT_SPAN)", first, last, settings.metrics_host)
        return MetricsServer()
    _use_multiprocess_dir(directory)
    threading.Thread(target=server.serve_forever, name="slimline-metrics", daemon=True).start()
    port = server.server_address[1]
    log.info("metrics on http://%s:%d/metrics, readiness on /ready", settings.metrics_host, port)
    return MetricsServer(port=port, directory=directory, _server=server)
