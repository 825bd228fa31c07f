"""Throughput against worker hosts (1, 2, 3…) sharing one Redis and one PostgreSQL, with a model-free pipeline;
with ``--failover``, what a Redis master failover costs (Sentinel) with and without the producers' confirmation.

Run from the repository root: ``python -m benchmarks.scale_out`` (options: ``--help``), and
``python -m benchmarks.scale_out --failover``.

A host is a ``celery -A tasks.app worker`` with its own node name, process group and network path to Redis
(a TCP proxy: tests/support/hosts.py), ``--concurrency`` pool processes each. The documents pipeline runs with
model-free components (tests/support/model_free.py): what is measured is the shared path — fetch from Redis,
batching, validation, the batch's INSERT into PostgreSQL, acknowledgements — not a model.

Each run: a fresh PostgreSQL database, the hosts started and warmed up (every pool process has built its
pipeline), then the whole backlog appears in the queue at once (``COPY`` of a list of messages enqueued before the
run by the real producer) and the clock runs until every document has its row. CPU seconds of the hosts' process
trees, of redis-server and of the PostgreSQL cluster are read from /proc over the same interval, so the table says
what each part costs per 1000 documents and how busy the machine was. The baseline is one host, in the same run.

``--failover`` runs the scenario of tests/test_sentinel_failover.py (tests/support/failover.py: a master, one
replica, three Sentinels, two hosts, a steady producer and a burst while the replica lags, then the master killed)
in four configurations: producers that do not confirm (the baseline), the master's own guard
``min-replicas-to-write 1`` / ``min-replicas-max-lag 10`` (on the first master only: on the promoted replica it
would refuse every write until the old master rejoins, and Celery workers exit on that NOREPLICAS error at
reconnect — seen in a run), and producers that confirm on a replica and resend after a promotion (Slimline's
default with Sentinel). It prints the failover's timings and what was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import redis
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from benchmarks.arguments import positive_int
from schemas import Kind
from tasks.app import create_app
from tests.support.failover import FailoverReport, run_failover
from tests.support.hosts import cpu_seconds, process_tree, start_hosts, stop_hosts
from tests.support.model_free import MODEL_FREE_ENV
from tests.support.outcomes import model_free_documents
from tests.support.sentinel import SentinelCluster
from tests.support.services import PostgresCluster, postgres_binaries_missing
from workers.client import enqueue
from workers.db.engine import migrate
from workers.db.models import Result
from workers.db.store import OutcomeStore
from workers.runtime.names import QUEUES
from workers.runtime.redis_server import RedisServer
from workers.settings import Settings

TEMPLATE = "benchmark:scale-out:backlog"  # the backlog's messages, copied into the queue at the start of each run
POLL_SECONDS = 0.02
RUN_TIMEOUT_SECONDS = 600

out = Console(width=150)
progress = Console(stderr=True)


@dataclass
class Run:
    hosts: int
    docs_per_second: float
    seconds: float
    mean_batch_size: float
    cpu: dict[str, float]  # CPU seconds over the run: hosts, redis, postgres


@dataclass
class Summary:
    hosts: int
    docs_per_second: float
    runs: list[float]
    ratio: float
    cpu_per_1000: dict[str, float]
    cores_busy: float
    mean_batch_size: float


def postmaster_pid(cluster: PostgresCluster) -> int:
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


def build_backlog(redis_server: RedisServer, database_url: str, count: int) -> None:
    """Enqueue ``count`` documents with the real producer (validation, Celery message) into the queue while no
    worker runs, then keep them aside; each run copies them back into the queue in one step."""
    settings = Settings(redis_url=redis_server.url, database_url=database_url)
    report = enqueue(Kind.documents, model_free_documents(count, "bench"), app=create_app(settings), settings=settings)
    if report.accepted != count:
        raise RuntimeError(f"the producer rejected {count - report.accepted} documents")
    redis.Redis.from_url(redis_server.url).rename(QUEUES[Kind.documents], TEMPLATE)


def one_run(cluster: PostgresCluster, redis_server: RedisServer, root: Path, hosts: int, count: int,
            concurrency: int, batch_size: int, max_wait: float) -> Run:
    database_url = cluster.create_database(f"bench_{uuid.uuid4().hex[:10]}")
    migrate(database_url)
    env = {**os.environ, **MODEL_FREE_ENV, "SLIMLINE_DATABASE_URL": database_url, "SLIMLINE_ALLOW_UNSIGNED": "true",
           "SLIMLINE_WORKER_NICE": "0", "SLIMLINE_METRICS_PORT": "0",
           "SLIMLINE_DOCUMENTS__MAX_WAIT_SECONDS": str(max_wait)}
    client = redis.Redis.from_url(redis_server.url)
    store = OutcomeStore.from_url(database_url)
    settings = Settings(redis_url=redis_server.url, database_url=database_url)
    fleet = start_hosts([f"host{index}" for index in range(1, hosts + 1)], env, root, redis_url=redis_server.url,
                        concurrency=concurrency, max_batch_size=batch_size)
    try:
        warm_up = 4 * hosts * concurrency
        enqueue(Kind.documents, model_free_documents(warm_up, "warmup"), app=create_app(settings), settings=settings)
        wait_for_rows(store, warm_up, fleet)
        time.sleep(0.5)  # every pool process has loaded its pipeline and is idle
        parts = {"hosts": lambda: [pid for host in fleet for pid in host.pids()],
                 "redis": lambda: [redis_server.process.pid] if redis_server.process else [],
                 "postgres": lambda: process_tree(postmaster_pid(cluster))}
        cpu_before = {name: cpu_seconds(pids()) for name, pids in parts.items()}
        started = time.perf_counter()
        client.copy(TEMPLATE, QUEUES[Kind.documents])
        wait_for_rows(store, warm_up + count, fleet)
        seconds = time.perf_counter() - started
        cpu = {name: cpu_seconds(pids()) - cpu_before[name] for name, pids in parts.items()}
        with store.sessions() as session:
            mean_batch = session.scalar(select(func.avg(Result.batch_size)).where(Result.item_id.startswith("bench-")))
        return Run(hosts, count / seconds, seconds, float(mean_batch or 0), cpu)
    finally:
        stop_hosts(fleet)
        store.engine.dispose()
        client.close()


def wait_for_rows(store: OutcomeStore, expected: int, fleet: list) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while store.count(Result) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError("run did not finish:\n" + "\n".join(host.log_tail() for host in fleet))
        time.sleep(POLL_SECONDS)


def summarize(runs: list[Run], baseline: float) -> Summary:
    median = statistics.median(run.docs_per_second for run in runs)
    documents = sum(run.docs_per_second * run.seconds for run in runs)
    cpu = {part: sum(run.cpu[part] for run in runs) / documents * 1000 for part in runs[0].cpu}
    wall = sum(run.seconds for run in runs)
    return Summary(hosts=runs[0].hosts, docs_per_second=median, runs=[round(run.docs_per_second) for run in runs],
                   ratio=median / baseline, cpu_per_1000={part: round(value, 3) for part, value in cpu.items()},
                   cores_busy=sum(sum(run.cpu.values()) for run in runs) / wall,
                   mean_batch_size=statistics.fmean(run.mean_batch_size for run in runs))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_out", description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1,2,3", help="host counts to measure, comma-separated (default 1,2,3)")
    parser.add_argument("--documents", type=positive_int, default=3000, help="documents per run (default 3000)")
    parser.add_argument("--repeats", type=positive_int, help="runs per host count or configuration; medians "
                                                             "(default 3; 1 with --failover)")
    parser.add_argument("--concurrency", type=positive_int, default=1, help="pool processes per host (default 1)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="max batch size (default 64)")
    parser.add_argument("--max-wait", type=float, default=0.1, help="batch wait, seconds (default 0.1)")
    parser.add_argument("--failover", action="store_true", help="measure a Redis failover instead (~6 min)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    return parser.parse_args()


FAILOVER_MODES = [  # (label, producers confirm, arguments of the first master, partitioned rather than killed)
    ("kill, no confirmation", False, (), False),
    ("kill, min-replicas-to-write 1", False, ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"), False),
    ("kill, confirm + resend", True, (), False),
    ("partition, confirm + resend", True, (), True),
]


def failover(args: argparse.Namespace) -> None:
    cluster_pg = PostgresCluster().init()
    reports: dict[str, list[FailoverReport]] = {label: [] for label, *_ in FAILOVER_MODES}
    try:
        for repeat in range(args.repeats):
            for label, confirm, arguments, partition in FAILOVER_MODES:
                root = Path(tempfile.mkdtemp(prefix="slimline-failover-"))
                cluster = SentinelCluster(root / "redis", master_arguments=arguments).start()
                try:
                    report = run_failover(cluster, cluster_pg.create_database(f"failover_{uuid.uuid4().hex[:10]}"),
                                          root, confirm=confirm, partition=partition)
                finally:
                    cluster.stop()
                progress.print(f"repeat {repeat + 1}/{args.repeats}, {label}: {report.line()}")
                reports[label].append(report)
    finally:
        cluster_pg.destroy()
    table = Table(title=f"Redis failover under load: master killed after its replica lagged 1.5 s; "
                        f"{args.repeats} run(s) each, medians of times ({os.cpu_count()} cores)")
    for column in ("configuration", "replica behind (KB)", "promoted (s)", "work resumed (s)", "drained (s)",
                   "accepted", "refused", "lost", "stored twice", "processed > once", "resent"):
        table.add_column(column, justify="right")
    for label, runs in reports.items():
        def median(field: str) -> str:
            return f"{statistics.median(getattr(run, field) for run in runs):.1f}"

        table.add_row(label, f"{statistics.median(run.behind_bytes for run in runs) / 1024:.0f}", median("promoted_seconds"),
                      median("resumed_seconds"), median("drained_seconds"),
                      " ".join(str(run.ledger.accepted) for run in runs),
                      " ".join(str(run.refused) for run in runs),
                      " ".join(str(len(run.ledger.lost)) for run in runs),
                      " ".join(str(len(run.ledger.doubled)) for run in runs),
                      " ".join(str(run.ledger.processed_again) for run in runs),
                      " ".join(str(run.resent) for run in runs))
    out.print(table)
    out.print("refused: documents whose enqueue raised (the producer was told; not counted as accepted); lost: "
              "accepted, never stored")
    if args.json:
        args.json.write_text(json.dumps({label: [asdict(run) for run in runs] for label, runs in reports.items()},
                                        indent=2, default=str))


def main() -> None:
    args = parse_args()
    args.repeats = args.repeats or (1 if args.failover else 3)
    if reason := postgres_binaries_missing():
        raise SystemExit(f"this benchmark needs PostgreSQL: {reason}")
    if args.failover:
        failover(args)
        return
    host_counts = [int(value) for value in args.hosts.split(",")]
    root = Path(tempfile.mkdtemp(prefix="slimline-scale-out-"))
    cluster = PostgresCluster().init()
    redis_server = RedisServer(root / "redis").start()
    load_before = os.getloadavg()
    results: dict[int, list[Run]] = {count: [] for count in host_counts}
    try:
        progress.print(f"enqueueing a backlog of {args.documents} documents…")
        build_backlog(redis_server, cluster.create_database("backlog"), args.documents)
        for repeat in range(args.repeats):  # interleaved, so that a burst of load elsewhere hits every count
            for count in host_counts:
                run = one_run(cluster, redis_server, root, count, args.documents, args.concurrency, args.batch_size,
                              args.max_wait)
                progress.print(f"repeat {repeat + 1}/{args.repeats}, {count} host(s): {run.docs_per_second:.0f} docs/s")
                results[count].append(run)
    finally:
        redis_server.stop()
        cluster.destroy()
    load_after = os.getloadavg()

    baseline = statistics.median(run.docs_per_second for run in results[host_counts[0]])
    summaries = [summarize(results[count], baseline) for count in host_counts]
    table = Table(title=f"Throughput against hosts: {args.documents} documents per run, {args.repeats} runs, "
                        f"{args.concurrency} pool process(es) per host, model-free pipeline, PostgreSQL "
                        f"({os.cpu_count()} cores)")
    for column in ("hosts", "docs/s (median)", "runs", f"vs {host_counts[0]} host(s)", "mean batch",
                   "CPU s / 1000 docs: hosts", "redis", "postgres", "cores busy"):
        table.add_column(column, justify="right")
    for summary in summaries:
        table.add_row(str(summary.hosts), f"{summary.docs_per_second:.0f}", " ".join(map(str, summary.runs)),
                      f"{summary.ratio:.2f}", f"{summary.mean_batch_size:.1f}",
                      f"{summary.cpu_per_1000['hosts']:.2f}", f"{summary.cpu_per_1000['redis']:.2f}",
                      f"{summary.cpu_per_1000['postgres']:.2f}", f"{summary.cores_busy:.2f}")
    out.print(table)
    out.print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (the machine is shared: "
              f"compare ratios within one run)")
    if args.json:
        args.json.write_text(json.dumps({"arguments": {key: str(value) for key, value in vars(args).items()},
                                         "load_average": [load_before[0], load_after[0]],
                                         "summaries": [asdict(summary) for summary in summaries],
                                         "runs": [asdict(run) for runs in results.values() for run in runs]}, indent=2))


if __name__ == "__main__":
    main()
