"""Synchronous decisions over HTTP: ``POST /v1/transactions/decide`` from request to response, at a steady offered
load over many keep-alive connections, with the documents queue idle and busy, on PostgreSQL (and SQLite).

Run from the repository root: ``python -m benchmarks.gateway_latency`` (``--quick`` for a smoke run, ``--help``).
It needs nothing running: per database it starts a private Redis, a fresh database (PostgreSQL in a throwaway
cluster as ``tests/support/services.py`` does, skipped with a note if the server binaries are missing), producer keys
(signing on, as in production), one ``slimline worker --queues transactions`` (concurrency 2, the command's
default), one ``slimline worker --queues documents`` (concurrency 2, Slimline's default nice 10) and ``slimline
serve`` (one process, uvloop + httptools), each with its default settings; an API key is created for the client.

- Offered load: an open-loop HTTP client (httpx, asyncio, ``--connections`` keep-alive connections opened before
  the measurement) sends request i at start + i/rate whatever the responses do; latency is counted from that due
  time to the response (so a late send counts against the gateway, not for it). Transactions come from the
  seeded simulator (``workers/transactions/simulator.py``) in time order, each sent once. The first ``--settle``
  seconds are sent but not counted.
- Every response is checked: 200 with a decision; ``rules_only`` responses (the worker's decision did not come
  within the gateway's deadline, 150 ms by default) are counted apart, as a share and in the percentiles (their
  latency is that of the deadline).
- Documents busy: a flood of documents (``labelled_documents.jsonl`` texts) is enqueued before the measurement; the
  documents worker works through it meanwhile (the queue must still hold documents at the end: printed).
- Where the time goes: CPU ms per decision of each process (``/proc``), and the gateway's own time per request
  (``elapsed_ms`` in each response) beside the client's.

Baseline measured in the same run: the documents-idle figures of the same database and load. The client shares the
2 cores with everything it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workers.runtime.threads import pin_native_threads

pin_native_threads(1)

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import uvloop  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.documents_path import children_of, cpu_seconds, load_texts, wait_ready  # noqa: E402
from benchmarks.transactions_latency import TransactionStream, percentile  # noqa: E402
from schemas import Kind  # noqa: E402
from tasks.app import create_app  # noqa: E402
from tests.support.gateway import GatewayProcess, create_api_key, write_producer_keys  # noqa: E402
from tests.support.services import REPO_ROOT, PostgresCluster, WorkerProcess, postgres_binaries_missing  # noqa: E402
from workers.client import enqueue  # noqa: E402
from workers.db.engine import migrate  # noqa: E402
from workers.runtime.queues import inspection_client  # noqa: E402
from workers.runtime.redis_server import RedisServer, free_port  # noqa: E402
from workers.settings import Settings  # noqa: E402

P99_AIM_MS = 50.0  # at 200 requests/s with documents busy, PostgreSQL
PRODUCER = "bench-gateway"

out = Console(width=None if sys.stdout.isatty() else 200)
progress = Console(stderr=True, width=200)


@dataclass
class Measurement:
    database: str
    documents: str  # idle | busy
    offered_per_second: float
    connections: int
    sent: int
    counted: int
    failed: int  # not a 200 with a decision (counted as infinitely late)
    rules_only: int  # decided by the gateway's fallback after its deadline
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    gateway_p50_ms: float  # the gateway's own request-to-response time (elapsed_ms)
    gateway_p99_ms: float
    achieved_per_second: float
    documents_left: int | None = None
    load_average: float = 0.0
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)


@dataclass
class Report:
    config: dict[str, Any]
    latency: list[Measurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Deployment:
    """Redis, a database, a transactions worker, a documents worker and the gateway; an API key for the client."""

    def __init__(self, root: Path, database: str, database_url: str, stack: ExitStack,
                 gateway_env: dict[str, str]) -> None:
        self.root, self.database, self.database_url = root, database, database_url
        self.redis = RedisServer(root / "redis").start()
        stack.callback(self.redis.stop)
        migrate(database_url)
        keys = write_producer_keys(root / "producer-keys.json", {PRODUCER: ["transactions", "documents"]})
        self.env = {**os.environ, "SLIMLINE_REDIS_URL": self.redis.url, "SLIMLINE_DATABASE_URL": database_url,
                    "SLIMLINE_PRODUCER_KEYS_FILE": str(keys), "SLIMLINE_METRICS_PORT": "0",
                    "SLIMLINE_DOCUMENTS__REVIEW_SCORE": "0", "SLIMLINE_DOCUMENTS__REVIEW_MARGIN": "0",
                    "SLIMLINE_PRODUCER_ID": PRODUCER, "PYTHONPATH": str(REPO_ROOT)}
        self.settings = Settings(redis_url=self.redis.url, database_url=database_url, producer_keys_file=keys,
                                 producer_id=PRODUCER)
        self.app = create_app(self.settings)
        self.broker = inspection_client(self.settings)
        self.key = create_api_key(database_url, PRODUCER, [Kind.transactions], rate_limit="100000/second")
        self.redis_pid = self.redis.process.pid if self.redis.process else 0
        self.workers = {}
        for queue, nice in (("transactions", 0), ("documents", 10)):
            port = free_port()
            worker = WorkerProcess(self.env | {"SLIMLINE_METRICS_PORT": str(port), "SLIMLINE_WORKER_NICE": str(nice)},
                                   root / f"{database}-{queue}.log", queues=queue, concurrency=2)
            stack.callback(worker.stop)
            self.workers[queue] = worker.start(timeout=300)
            wait_ready(port, 300)  # every pool process has its models loaded
        self.gateway = GatewayProcess(self.env | gateway_env, root / f"{database}-gateway.log")
        stack.callback(self.gateway.stop)
        self.gateway.start()

    def processes(self) -> dict[str, list[int]]:
        tx, docs = (self.workers[name].process.pid for name in ("transactions", "documents"))  # type: ignore[union-attr]
        return {"gateway": [self.gateway.pid], "transactions worker": [tx, *children_of(tx)],
                "documents worker": [docs, *children_of(docs)], "redis": [self.redis_pid],
                "client (this process)": [os.getpid()]}

    def flood_documents(self, count: int, prefix: str) -> None:
        texts = load_texts(count)
        items = [{"id": f"{prefix}-{index}", "text": text} for index, text in enumerate(texts)]
        report = enqueue(Kind.documents, items, app=self.app, settings=self.settings)
        if report.accepted != count:
            raise RuntimeError(f"the producer rejected {count - report.accepted} documents")

    def documents_left(self) -> int:
        return int(self.broker.llen("documents"))


@dataclass
class Sample:
    latency_ms: float
    ok: bool
    rules_only: bool
    gateway_ms: float


async def _drive(url: str, key: str, items: list[dict[str, Any]], rate: float, connections: int,
                 warm_up: int) -> list[Sample]:
    """Open loop: item i is due at start + i/rate; its latency runs from then to the response."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, limits=limits, headers=headers, timeout=10.0) as client:
        # Open every connection before the clock starts (and warm the gateway's paths).
        await asyncio.gather(*(client.get("/health") for _ in range(connections)))
        await asyncio.gather(*(client.post("/v1/transactions/decide", content=json.dumps(item))
                               for item in items[:warm_up]))
        samples: list[Sample | None] = [None] * (len(items) - warm_up)

        async def send(index: int, item: dict[str, Any], due: float) -> None:
            try:
                response = await client.post("/v1/transactions/decide", content=json.dumps(item))
                body = response.json() if response.status_code == 200 else {}
                ok = response.status_code == 200 and body.get("outcome") in ("allow", "review", "block")
            except httpx.HTTPError:
                ok, body = False, {}
            latency = (time.perf_counter() - due) * 1000
            samples[index] = Sample(latency if ok else float("inf"), ok, bool(body.get("rules_only")),
                                    float(body.get("elapsed_ms", float("nan"))))

        tasks = []
        started = time.perf_counter()
        for index, item in enumerate(items[warm_up:]):
            due = started + index / rate
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(send(index, item, due)))
        await asyncio.gather(*tasks)
    return [sample for sample in samples if sample is not None]


