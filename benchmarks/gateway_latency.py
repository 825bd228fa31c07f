"""Synchronous decisions over HTTP: ``POST /v1/transactions/decide`` from request to response, at a steady offered
load over many keep-alive connections, with the documents queue idle and busy, on PostgreSQL (and SQLite).

Run from the repository root: ``python -m benchmarks.gateway_latency`` (``--quick`` for a smoke run, ``--help``).
It needs nothing running: per database it starts a private Redis, a fresh database (PostgreSQL in a throwaway
cluster as ``tests/support/services.py`` does, skipped with a note if the server binaries are missing), producer keys
(signing on, as in production), one ``slimline worker --queues transactions`` (concurrency 2, the command's
default), one ``slimline worker --queues documents`` (concurrency 2, Slimline's default nice 10) and two ``slimline
serve`` processes (uvloop + httptools), each with its default settings but one: the second decides in the worker
(``SLIMLINE_GATEWAY__DECIDE_IN=worker``). An API key is created for the client.

Two paths, measured in turns in the same run, doing the same work (a decision on the account features, answered,
and stored by the transactions worker):
- ``gateway``: the default. The gateway enqueues the transaction and decides it itself (workers/gateway/decider.py);
  the worker stores its decision after the answer. After each measurement the stored decisions are compared with
  the answered ones (outcome and score) and the time until the last one was stored is printed.
- ``worker``: the gateway enqueues the transaction with a reply key and answers with the worker's decision once it
  is stored (the design before; it falls back to rules alone after the 150 ms deadline).

- Offered load: an open-loop HTTP/1.1 client (asyncio streams, ``--connections`` keep-alive connections opened and
  used once before the measurement) sends request i at start + i/rate whatever the responses do; latency is counted
  from that due time to the response (so a late send counts against the gateway, not for it). Transactions come from the
  seeded simulator (``workers/transactions/simulator.py``) in time order, each sent once. The first ``--settle``
  seconds are sent but not counted.
- Every response is checked: 200 with a decision; ``rules_only`` answers are counted apart, as a share and in the
  percentiles (their latency is that of the deadline).
- Documents busy: a flood of documents (``labelled_documents.jsonl`` texts) is enqueued before the measurement; the
  documents worker works through it meanwhile (the queue must still hold documents at the end: printed).
- Where the time goes: CPU ms per decision of each process (``/proc``), and the gateway's own time per request
  (``elapsed_ms`` in each response) beside the client's. The client shares the 2 cores with everything it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workers.runtime.threads import pin_native_threads

pin_native_threads(1)

import numpy as np  # noqa: E402
import uvloop  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks.documents_path import children_of, cpu_seconds, load_texts, wait_ready  # noqa: E402
from benchmarks.latency_runs import database_url, percentile, postgres_processes, run_per_database  # noqa: E402
from benchmarks.transactions_latency import TransactionStream  # noqa: E402
from schemas import Kind  # noqa: E402
from tasks.app import create_app  # noqa: E402
from tests.support.gateway import GatewayProcess, create_api_key, write_producer_keys  # noqa: E402
from tests.support.services import REPO_ROOT, WorkerProcess  # noqa: E402
from workers.client import enqueue  # noqa: E402
from workers.db.store import OutcomeStore  # noqa: E402
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
    path: str  # gateway: decided in the gateway, stored by the worker after the answer; worker: the stored decision
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
    answered: int = 0  # gateway path: decisions answered (the settling seconds included)
    stored: int = 0  # ... found stored by the worker
    stored_same: int = 0  # ... with the answered outcome and score
    stored_within_s: float = float("nan")  # ... the last one, this long after the last answer


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
            self.workers[queue] = worker.start(timeout=600)
            wait_ready(port, 600)  # every pool process has its models loaded (slow on a loaded machine)
        self.gateways = {}
        for path in ("gateway", "worker"):
            gateway = GatewayProcess(self.env | {"SLIMLINE_GATEWAY__DECIDE_IN": path} | gateway_env,
                                     root / f"{database}-gateway-{path}.log")
            stack.callback(gateway.stop)
            self.gateways[path] = gateway.start()
        self.store = OutcomeStore.from_url(database_url)
        stack.callback(self.store.engine.dispose)

    def processes(self) -> dict[str, list[int]]:
        tx, docs = (self.workers[name].process.pid for name in ("transactions", "documents"))  # type: ignore[union-attr]
        return {"gateway": [gateway.pid for gateway in self.gateways.values()], "transactions worker": [tx, *children_of(tx)],
                "documents worker": [docs, *children_of(docs)], "redis": [self.redis_pid],
                "postgres": postgres_processes(self.database_url),
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
    decision: tuple[str, float | None] | None = None  # outcome and score answered


class HttpConnection:
    """One keep-alive HTTP/1.1 connection, written on asyncio streams: the client shares the cores with what it
    measures, and a general client (httpx) cost ~10 ms of CPU per request here, more than the gateway itself."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self.host, self.port = host, port
        self.head = "".join(f"{name}: {value}\r\n" for name, value in headers.items()).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> HttpConnection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """Status and body; a connection the server closed meanwhile (keep-alive timeout) is opened again once."""
        for attempt in (1, 2):
            try:
                return await self._exchange(path, body)
            except (ConnectionError, asyncio.IncompleteReadError, ValueError):
                if attempt == 2:
                    raise
                await self.open()
        raise AssertionError("unreachable")

    async def _exchange(self, path: str, body: bytes) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: " + self.host.encode() + b"\r\n" + self.head
                          + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed by the server")
        status, length = int(status_line.split()[1]), 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


