"""Urgent documents through their own lane while a bulk backlog waits: ``POST /v1/documents?priority=urgent&wait=true``
from request to response, and the bulk documents' throughput with the lane and without it, measured in one run.

Run from the repository root: ``python -m benchmarks.urgent_documents`` (``--quick`` for a smoke run, ``--help``). It
needs nothing running: it starts a private Redis, a fresh SQLite database (``--database postgres``: a throwaway
PostgreSQL cluster), producer keys (signing on), the bulk ``slimline worker --queues documents`` (concurrency 2,
Slimline's default nice 10), the urgent lane's worker (``SLIMLINE_WORKER_LANE=urgent``, concurrency 1, nice 0,
``SLIMLINE_DOCUMENTS__MAX_WAIT_SECONDS=0.005``) and ``slimline serve``.

- The backlog: ``--backlog`` bulk documents (``labelled_documents.jsonl`` texts, 10,000 by default) are enqueued
  before each window and topped up so that at least that many wait throughout (checked and printed).
- With the lane: for ``--seconds``, an open-loop HTTP client sends a short document (a text of at most 300
  characters from the same file) every 1/``--urgent-rate`` s with ``priority=urgent&wait=true``; latency runs from
  the request's due time to the response carrying the stored result.
- Without the lane (the baseline, same run): the lane's worker is stopped (SIGSTOP: it uses no CPU) and nothing
  urgent is sent, for the same time.
- Bulk throughput: bulk results committed per second within each window (``results.processed_at``). Windows
  alternate (without, with, without, with…); medians of ``--repeats`` windows each and their ratio are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from workers.runtime.threads import pin_native_threads

pin_native_threads(1)

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import uvloop  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from benchmarks.documents_path import DOCUMENTS_FILE, load_texts, wait_ready  # noqa: E402
from benchmarks.latency_runs import database_url, percentile  # noqa: E402
from schemas import Kind  # noqa: E402
from tasks.app import create_app  # noqa: E402
from tests.support.gateway import GatewayProcess, create_api_key, write_producer_keys  # noqa: E402
from tests.support.services import REPO_ROOT, WorkerProcess, postgres_binaries_missing  # noqa: E402
from workers.client import enqueue  # noqa: E402
from workers.db.engine import migrate  # noqa: E402
from workers.db.models import Result  # noqa: E402
from workers.db.store import OutcomeStore  # noqa: E402
from workers.runtime.queues import inspection_client  # noqa: E402
from workers.runtime.redis_server import RedisServer, free_port  # noqa: E402
from workers.settings import Settings  # noqa: E402

P95_AIM_MS = 150.0
THROUGHPUT_AIM = 0.9  # bulk documents/s with the lane ÷ without
PRODUCER = "bench-urgent"

out = Console(width=None if sys.stdout.isatty() else 200)
progress = Console(stderr=True, width=200)


@dataclass
class Window:
    lane: bool
    seconds: float
    bulk_stored: int
    bulk_per_second: float
    backlog_min: int  # the smallest bulk queue depth seen during the window
    urgent_sent: int = 0
    urgent_stored: int = 0  # 200 with the stored result within the gateway's wait
    latencies_ms: list[float] = field(default_factory=list)
    load_average: float = 0.0

    def summary(self) -> dict[str, float]:
        values = self.latencies_ms or [float("nan")]
        return {"p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99),
                "max": max(values)}


def short_texts(count: int, limit: int = 300) -> list[str]:
    texts = [json.loads(line)["text"] for line in DOCUMENTS_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    short = [text for text in texts if len(text) <= limit]
    return [short[index % len(short)] for index in range(count)]


class Deployment:
    def __init__(self, root: Path, url: str, stack: ExitStack) -> None:
        self.redis = RedisServer(root / "redis").start()
        stack.callback(self.redis.stop)
        migrate(url)
        keys = write_producer_keys(root / "producer-keys.json", {PRODUCER: ["documents"]})
        self.settings = Settings(redis_url=self.redis.url, database_url=url, producer_keys_file=keys,
                                 producer_id=PRODUCER)
        self.env = {**os.environ, "SLIMLINE_REDIS_URL": self.redis.url, "SLIMLINE_DATABASE_URL": url,
                    "SLIMLINE_PRODUCER_KEYS_FILE": str(keys), "SLIMLINE_PRODUCER_ID": PRODUCER,
                    "SLIMLINE_METRICS_PORT": "0", "SLIMLINE_DOCUMENTS__REVIEW_SCORE": "0",
                    "SLIMLINE_DOCUMENTS__REVIEW_MARGIN": "0", "PYTHONPATH": str(REPO_ROOT)}
        self.app = create_app(self.settings)
        self.store = OutcomeStore.from_url(url)
        stack.callback(self.store.engine.dispose)
        self.broker = inspection_client(self.settings)
        self.key = create_api_key(url, PRODUCER, [Kind.documents], rate_limit="100000/second")
        self.workers = {}
        for name, extra, concurrency in (
                ("bulk", {"SLIMLINE_WORKER_NICE": "10"}, 2),
                ("urgent", {"SLIMLINE_WORKER_LANE": "urgent"}, 1)):  # = slimline worker --lane urgent
            port = free_port()
            worker = WorkerProcess(self.env | extra | {"SLIMLINE_METRICS_PORT": str(port)}, root / f"{name}.log",
                                   queues="documents", concurrency=concurrency)
            stack.callback(worker.stop)
            self.workers[name] = worker.start(timeout=600)
            wait_ready(port, 600)
        self.gateway = GatewayProcess(self.env | {"SLIMLINE_GATEWAY__WAIT_MS": "10000"}, root / "gateway.log")
        stack.callback(self.gateway.stop)
        self.gateway.start()
        self.sent = 0

    def top_up(self, backlog: int) -> None:
        missing = backlog - int(self.broker.llen("documents"))
        if missing > 0:
            texts = load_texts(missing)
            items = [{"id": f"bulk-{self.sent + index}", "text": text} for index, text in enumerate(texts)]
            self.sent += missing
            report = enqueue(Kind.documents, items, app=self.app, settings=self.settings)
            if report.accepted != missing:
                raise RuntimeError(f"the producer rejected {missing - report.accepted} documents")

    def pause_lane(self, paused: bool) -> None:
        process = self.workers["urgent"].process
        assert process is not None
        os.killpg(process.pid, signal.SIGSTOP if paused else signal.SIGCONT)

    def bulk_stored_between(self, start: datetime, end: datetime) -> int:
        with self.store.sessions() as session:
            return session.scalar(select(func.count()).select_from(Result).where(
                Result.kind == "documents", Result.item_id.like("bulk-%"), Result.processed_at >= start,
                Result.processed_at < end)) or 0


async def _urgent_load(url: str, key: str, texts: list[str], rate: float, seconds: float, prefix: str,
                       backlog: list[int], broker: Any) -> tuple[list[float], int]:
    headers = {"Authorization": f"Bearer {key}"}
    latencies: list[float] = []
    stored = 0
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30.0) as client:
        await client.get("/health")

        async def send(index: int, due: float) -> None:
            nonlocal stored
            response = await client.post("/v1/documents", params={"priority": "urgent", "wait": "true"},
                                         json={"id": f"{prefix}-{index}", "text": texts[index % len(texts)]})
            elapsed = (time.perf_counter() - due) * 1000
            ok = response.status_code == 200 and response.json()["items"][0]["status"] == "stored"
            latencies.append(elapsed if ok else float("inf"))
            stored += ok

        tasks = []
        started = time.perf_counter()
        for index in range(int(rate * seconds)):
            due = started + index / rate
            if (wait := due - time.perf_counter()) > 0:
                await asyncio.sleep(wait)
            tasks.append(asyncio.create_task(send(index, due)))
            if index % max(int(rate), 1) == 0:
                backlog.append(int(broker.llen("documents")))
        await asyncio.gather(*tasks)
    return latencies, stored


def window(deployment: Deployment, lane: bool, args: argparse.Namespace, number: int, texts: list[str]) -> Window:
    deployment.top_up(args.backlog + int(args.seconds * 200))  # stays above the backlog through the window
    deployment.pause_lane(not lane)
    backlog: list[int] = []
    start = datetime.now(timezone.utc)
    if lane:
        latencies, stored = uvloop.run(_urgent_load(deployment.gateway.url, deployment.key, texts, args.urgent_rate,
                                                    args.seconds, f"urgent-{number}", backlog, deployment.broker))
    else:
        latencies, stored = [], 0
        until = time.monotonic() + args.seconds
        while time.monotonic() < until:
            backlog.append(int(deployment.broker.llen("documents")))
            time.sleep(1.0)
    end = datetime.now(timezone.utc)
    backlog.append(int(deployment.broker.llen("documents")))
    seconds = (end - start).total_seconds()
    count = deployment.bulk_stored_between(start, end)
    return Window(lane=lane, seconds=seconds, bulk_stored=count, bulk_per_second=count / seconds,
                  backlog_min=min(backlog), urgent_sent=len(latencies), urgent_stored=stored,
                  latencies_ms=latencies, load_average=os.getloadavg()[0])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.urgent_documents", description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="sqlite", choices=("sqlite", "postgres"))
    parser.add_argument("--backlog", type=int, default=10_000, help="bulk documents waiting (default 10000)")
    parser.add_argument("--urgent-rate", type=float, default=2.0, help="urgent documents per second (default 2)")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="length of each window (default 60: bulk results are committed a batch at a time)")
    parser.add_argument("--repeats", type=int, default=3, help="windows with and without the lane (default 3 each)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 30 s windows, one of each")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here as JSON")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.repeats = 30.0, 1
    return args


def print_report(windows: list[Window], args: argparse.Namespace, notes: list[str]) -> None:
    out.print(f"[bold]Urgent documents through their lane while ≥ {args.backlog} bulk documents wait[/], "
              f"{args.urgent_rate:g} urgent/s, {args.seconds:.0f} s windows, {args.database}, {os.cpu_count()} CPU "
              f"cores shared with other work", soft_wrap=True)
    table = Table(caption=f"urgent: ms from the request's due time to the response with its stored result; aim p95 ≤ "
                          f"{P95_AIM_MS:.0f} ms · bulk: documents stored per second; aim with ÷ without ≥ {THROUGHPUT_AIM}")
    for column in ("window", "lane", "bulk/s", "backlog min", "urgent stored", "p50", "p95", "p99", "max", "load"):
        table.add_column(column, justify="left" if column in ("window", "lane") else "right")
    for number, w in enumerate(windows, start=1):
        s = w.summary()
        table.add_row(str(number), "with" if w.lane else "without", f"{w.bulk_per_second:.1f}", str(w.backlog_min),
                      f"{w.urgent_stored}/{w.urgent_sent}" if w.lane else "", *(
                          (f"{s['p50']:.0f}", f"{s['p95']:.0f}", f"{s['p99']:.0f}", f"{s['max']:.0f}") if w.lane
                          else ("", "", "", "")), f"{w.load_average:.2f}")
    out.print(table)
    with_lane = [w for w in windows if w.lane]
    without = [w for w in windows if not w.lane]
    latencies = [value for w in with_lane for value in w.latencies_ms]
    p95s = [w.summary()["p95"] for w in with_lane]
    baseline = float(np.median([w.bulk_per_second for w in without]))
    ratio = float(np.median([w.bulk_per_second for w in with_lane])) / baseline if baseline else float("nan")
    out.print(f"urgent: p95 {percentile(latencies, 95):.0f} ms over all {len(latencies)} requests, median of the "
              f"windows' p95 {np.median(p95s):.0f} ms ({'meets' if np.median(p95s) <= P95_AIM_MS else 'misses'} the "
              f"aim of {P95_AIM_MS:.0f} ms)")
    out.print(f"bulk: {np.median([w.bulk_per_second for w in with_lane]):.1f} documents/s with the lane, "
              f"{np.median([w.bulk_per_second for w in without]):.1f} without: ratio {ratio:.2f} "
              f"({'meets' if ratio >= THROUGHPUT_AIM else 'misses'} the aim of {THROUGHPUT_AIM})")
    if baseline:
        out.print(f"for scale: a document sent to the bulk queue behind {args.backlog} would wait about "
                  f"{args.backlog / baseline / 60:.0f} minutes at {baseline:.1f} documents/s")
    for note in notes:
        out.print(f"[yellow]note[/]: {note}")


def main() -> None:
    args = parse_args()
    load_at_start = os.getloadavg()
    started = time.perf_counter()
    notes: list[str] = []
    if args.database == "postgres" and (missing := postgres_binaries_missing()):
        raise SystemExit(f"postgres: {missing}")
    windows: list[Window] = []
    texts = short_texts(64)
    with tempfile.TemporaryDirectory(prefix="slimline-urgent-") as tmp, database_url(args.database, Path(tmp)) as url, \
            ExitStack() as stack:
        progress.print("starting Redis, the database, the bulk and urgent workers and the gateway…")
        deployment = Deployment(Path(tmp), url, stack)
        deployment.top_up(args.backlog)
        uvloop.run(_urgent_load(deployment.gateway.url, deployment.key, texts, 4.0, 2.0, "warm", [],
                                deployment.broker))  # untimed: connections and code paths warm
        for repeat in range(args.repeats):
            for lane in (False, True):
                windows.append(window(deployment, lane, args, len(windows), texts))
                w = windows[-1]
                progress.print(f"window {len(windows)} ({'with' if lane else 'without'} the lane): bulk "
                               f"{w.bulk_per_second:.1f}/s, backlog ≥ {w.backlog_min}"
                               + (f", urgent p95 {w.summary()['p95']:.0f} ms ({w.urgent_stored}/{w.urgent_sent} stored)"
                                  if lane else ""))
        deployment.pause_lane(False)
    if min(w.backlog_min for w in windows) < args.backlog:
        notes.append("the backlog fell below --backlog during a window")
    print_report(windows, args, notes)
    out.print(f"load average (1, 5, 15 min) at start {load_at_start}, at end {os.getloadavg()}; "
              f"{(time.perf_counter() - started) / 60:.1f} minutes", soft_wrap=True)
    if args.json:
        args.json.write_text(json.dumps({"config": {k: v for k, v in vars(args).items() if k != "json"},
                                         "windows": [asdict(w) for w in windows], "notes": notes},
                                        indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