def measure(deployment: Deployment, stream: TransactionStream, documents: str, args: argparse.Namespace) -> Measurement:
    rate = args.rate
    warm_up = min(args.connections, 50)
    items = stream.take(int(rate * args.seconds) + warm_up)
    processes = deployment.processes()
    cpu_before = {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in processes.items()}
    started = time.perf_counter()
    samples = uvloop.run(_drive(deployment.gateway.url, deployment.key, items, rate, args.connections, warm_up))
    span = time.perf_counter() - started
    cpu = {name: (sum(cpu_seconds(pid) for pid in pids) - cpu_before[name]) * 1000 / len(items)
           for name, pids in processes.items()}
    counted = samples[int(rate * args.settle):]
    latencies = [sample.latency_ms for sample in counted]
    gateway_ms = [sample.gateway_ms for sample in counted if sample.ok]
    return Measurement(
        database=deployment.database, documents=documents, offered_per_second=rate, connections=args.connections,
        sent=len(items), counted=len(counted), failed=sum(not sample.ok for sample in counted),
        rules_only=sum(sample.rules_only for sample in counted), p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95), p99_ms=percentile(latencies, 99), max_ms=max(latencies),
        gateway_p50_ms=percentile(gateway_ms, 50) if gateway_ms else float("nan"),
        gateway_p99_ms=percentile(gateway_ms, 99) if gateway_ms else float("nan"),
        achieved_per_second=len(samples) / span,
        documents_left=deployment.documents_left() if documents == "busy" else None,
        load_average=os.getloadavg()[0], cpu_ms_per_request=cpu)