async def open_loop(items: list[dict[str, Any]], rate: float, warm_up: int,
                    send: Callable[[int, dict[str, Any], float], Awaitable[None]]) -> None:
    """The first ``warm_up`` items at once (not counted), then item i due at start + i/rate, sent then whatever the
    answers to earlier ones do; ``send`` gets the index, the item and its due time."""
    await asyncio.gather(*(send(index, item, time.perf_counter()) for index, item in enumerate(items[:warm_up])))
    tasks = []
    started = time.perf_counter()
    for index, item in enumerate(items[warm_up:], start=warm_up):
        due = started + (index - warm_up) / rate
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(send(index, item, due)))
    await asyncio.gather(*tasks)


async def _drive(url: str, key: str, items: list[dict[str, Any]], rate: float, connections: int,
                 warm_up: int) -> list[Sample]:
    """Open loop: item i is due at start + i/rate; its latency runs from then to the response (waiting for a
    free connection included)."""
    host, port = url.removeprefix("http://").split(":")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    pool: asyncio.Queue[HttpConnection] = asyncio.Queue()
    for connection in await asyncio.gather(*(HttpConnection(host, int(port), headers).open()
                                             for _ in range(connections))):
        pool.put_nowait(connection)
    samples: list[Sample | None] = [None] * len(items)

    async def send(index: int, item: dict[str, Any], due: float) -> None:
        connection = await pool.get()
        try:
            status, raw = await connection.post("/v1/transactions/decide", json.dumps(item).encode())
            body = json.loads(raw) if status == 200 else {}
            ok = status == 200 and body.get("outcome") in ("allow", "review", "block")
        except (OSError, ValueError, asyncio.IncompleteReadError):
            ok, body = False, {}
        finally:
            pool.put_nowait(connection)
        latency = (time.perf_counter() - due) * 1000
        samples[index] = Sample(latency if ok else float("inf"), ok, bool(body.get("rules_only")),
                                float(body.get("elapsed_ms", float("nan"))),
                                (body["outcome"], body.get("score")) if ok else None)

    # Warm-up, not counted: every connection used once, the gateway's and the worker's paths warm.
    await open_loop(items, rate, warm_up, send)
    for _ in range(connections):
        (await pool.get()).writer.close()  # type: ignore[union-attr]
    return [sample for sample in samples[warm_up:] if sample is not None]


