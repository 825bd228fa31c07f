"""Latency of a transaction from enqueue to decision committed, at steady offered loads, with the documents queue
idle and busy, on SQLite and on PostgreSQL; and the maximum sustained throughput with documents idle.

Run from the repository root: ``python -m benchmarks.transactions_latency`` (``--quick`` for a smoke run,
``--help``). It needs nothing running: per database it starts a private Redis, a fresh database (SQLite in a
temporary directory; PostgreSQL in a throwaway cluster, as ``tests/support/services.py`` does, skipped with a note
if the server binaries are missing), one ``slimline worker --queues transactions`` (default concurrency 2; ``--transactions-concurrency``) and one
``slimline worker --queues documents`` (default concurrency 2), with the default batching settings.

- Offered load: an open-loop producer sends transactions on a clock (the i-th at start + i/rate, whatever the
  worker does; a late send goes out at once and its lateness is reported as producer lag), each with
  ``workers.runtime.publish.send_item`` as ``workers.client`` does (items validated beforehand). Transactions
  come from the seeded simulator (``workers/transactions/simulator.py``) in time order, each sent once.
- Latency: ``results.processed_at − results.sent_at`` of each decision, both stored: ``sent_at`` is the producer's
  clock at the send, ``processed_at`` the worker's clock when the row is written, just before its transaction
  commits. p50, p95 and p99 over every transaction of the measurement; the first ``--settle`` seconds are sent
  but not counted. A decision not stored ``--drain`` seconds after the last send counts as infinitely late
  (a saturated worker), and what is still queued is purged so that the next measurement starts empty.
- Documents busy: a flood of documents (``labelled_documents.jsonl`` texts) is enqueued before the measurement
  and the documents worker works through it meanwhile; the queue must still hold documents at the end (checked
  and printed). The documents worker runs with ``SLIMLINE_WORKER_NICE=N`` (``--nice``, default 10 as Slimline's
  default: nice, and its session's autogroup); unless N is 0, the busy measurements are repeated at nice 0.
- Maximum sustained throughput (documents idle): the transactions worker is paused (SIGSTOP) while a backlog
  is enqueued, so that the producer does not compete with it, then resumed; the rate is the count of decisions
  over the span of their commit times (within ``--capacity-seconds``).
- Where the time goes, per measurement: CPU ms per decision of each process (from ``/proc``), and wall ms per
  batch of each stage in the transactions pool process (the worker's ``slimline_batch_seconds`` histogram).

Baselines measured in the same run: the documents-idle figures of the same database and load; and the floor of
any decision, the batch's own pipeline time (``results.batch_seconds``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from workers.runtime.threads import pin_native_threads

pin_native_threads(1)

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import select  # noqa: E402

from benchmarks.documents_path import children_of, cpu_seconds, load_texts, scrape, stage_sums, wait_ready  # noqa: E402
from benchmarks.latency_runs import database_url, percentile, run_per_database  # noqa: E402
from schemas import Kind, Transaction  # noqa: E402
from tasks.app import create_app  # noqa: E402
from tests.support.services import REPO_ROOT, WorkerProcess  # noqa: E402
from workers.client import enqueue  # noqa: E402
from workers.db.engine import migrate  # noqa: E402
from workers.db.models import Result  # noqa: E402
from workers.db.store import OutcomeStore  # noqa: E402
from workers.runtime.publish import Signer, send_item  # noqa: E402
from workers.runtime.queues import inspection_client  # noqa: E402
from workers.runtime.redis_server import RedisServer, free_port  # noqa: E402
from workers.settings import Settings  # noqa: E402
from workers.transactions.simulator import SimulationConfig, simulate  # noqa: E402

P99_AIM_MS = 50.0  # at 200 tx/s with documents busy
THROUGHPUT_AIM = 1000.0  # tx/s sustained with documents idle
TX_QUEUE, DOCS_QUEUE = "transactions", "documents"

out = Console(width=None if sys.stdout.isatty() else 200)  # wide tables stay readable in a log file
progress = Console(stderr=True, width=200)


@dataclass
class Measurement:
    database: str
    documents: str  # idle | busy | busy (nice 0)
    offered_per_second: float
    sent: int
    counted: int
    undecided: int  # counted transactions without a decision when the window closed (taken as infinitely late)
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    achieved_per_second: float  # decisions committed per second over the measurement
    producer_lag_p99_ms: float
    mean_batch_size: float
    batch_seconds_p50_ms: float  # validate + pipeline of the decision's batch
    batch_seconds_p99_ms: float
    documents_left: int | None = None  # documents still queued at the end (busy: must be > 0)
    load_average: float = 0.0
    split: dict[str, float] = field(default_factory=dict)  # where the time goes, see Probe


@dataclass
class Capacity:
    database: str
    backlog: int
    decided: int
    decisions_per_second: float
    producer_per_second: float
    mean_batch_size: float
    split: dict[str, float] = field(default_factory=dict)


@dataclass
class Report:
    config: dict[str, Any]
    latency: list[Measurement] = field(default_factory=list)
    capacity: list[Capacity] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class TransactionStream:
    """Simulated transactions in time order, each handed out once (ids are unique within a deployment)."""

    def __init__(self, accounts: int, days: int) -> None:
        fields = set(Transaction.model_fields)
        self.items = [{key: value for key, value in item.items() if key in fields}
                      for item in simulate(SimulationConfig(accounts=accounts, days=days, seed=20240601))]
        self.position = 0
        self.wraps = 0

    def take(self, count: int) -> list[dict[str, Any]]:
        taken = []
        while len(taken) < count:
            if self.position == len(self.items):
                self.position, self.wraps = 0, self.wraps + 1
            item = dict(self.items[self.position])
            if self.wraps:
                item["id"] = f"{item['id']}-r{self.wraps}"  # a second pass: new ids, history counted again
            taken.append(item)
            self.position += 1
        return taken


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)  # SQLite returns naive UTC


class Deployment:
    """Redis, a database, a transactions worker and a documents worker, and a producer."""

    def __init__(self, root: Path, database: str, database_url: str, stack: ExitStack,
                 transactions_env: dict[str, str], transactions_concurrency: int = 2, documents_nice: int = 10) -> None:
        self.root, self.database, self.database_url, self.stack = root, database, database_url, stack
        self.transactions_env = transactions_env
        self.redis = RedisServer(root / "redis").start()
        stack.callback(self.redis.stop)
        migrate(database_url)
        self.settings = Settings(redis_url=self.redis.url, database_url=database_url)
        self.app = create_app(self.settings)
        self.store = OutcomeStore.from_url(database_url)
        stack.callback(self.store.engine.dispose)
        self.broker = inspection_client(self.settings)
        self.signer = Signer.for_producer(self.settings)  # None without keys: unsigned, as workers.client sends
        assert self.redis.process is not None
        self.redis_pid = self.redis.process.pid
        self.tx_metrics_port = free_port()
        self.transactions_worker = self._worker("transactions", concurrency=transactions_concurrency, metrics_port=self.tx_metrics_port,
                                                extra_env=transactions_env)
        wait_ready(self.tx_metrics_port, 300)
        self.documents_worker: WorkerProcess | None = None
        self.documents_nice = documents_nice
        self.start_documents_worker(nice=documents_nice)

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLIMLINE_REDIS_URL": self.redis.url, "SLIMLINE_DATABASE_URL": self.database_url,
                "SLIMLINE_METRICS_PORT": "0", "SLIMLINE_DOCUMENTS__REVIEW_SCORE": "0",
                "SLIMLINE_DOCUMENTS__REVIEW_MARGIN": "0", "PYTHONPATH": str(REPO_ROOT),
                "SLIMLINE_ALLOW_UNSIGNED": "true"}  # a private Redis; messages unsigned, as no keys are set

    def _worker(self, queue: str, concurrency: int = 2, nice: int = 0, metrics_port: int = 0,
                extra_env: dict[str, str] | None = None) -> WorkerProcess:
        """``slimline worker --queues QUEUE --concurrency N`` (2: the command's default), niced if asked."""
        worker = WorkerProcess(self.env() | {"SLIMLINE_METRICS_PORT": str(metrics_port)} | (extra_env or {}), self.root / f"{self.database}-{queue}-worker.log", queues=queue,
                               concurrency=concurrency)
        worker.env["SLIMLINE_WORKER_NICE"] = str(nice)  # (a transactions worker is never niced)
        self.stack.callback(worker.stop)
        return worker.start(timeout=300)

    @staticmethod
    def pid(worker: WorkerProcess | None) -> int:
        assert worker is not None and worker.process is not None
        return worker.process.pid

    def start_documents_worker(self, nice: int) -> None:
        if self.documents_worker is not None:
            self.documents_worker.stop()
            self.broker.delete(DOCS_QUEUE)
        port = free_port()
        self.documents_worker = self._worker("documents", nice=nice, metrics_port=port)
        wait_ready(port, 300)  # every pool process has its models: loading them is not part of any measurement

    def flood_documents(self, count: int, prefix: str) -> None:
        texts = load_texts(count)
        items = [{"id": f"{prefix}-{index}", "text": text} for index, text in enumerate(texts)]
        report = enqueue(Kind.documents, items, app=self.app, settings=self.settings)
        if report.accepted != count:
            raise RuntimeError(f"the producer rejected {count - report.accepted} documents")

    def documents_left(self) -> int:
        return int(self.broker.llen(DOCS_QUEUE))

    def _send(self, item: dict[str, Any], producer: Any) -> None:
        """As ``workers.client.enqueue`` sends a validated item (one LPUSH)."""
        send_item(self.app, Kind.transactions, item, {"producer": "bench"}, signer=self.signer, producer=producer,
                  declare=[])

    def open_loop(self, items: list[dict[str, Any]], rate: float) -> list[float]:
        """Send item i at start + i/rate; returns each send's lateness in seconds."""
        lags = []
        with self.app.producer_or_acquire() as producer:
            started = time.perf_counter()
            for index, item in enumerate(items):
                due = started + index / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                lags.append(max(time.perf_counter() - due, 0.0))
                self._send(item, producer)
        return lags

    def send_all(self, items: list[dict[str, Any]]) -> float:
        """As fast as one producer can; returns its rate."""
        started = time.perf_counter()
        with self.app.producer_or_acquire() as producer:
            for item in items:
                self._send(item, producer)
        return len(items) / (time.perf_counter() - started)

    def rows(self, ids: list[str], timeout: float) -> list[tuple[str, datetime, datetime, int, float]]:
        """(item id, sent_at, processed_at, batch size, batch seconds) of the decisions of these transactions
        stored within ``timeout`` seconds (all of them, or as many as there are by then)."""
        wanted = set(ids)
        deadline = time.monotonic() + timeout
        found: dict[str, tuple[str, datetime, datetime, int, float]] = {}
        while True:
            missing = list(wanted - set(found))
            for start in range(0, len(missing), 500):
                with self.store.sessions() as session:
                    query = select(Result.item_id, Result.sent_at, Result.processed_at, Result.batch_size,
                                   Result.batch_seconds).where(Result.kind == Kind.transactions.value,
                                                               Result.item_id.in_(missing[start:start + 500]))
                    for row in session.execute(query).tuples():
                        found[row[0]] = row
            if len(found) == len(wanted) or time.monotonic() > deadline:
                return [found[item_id] for item_id in ids if item_id in found]
            time.sleep(0.1)

    def purge_transactions(self) -> None:
        """Drop what is still queued (a saturated measurement), so the next one starts from an empty queue."""
        self.broker.delete(TX_QUEUE)
        time.sleep(1.0)

    def pause_transactions(self, paused: bool) -> None:
        assert self.transactions_worker.process is not None
        os.killpg(self.transactions_worker.process.pid, signal.SIGSTOP if paused else signal.SIGCONT)


class Probe:
    """CPU seconds of each process and the transactions worker's batch stages, between two moments."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        tx_main = deployment.pid(deployment.transactions_worker)
        docs_main = deployment.pid(deployment.documents_worker)
        self.processes = {"transactions main": [tx_main], "transactions pool": children_of(tx_main),
                          "documents worker": [docs_main, *children_of(docs_main)], "redis": [deployment.redis_pid]}
        self.cpu = self._cpu()
        self.samples = scrape(deployment.tx_metrics_port)

    def _cpu(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in self.processes.items()}

    def finish(self, decisions: int) -> dict[str, float]:
        """CPU ms per decision of each process; mean ms per batch of each stage, and the bucket bound under
        which 99 % of batches persisted (a commit waiting for the database's lock shows here); batches."""
        cpu = self._cpu()
        samples = scrape(self.deployment.tx_metrics_port)
        stages, before = stage_sums(samples, TX_QUEUE), stage_sums(self.samples, TX_QUEUE)
        batches = stages.get("batches", 0.0) - before.get("batches", 0.0)
        split = {f"cpu ms/decision: {name}": (cpu[name] - self.cpu[name]) * 1000 / max(decisions, 1)
                 for name in cpu}
        for stage in ("validate", "pipeline", "persist", "total"):
            split[f"ms/batch: {stage}"] = (stages.get(stage, 0.0) - before.get(stage, 0.0)) * 1000 / max(batches, 1)
        split["ms/batch: persist p99 ≤"] = self._bucket_p99(samples, "persist") * 1000
        split["batches"] = batches
        return split

    def _bucket_p99(self, samples: dict[Any, float], stage: str) -> float:
        """Upper bound of the histogram bucket holding the 99th percentile of this stage, between the scrapes."""
        def buckets(scraped: dict[Any, float]) -> dict[float, float]:
            return {float(dict(labels)["le"]): value for (name, labels), value in scraped.items()
                    if name == "slimline_batch_seconds_bucket" and dict(labels).get("queue") == TX_QUEUE
                    and dict(labels).get("stage") == stage}
        after, before = buckets(samples), buckets(self.samples)
        counts = sorted((bound, value - before.get(bound, 0.0)) for bound, value in after.items())
        if not counts or counts[-1][1] <= 0:
            return float("nan")
        return next(bound for bound, cumulative in counts if cumulative >= 0.99 * counts[-1][1])




def measure(deployment: Deployment, stream: TransactionStream, documents: str, rate: float, seconds: float,
            settle: float, drain: float) -> Measurement:
    items = stream.take(int(rate * seconds))
    probe = Probe(deployment)
    lags = deployment.open_loop(items, rate)
    counted = items[int(rate * settle):]
    rows = deployment.rows([item["id"] for item in counted], drain)
    split = probe.finish(len(rows))
    documents_left = deployment.documents_left() if documents != "idle" else None
    deployment.purge_transactions()
    latencies = [(_utc(processed) - _utc(sent)).total_seconds() * 1000 for _, sent, processed, _, _ in rows]
    latencies += [float("inf")] * (len(counted) - len(rows))
    commits = sorted(_utc(processed).timestamp() for _, _, processed, _, _ in rows)
    span = commits[-1] - commits[0] if len(commits) > 1 else 0.0
    batch_ms = [seconds * 1000 for *_, seconds in rows]
    return Measurement(
        database=deployment.database, documents=documents, offered_per_second=rate, sent=len(items),
        counted=len(counted), undecided=len(counted) - len(rows), p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95), p99_ms=percentile(latencies, 99), max_ms=max(latencies),
        achieved_per_second=(len(commits) - 1) / span if span > 0 else float("nan"),
        producer_lag_p99_ms=percentile(lags, 99) * 1000,
        mean_batch_size=float(np.mean([size for *_, size, _ in rows])) if rows else float("nan"),
        batch_seconds_p50_ms=percentile(batch_ms, 50) if rows else float("nan"),
        batch_seconds_p99_ms=percentile(batch_ms, 99) if rows else float("nan"),
        documents_left=documents_left, load_average=os.getloadavg()[0], split=split,
    )


def capacity(deployment: Deployment, stream: TransactionStream, backlog: int, window: float) -> Capacity:
    """Decisions per second while the worker works through a backlog, for at most ``window`` seconds."""
    items = stream.take(backlog)
    deployment.pause_transactions(True)
    try:
        producer_rate = deployment.send_all(items)
    finally:
        deployment.pause_transactions(False)
    probe = Probe(deployment)
    rows = deployment.rows([item["id"] for item in items], window)
    split = probe.finish(len(rows))
    deployment.purge_transactions()
    commits = sorted(_utc(processed).timestamp() for _, _, processed, _, _ in rows)
    return Capacity(database=deployment.database, backlog=backlog, decided=len(rows),
                    decisions_per_second=(len(commits) - 1) / (commits[-1] - commits[0]),
                    producer_per_second=producer_rate,
                    mean_batch_size=float(np.mean([size for *_, size, _ in rows])), split=split)




def run_database(kind: str, args: argparse.Namespace, report: Report) -> None:
    stream = TransactionStream(accounts=args.accounts, days=30)
    with tempfile.TemporaryDirectory(prefix=f"slimline-txlat-{kind}-") as tmp, \
            database_url(kind, Path(tmp)) as url, ExitStack() as stack:
        progress.print(f"{kind}: starting Redis, the database and two workers…")
        deployment = Deployment(Path(tmp), kind, url, stack, args.transactions_env, args.transactions_concurrency,
                                documents_nice=args.nice)
        warm = stream.take(int(min(args.rates) * 2))
        deployment.open_loop(warm, min(args.rates))
        deployment.rows([item["id"] for item in warm], args.drain)  # untimed: connections open, code paths warm
        deployment.purge_transactions()
        for rate in args.rates:
            report.latency.append(measure(deployment, stream, "idle", rate, args.seconds, args.settle, args.drain))
            progress.print(f"{kind}: documents idle, {rate:.0f}/s: {_short(report.latency[-1])}")
        report.capacity.append(capacity(deployment, stream, args.backlog, args.capacity_seconds))
        progress.print(f"{kind}: capacity {report.capacity[-1].decisions_per_second:.0f} decisions/s "
                       f"(producer {report.capacity[-1].producer_per_second:.0f}/s)")
        states = [("busy", args.nice)] + ([("busy (nice 0)", 0)] if args.nice else [])
        for label, nice in states:
            if nice != deployment.documents_nice:
                deployment.documents_nice = nice
                deployment.start_documents_worker(nice=nice)
            deployment.flood_documents(args.flood, f"flood-{nice}")
            time.sleep(2.0)  # the documents worker has taken its first batches
            for rate in args.rates:
                report.latency.append(measure(deployment, stream, label, rate, args.seconds, args.settle, args.drain))
                progress.print(f"{kind}: documents {label}, {rate:.0f}/s: {_short(report.latency[-1])}")
                if not report.latency[-1].documents_left:
                    report.notes.append(f"{kind}, documents {label}, {rate}/s: the documents queue ran empty "
                                        f"before the end (raise --flood)")
        if stream.wraps:
            report.notes.append(f"{kind}: the simulated stream was reused {stream.wraps} time(s) under new ids "
                                f"(raise --accounts)")


def _short(measurement: Measurement) -> str:
    return (f"p50 {measurement.p50_ms:.1f} ms, p95 {measurement.p95_ms:.1f} ms, p99 {measurement.p99_ms:.1f} ms, "
            f"achieved {measurement.achieved_per_second:.0f}/s, undecided {measurement.undecided}, mean batch "
            f"{measurement.mean_batch_size:.1f}, load {measurement.load_average:.2f}")


def print_report(report: Report) -> None:
    config = report.config
    batching = ", ".join(f"{key}={value}" for key, value in config["transactions_env"].items()) or \
        "default batching (32 items, 5 ms wait)"
    batching += f", transactions worker --concurrency {config['transactions_concurrency']}"
    out.print(f"[bold]Transactions: enqueue → decision committed[/], {config['seconds']} s per measurement "
              f"(first {config['settle']} s not counted), {batching}, {os.cpu_count()} CPU cores (shared machine)",
              soft_wrap=True)
    idle = {(m.database, m.offered_per_second): m for m in report.latency if m.documents == "idle"}
    table = Table(caption=f"ms from the producer's send to the decision row; aim: p99 ≤ {P99_AIM_MS:.0f} ms at 200/s "
                          f"with documents busy · p99 ÷ idle: against documents idle, same database and load")
    for column in ("database", "documents", "offered/s", "achieved/s", "undecided", "p50", "p95", "p99", "max",
                   "p99 ÷ idle", "batch p50/p99 ms", "mean batch", "producer lag p99", "docs left", "load"):
        table.add_column(column, justify="left" if column in ("database", "documents") else "right")
    for m in report.latency:
        base = idle.get((m.database, m.offered_per_second))
        table.add_row(m.database, m.documents, f"{m.offered_per_second:.0f}", f"{m.achieved_per_second:.0f}",
                      f"{m.undecided}/{m.counted}", f"{m.p50_ms:.1f}", f"{m.p95_ms:.1f}", f"{m.p99_ms:.1f}",
                      f"{m.max_ms:.0f}",
                      f"{m.p99_ms / base.p99_ms:.2f}" if base else "", f"{m.batch_seconds_p50_ms:.1f}/"
                      f"{m.batch_seconds_p99_ms:.1f}", f"{m.mean_batch_size:.1f}", f"{m.producer_lag_p99_ms:.1f}",
                      "" if m.documents_left is None else str(m.documents_left), f"{m.load_average:.2f}")
    out.print(table)
    throughput = Table(caption=f"decisions/s while working through a backlog, documents idle; aim ≥ {THROUGHPUT_AIM:.0f}")
    for column in ("database", "backlog", "decisions/s", "÷ aim", "mean batch", "one producer's send rate"):
        throughput.add_column(column, justify="left" if column == "database" else "right")
    for c in report.capacity:
        throughput.add_row(c.database, str(c.backlog), f"{c.decisions_per_second:.0f}",
                           f"{c.decisions_per_second / THROUGHPUT_AIM:.2f}", f"{c.mean_batch_size:.1f}",
                           f"{c.producer_per_second:.0f}/s")
    out.print(throughput)
    print_split(report)
    for m in report.latency:
        if m.offered_per_second == 200 and m.documents.startswith("busy"):
            verdict = "meets" if m.p99_ms <= P99_AIM_MS else "misses"
            out.print(f"{m.database}, documents {m.documents}, 200/s: p99 {m.p99_ms:.1f} ms ({verdict} the aim)")
    for c in report.capacity:
        verdict = "meets" if c.decisions_per_second >= THROUGHPUT_AIM else "misses"
        out.print(f"{c.database}: {c.decisions_per_second:.0f} decisions/s sustained ({verdict} the aim)")
    for note in report.notes:
        out.print(f"[yellow]note[/]: {note}")


def print_split(report: Report) -> None:
    """Per measurement: CPU ms per decision of each process, and the transactions worker's ms per batch by stage."""
    rows = [(f"{m.database} {m.documents} {m.offered_per_second:.0f}/s", m.split) for m in report.latency]
    rows += [(f"{c.database} capacity", c.split) for c in report.capacity]
    if not rows:
        return
    table = Table(title="Where the time goes", caption="cpu: CPU ms per decision of each process (the documents "
                  "worker's too); batch: wall ms per batch inside the transactions pool process "
                  "(slimline_batch_seconds); persist = building the rows + the database transaction")
    table.add_column("measurement")
    keys = list(rows[0][1])
    for key in keys:
        table.add_column(key.replace("cpu ms/decision: ", "cpu ").replace("ms/batch: ", "batch "), justify="right")
    for label, split in rows:
        table.add_row(label, *(f"{split.get(key, float('nan')):.2f}" if key != "batches" else
                               f"{split.get(key, 0):.0f}" for key in keys))
    out.print(table)




def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.transactions_latency",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="sqlite,postgres", help="comma-separated (default sqlite,postgres)")
    parser.add_argument("--rates", default="200,500", help="offered loads, tx/s (default 200,500)")
    parser.add_argument("--seconds", type=float, default=15.0, help="load per measurement (default 15)")
    parser.add_argument("--settle", type=float, default=2.0, help="first seconds not counted (default 2)")
    parser.add_argument("--drain", type=float, default=10.0,
                        help="seconds to wait for decisions after the last send; later ones count as infinitely "
                             "late and are purged (default 10)")
    parser.add_argument("--backlog", type=int, default=10000, help="transactions for the throughput test")
    parser.add_argument("--capacity-seconds", type=float, default=10.0,
                        help="the throughput test's window (default 10)")
    parser.add_argument("--flood", type=int, default=4000, help="documents enqueued per busy state (default 4000)")
    parser.add_argument("--nice", type=int, default=10,
                        help="the documents worker's SLIMLINE_WORKER_NICE (default 10, Slimline's default); unless 0, "
                             "the busy measurements are repeated with nice 0 for comparison")
    parser.add_argument("--accounts", type=int, default=1000, help="simulated accounts (default 1000)")
    parser.add_argument("--transactions-setting", action="append", default=[], metavar="SLIMLINE_X=VALUE",
                        help="an environment setting for the transactions worker only, to try a change "
                             "(e.g. SLIMLINE_TRANSACTIONS__MAX_WAIT_SECONDS=0.02); repeatable; default: none")
    parser.add_argument("--transactions-concurrency", type=int, default=2,
                        help="pool processes of the transactions worker (default 2, the command's default)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 s per measurement, small backlog")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here as JSON")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.settle, args.backlog, args.flood, args.accounts = 4.0, 1.0, 1500, 600, 200
        args.drain, args.capacity_seconds = 5.0, 5.0
    args.rates = [float(rate) for rate in args.rates.split(",")]
    args.transactions_env = dict(setting.split("=", 1) for setting in args.transactions_setting)
    args.databases = [name.strip() for name in args.databases.split(",") if name.strip()]
    return args


def main() -> None:
    args = parse_args()
    run_per_database(args, Report(config={}), run_database, print_report, out)


if __name__ == "__main__":
    main()