@contextmanager
def database_url(kind: str, root: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{root}/bench.db"
        return
    cluster = PostgresCluster().init()
    try:
        yield cluster.create_database("slimline_bench")
    finally:
        cluster.destroy()


def run_database(kind: str, args: argparse.Namespace, report: Report) -> None:
    stream = TransactionStream(accounts=args.accounts, days=30)
    with tempfile.TemporaryDirectory(prefix=f"slimline-gwlat-{kind}-") as tmp, \
            database_url(kind, Path(tmp)) as url, ExitStack() as stack:
        progress.print(f"{kind}: starting Redis, the database, two workers and the gateway…")
        deployment = Deployment(Path(tmp), kind, url, stack, args.gateway_env)
        for repeat in range(args.repeats):
            report.latency.append(measure(deployment, stream, "idle", args))
            progress.print(f"{kind}: documents idle ({repeat + 1}/{args.repeats}): {_short(report.latency[-1])}")
        deployment.flood_documents(args.flood, "flood")
        time.sleep(2.0)  # the documents worker has taken its first batches
        for repeat in range(args.repeats):
            report.latency.append(measure(deployment, stream, "busy", args))
            progress.print(f"{kind}: documents busy ({repeat + 1}/{args.repeats}): {_short(report.latency[-1])}")
            if not report.latency[-1].documents_left:
                report.notes.append(f"{kind}: the documents queue ran empty before the end (raise --flood)")
        if stream.wraps:
            report.notes.append(f"{kind}: the simulated stream was reused under new ids (raise --accounts)")


def _short(m: Measurement) -> str:
    return (f"p50 {m.p50_ms:.1f} ms, p95 {m.p95_ms:.1f} ms, p99 {m.p99_ms:.1f} ms (gateway p99 {m.gateway_p99_ms:.1f}),"
            f" failed {m.failed}, rules-only {m.rules_only}/{m.counted}, achieved {m.achieved_per_second:.0f}/s, "
            f"load {m.load_average:.2f}")


def print_report(report: Report) -> None:
    config = report.config
    out.print(f"[bold]POST /v1/transactions/decide, request → response over HTTP[/], {config['rate']:.0f} requests/s "
              f"offered over {config['connections']} connections, {config['seconds']} s per measurement (first "
              f"{config['settle']} s not counted), {config['repeats']} repeat(s), {os.cpu_count()} CPU cores shared "
              f"with other work", soft_wrap=True)
    table = Table(caption=f"ms from the request's due time to its response; aim: p99 ≤ {P99_AIM_MS:.0f} ms at 200/s with "
                          f"documents busy, PostgreSQL · ÷ idle: against the median idle p99, same database")
    for column in ("database", "documents", "p50", "p95", "p99", "max", "p99 ÷ idle", "gateway p50/p99",
                   "rules-only", "failed", "achieved/s", "docs left", "load"):
        table.add_column(column, justify="left" if column in ("database", "documents") else "right")
    idle = {database: float(np.median([m.p99_ms for m in report.latency if m.database == database and
                                       m.documents == "idle"])) for database in {m.database for m in report.latency}}
    for m in report.latency:
        table.add_row(m.database, m.documents, f"{m.p50_ms:.1f}", f"{m.p95_ms:.1f}", f"{m.p99_ms:.1f}",
                      f"{m.max_ms:.0f}", f"{m.p99_ms / idle[m.database]:.2f}",
                      f"{m.gateway_p50_ms:.1f}/{m.gateway_p99_ms:.1f}", f"{m.rules_only}/{m.counted}",
                      str(m.failed), f"{m.achieved_per_second:.0f}",
                      "" if m.documents_left is None else str(m.documents_left), f"{m.load_average:.2f}")
    out.print(table)
    split = Table(title="CPU ms per request, by process")
    split.add_column("measurement")
    names = list(report.latency[0].cpu_ms_per_request) if report.latency else []
    for name in names:
        split.add_column(name, justify="right")
    for m in report.latency:
        split.add_row(f"{m.database} {m.documents}", *(f"{m.cpu_ms_per_request[name]:.2f}" for name in names))
    out.print(split)
    for database in sorted({m.database for m in report.latency}):
        busy = [m.p99_ms for m in report.latency if m.database == database and m.documents == "busy"]
        if busy:
            median = float(np.median(busy))
            verdict = "meets" if median <= P99_AIM_MS else "misses"
            out.print(f"{database}, documents busy, {config['rate']:.0f}/s: median p99 {median:.1f} ms over "
                      f"{len(busy)} run(s) ({verdict} the aim of {P99_AIM_MS:.0f} ms)")
    for note in report.notes:
        out.print(f"[yellow]note[/]: {note}")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gateway_latency", description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="postgres", help="comma-separated: postgres, sqlite (default postgres)")
    parser.add_argument("--rate", type=float, default=200.0, help="offered requests/s (default 200)")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections (default 64)")
    parser.add_argument("--seconds", type=float, default=15.0, help="load per measurement (default 15)")
    parser.add_argument("--settle", type=float, default=2.0, help="first seconds not counted (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per documents state (default 3)")
    parser.add_argument("--flood", type=int, default=6000, help="documents enqueued for the busy state (default 6000)")
    parser.add_argument("--accounts", type=int, default=1000, help="simulated accounts (default 1000)")
    parser.add_argument("--gateway-setting", action="append", default=[], metavar="SLIMLINE_X=VALUE",
                        help="an environment setting for the gateway only (e.g. SLIMLINE_GATEWAY__DEADLINE_MS=100)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 s per measurement, one repeat")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here as JSON")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.settle, args.repeats, args.flood, args.accounts = 4.0, 1.0, 1, 1500, 200
    args.gateway_env = dict(setting.split("=", 1) for setting in args.gateway_setting)
    args.databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    return args


def main() -> None:
    args = parse_args()
    report = Report(config={key: value for key, value in vars(args).items() if key != "json"} | {
        "load_average_at_start": os.getloadavg()})
    started = time.perf_counter()
    for kind in args.databases:
        if kind == "postgres" and (missing := postgres_binaries_missing()):
            report.notes.append(f"postgres skipped: {missing}")
            continue
        run_database(kind, args, report)
    report.config["minutes"] = (time.perf_counter() - started) / 60
    report.config["load_average_at_end"] = os.getloadavg()
    print_report(report)
    out.print(f"load average (1, 5, 15 min) at start {report.config['load_average_at_start']}, at end "
              f"{report.config['load_average_at_end']}; {report.config['minutes']:.1f} minutes", soft_wrap=True)
    if args.json:
        args.json.write_text(json.dumps(_finite(asdict(report)), indent=2, default=str) + "\n")
        out.print(f"JSON written to {args.json}")


if __name__ == "__main__":
    main()