def measure(deployment: Deployment, stream: TransactionStream, documents: str, args: argparse.Namespace,
            path: str) -> Measurement:
    rate = args.rate
    warm_up = args.connections
    items = stream.take(int(rate * args.seconds) + warm_up)
    processes = deployment.processes()
    cpu_before = {name: _cpu_by_pid(pids) for name, pids in processes.items()}
    started = time.perf_counter()
    samples = uvloop.run(_drive(deployment.gateways[path].url, deployment.key, items, rate,
                               args.connections, warm_up))
    span = time.perf_counter() - started
    cpu = {}
    for name, pids in processes.items():
        before = cpu_before[name]
        used = [seconds - before[pid] for pid, seconds in _cpu_by_pid(pids).items() if pid in before]
        cpu[name] = sum(used) * 1000 / len(items)
    counted = samples[int(rate * args.settle):]
    latencies = [sample.latency_ms for sample in counted]
    gateway_ms = [sample.gateway_ms for sample in counted if sample.ok]
    return Measurement(
        database=deployment.database, documents=documents, path=path, offered_per_second=rate,
        connections=args.connections,
        sent=len(items), counted=len(counted), failed=sum(not sample.ok for sample in counted),
        rules_only=sum(sample.rules_only for sample in counted), p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95), p99_ms=percentile(latencies, 99), max_ms=max(latencies),
        gateway_p50_ms=percentile(gateway_ms, 50) if gateway_ms else float("nan"),
        gateway_p99_ms=percentile(gateway_ms, 99) if gateway_ms else float("nan"),
        achieved_per_second=len(samples) / span,
        documents_left=deployment.documents_left() if documents == "busy" else None,
        load_average=os.getloadavg()[0], cpu_ms_per_request=cpu,
        **(stored_as_answered(deployment, items[warm_up:], samples) if path == "gateway" else {}))


def _cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each process still running (a database backend may end meanwhile: it is left out)."""
    seconds = {}
    for pid in pids:
        try:
            seconds[pid] = cpu_seconds(pid)
        except FileNotFoundError:
            pass
    return seconds


def stored_as_answered(deployment: Deployment, items: list[dict[str, Any]], samples: list[Sample]) -> dict[str, Any]:
    """Wait (up to a minute) until the worker has stored every answered decision; count those stored with the
    answered outcome and score."""
    answered = {item["id"]: sample.decision for item, sample in zip(items, samples, strict=True) if sample.decision}
    last_answer, stored = time.perf_counter(), {}
    while len(stored) < len(answered) and time.perf_counter() - last_answer < 60:
        missing = [item_id for item_id in answered if item_id not in stored]
        for row in deployment.store.current_results(Kind.transactions, item_ids=missing):
            stored[row["item_id"]] = (row["result"]["action"], row["result"]["score"])
        if len(stored) < len(answered):
            time.sleep(0.2)
    same = sum(stored.get(key) == value for key, value in answered.items())
    return {"answered": len(answered), "stored": len(stored), "stored_same": same,
            "stored_within_s": time.perf_counter() - last_answer}




def run_database(kind: str, args: argparse.Namespace, report: Report) -> None:
    stream = TransactionStream(accounts=args.accounts, days=30)
    with tempfile.TemporaryDirectory(prefix=f"slimline-gwlat-{kind}-") as tmp, \
            database_url(kind, Path(tmp)) as url, ExitStack() as stack:
        progress.print(f"{kind}: starting Redis, the database, two workers and two gateways…")
        deployment = Deployment(Path(tmp), kind, url, stack, args.gateway_env)
        for state in ("idle", "busy"):
            if state == "busy":
                deployment.flood_documents(args.flood, "flood")
                time.sleep(2.0)  # the documents worker has taken its first batches
            for repeat in range(args.repeats):
                for path in ("gateway", "worker"):
                    report.latency.append(measure(deployment, stream, state, args, path))
                    progress.print(f"{kind}: documents {state}, {path} ({repeat + 1}/{args.repeats}): "
                                   f"{_short(report.latency[-1])}")
                    if state == "busy" and not report.latency[-1].documents_left:
                        report.notes.append(f"{kind}: the documents queue ran empty before the end (raise --flood)")
        if stream.wraps:
            report.notes.append(f"{kind}: the simulated stream was reused under new ids (raise --accounts)")


def _short(m: Measurement) -> str:
    return (f"p50 {m.p50_ms:.1f} ms, p95 {m.p95_ms:.1f} ms, p99 {m.p99_ms:.1f} ms (gateway p99 {m.gateway_p99_ms:.1f}),"
            f" failed {m.failed}, rules-only {m.rules_only}/{m.counted}, achieved {m.achieved_per_second:.0f}/s, "
            f"load {m.load_average:.2f}"
            + (f", stored as answered {m.stored_same}/{m.answered} (within {m.stored_within_s:.1f} s of the last answer)"
               if m.path == "gateway" else ""))


def print_report(report: Report) -> None:
    config = report.config
    out.print(f"[bold]POST /v1/transactions/decide, request → response over HTTP[/], {config['rate']:.0f} requests/s "
              f"offered over {config['connections']} connections, {config['seconds']} s per measurement (first "
              f"{config['settle']} s not counted), {config['repeats']} repeat(s), {os.cpu_count()} CPU cores shared "
              f"with other work", soft_wrap=True)
    table = Table(caption=f"ms from the request's due time to its response; aim: p99 ≤ {P99_AIM_MS:.0f} ms at 200/s with "
                          f"documents busy, PostgreSQL · ÷ idle: against the median idle p99, same database")
    for column in ("database", "documents", "path", "p50", "p95", "p99", "max", "p99 ÷ idle", "gateway p50/p99",
                   "rules-only", "failed", "stored as answered", "achieved/s", "docs left", "load"):
        table.add_column(column, justify="left" if column in ("database", "documents", "path") else "right")
    idle = {(m.database, m.path): float(np.median([o.p99_ms for o in report.latency if o.database == m.database and
                                                   o.path == m.path and o.documents == "idle"]))
            for m in report.latency}
    for m in report.latency:
        table.add_row(m.database, m.documents, m.path, f"{m.p50_ms:.1f}", f"{m.p95_ms:.1f}", f"{m.p99_ms:.1f}",
                      f"{m.max_ms:.0f}", f"{m.p99_ms / idle[(m.database, m.path)]:.2f}",
                      f"{m.gateway_p50_ms:.1f}/{m.gateway_p99_ms:.1f}", f"{m.rules_only}/{m.counted}",
                      str(m.failed), f"{m.stored_same}/{m.answered}" if m.path == "gateway" else "(before)",
                      f"{m.achieved_per_second:.0f}",
                      "" if m.documents_left is None else str(m.documents_left), f"{m.load_average:.2f}")
    out.print(table)
    split = Table(title="CPU ms per request, by process")
    split.add_column("measurement")
    names = list(report.latency[0].cpu_ms_per_request) if report.latency else []
    for name in names:
        split.add_column(name, justify="right")
    for m in report.latency:
        split.add_row(f"{m.database} {m.documents} {m.path}", *(f"{m.cpu_ms_per_request[name]:.2f}" for name in names))
    out.print(split)
    for database in sorted({m.database for m in report.latency}):
        busy = [m for m in report.latency if m.database == database and m.documents == "busy"]
        p99 = {path: float(np.median([m.p99_ms for m in busy if m.path == path]) if busy else np.nan)
               for path in ("gateway", "worker")}
        answered = [m for m in report.latency if m.database == database and m.path == "gateway"]
        if busy:
            verdict = "meets" if p99["gateway"] <= P99_AIM_MS else "misses"
            out.print(f"{database}, documents busy, {config['rate']:.0f}/s: median p99 {p99['gateway']:.1f} ms deciding "
                      f"in the gateway ({verdict} the aim of {P99_AIM_MS:.0f} ms), {p99['worker']:.1f} ms deciding in "
                      f"the worker (÷ {p99['worker'] / p99['gateway']:.1f}); stored as answered "
                      f"{sum(m.stored_same for m in answered)}/{sum(m.answered for m in answered)}")
    for note in report.notes:
        out.print(f"[yellow]note[/]: {note}")




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
    run_per_database(args, Report(config={}), run_database, print_report, out)


if __name__ == "__main__":
    main()
