"""Documents/second through the whole Slimline path, beside spaCy alone, measured in the same run.

Run from the repository root: ``python -m benchmarks.throughput`` (options: ``--help``).

Every measurement is repeated ``--repeats`` times on the same texts, and medians are reported:

- in-process nlp.pipe: ``nlp.pipe`` of the worker's spaCy model (tok2vec + ner only), in this process,
  with one native thread, as one worker pool process runs it.
- in-process extractor: the worker's ``SpacyEntityExtractor`` (``nlp.pipe`` plus conversion to ``Entity``).
- ideal: in-process nlp.pipe × ``--concurrency``. Derived, not measured: what the worker's pool processes would
  reach if they scaled perfectly and did nothing but spaCy.
- enqueue: the producer alone (``workers.client.enqueue``: validate, send to Redis), timed inside the
  end-to-end run while the worker consumes.
- end-to-end: enqueue → Redis → a real ``slimline worker`` process (``--concurrency`` pool processes, batches of
  up to ``--batch-size``) → SQLite. The worker is started and warmed up before the clock starts; the clock stops
  when the queues are drained and every document has its row in the database.

Reading the ratios: "vs pipe" divides by in-process nlp.pipe (one process); "vs ideal" divides by the ideal
figure. End-to-end "vs ideal" below 1 is the price of the path (language identification, validation, JSON,
Redis round trips, batches waiting to fill, database writes) plus CPU contention: the producer, Redis and the
worker's main process share the machine's cores with the pool processes (the core count is printed).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from workers.runtime.threads import pin_native_threads

pin_native_threads(1)  # before numpy/spaCy load: one native thread per process, as in the worker

import redis  # noqa: E402
from celery import Celery  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from benchmarks.arguments import positive_int  # noqa: E402
from schemas import Kind  # noqa: E402
from tasks.app import create_app  # noqa: E402
from tests.support.corpus import synthetic_documents  # noqa: E402
from tests.support.services import REPO_ROOT, WorkerProcess  # noqa: E402
from workers.client import enqueue  # noqa: E402
from workers.db.engine import migrate  # noqa: E402
from workers.db.models import Result  # noqa: E402
from workers.db.store import OutcomeStore  # noqa: E402
from workers.documents.entities.spacy_backend import SpacyEntityExtractor  # noqa: E402
from workers.runtime.queues import inspection_client, wait_until_drained  # noqa: E402
from workers.runtime.redis_server import RedisServer  # noqa: E402
from workers.settings import Settings  # noqa: E402

# The texts depend only on the seed: every repeat and every baseline sees the same texts (ids differ).
SEED = 0
# Short polls keep the end-to-end clock from overshooting the moment the last row is stored.
POLL_SECONDS = 0.02
DRAIN_TIMEOUT_SECONDS = 900.0
ROWS_TIMEOUT_SECONDS = 60.0

out = Console()
progress = Console(stderr=True)


@dataclass
class EndToEndRun:
    enqueue_docs_per_second: float
    docs_per_second: float
    mean_batch_size: float  # over documents: a batch of 64 counts 64 times
    max_batch_size: int


@dataclass
class Series:
    label: str
    runs: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


class Deployment:
    """A private Redis, a fresh SQLite database, one running worker, and a producer talking to them."""

    def __init__(self, app: Celery, settings: Settings, worker: WorkerProcess) -> None:
        self.app = app
        self.settings = settings
        self.worker = worker
        self.store = OutcomeStore.from_url(settings.database_url.get_secret_value())
        self.broker: redis.Redis = inspection_client(settings)

    def run(self, count: int, prefix: str) -> EndToEndRun:
        """Enqueue ``count`` documents with ids ``{prefix}-…`` and time them until all are stored."""
        documents = synthetic_documents(count, SEED, prefix)
        started = time.perf_counter()
        report = enqueue(Kind.documents, documents, app=self.app, settings=self.settings)
        enqueued = time.perf_counter()
        if report.accepted != count:
            raise RuntimeError(f"{count - report.accepted} documents rejected by the producer: {report.rejected[:3]}")
        if not wait_until_drained(self.broker, DRAIN_TIMEOUT_SECONDS, poll=POLL_SECONDS):
            raise RuntimeError(f"queues not drained after {DRAIN_TIMEOUT_SECONDS} s:\n{self.worker.log_tail()}")
        self._wait_for_rows(prefix, count)
        finished = time.perf_counter()
        sizes = self._batch_sizes(prefix)
        return EndToEndRun(
            enqueue_docs_per_second=count / (enqueued - started),
            docs_per_second=count / (finished - started),
            mean_batch_size=statistics.fmean(sizes),
            max_batch_size=max(sizes),
        )

    def _rows(self, prefix: str) -> int:
        with self.store.sessions() as session:
            query = (select(func.count()).select_from(Result)
                     .where(Result.item_id.startswith(f"{prefix}-")))
            return session.scalar(query) or 0

    def _wait_for_rows(self, prefix: str, expected: int) -> None:
        deadline = time.monotonic() + ROWS_TIMEOUT_SECONDS
        while self._rows(prefix) < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self._rows(prefix)} of {expected} rows stored after the queues drained; "
                                   f"outcomes: {self.store.counts()}\n{self.worker.log_tail()}")
            time.sleep(POLL_SECONDS)

    def _batch_sizes(self, prefix: str) -> list[int]:
        with self.store.sessions() as session:
            query = select(Result.batch_size).where(Result.item_id.startswith(f"{prefix}-"))
            return list(session.scalars(query))

    def close(self) -> None:
        self.broker.close()
        self.store.engine.dispose()


@contextmanager
def deployment(root: Path, concurrency: int, batch_size: int, max_wait_seconds: float) -> Iterator[Deployment]:
    """Start Redis and a worker (stopped again on exit, whatever happens), and warm the worker up."""
    redis_server = RedisServer(root / "redis")
    database_url = f"sqlite:///{root}/bench.db"
    worker: WorkerProcess | None = None
    try:
        redis_server.start()
        migrate(database_url)
        env = {
            **os.environ,
            "SLIMLINE_REDIS_URL": redis_server.url,
            "SLIMLINE_DATABASE_URL": database_url,
            "SLIMLINE_DOCUMENTS__MAX_BATCH_SIZE": str(batch_size),
            "SLIMLINE_DOCUMENTS__MAX_WAIT_SECONDS": str(max_wait_seconds),
            "PYTHONPATH": str(REPO_ROOT),
        }
        worker = WorkerProcess(env, root / "worker.log", concurrency=concurrency)
        worker.start()
        settings = Settings(redis_url=redis_server.url, database_url=database_url)
        slimline = Deployment(create_app(settings), settings, worker)
        try:
            # Untimed: models loaded in every pool process, connections open, SQLite's WAL in place.
            slimline.run(2 * concurrency * batch_size, "warmup")
            yield slimline
        finally:
            slimline.close()
    finally:
        if worker is not None:
            worker.stop()
        redis_server.stop()


def docs_per_second(process: Callable[[list[str]], object], texts: list[str]) -> float:
    started = time.perf_counter()
    process(texts)
    return len(texts) / (time.perf_counter() - started)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=positive_int, default=2000, help="documents per repeat (default 2000)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="repeats; medians are reported (default 3)")
    parser.add_argument("--concurrency", type=positive_int, default=2, help="worker pool processes (default 2)")
    parser.add_argument("--batch-size", type=positive_int, default=64,
                        help="worker max batch size, and nlp.pipe batch size in process (default 64)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write a JSON summary here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    settings = Settings()  # the worker reads the same SLIMLINE_* variables: same model
    extractor = SpacyEntityExtractor(settings.documents.ner_models["en"], batch_size=args.batch_size)
    texts = [document["text"] for document in synthetic_documents(args.documents, SEED, "baseline")]
    extractor(texts[: args.batch_size])  # warm-up
    max_wait = settings.documents.max_wait_seconds

    def pipe_only(batch: list[str]) -> None:
        list(extractor.nlp.pipe(batch, batch_size=args.batch_size))

    pipe = Series("nlp.pipe, in process", [])
    full = Series("extractor, in process", [])
    enqueue_only = Series("enqueue only", [])
    end_to_end = Series(f"end-to-end, {args.concurrency} pool procs", [])
    runs: list[EndToEndRun] = []

    with tempfile.TemporaryDirectory(prefix="slimline-bench-") as tmp, \
            deployment(Path(tmp), args.concurrency, args.batch_size, max_wait) as slimline:
        for repeat in range(1, args.repeats + 1):
            pipe.runs.append(docs_per_second(pipe_only, texts))
            full.runs.append(docs_per_second(extractor, texts))
            run = slimline.run(args.documents, f"bench{repeat}")
            runs.append(run)
            enqueue_only.runs.append(run.enqueue_docs_per_second)
            end_to_end.runs.append(run.docs_per_second)
            progress.print(f"repeat {repeat}/{args.repeats}: nlp.pipe {pipe.runs[-1]:,.0f}/s, "
                           f"extractor {full.runs[-1]:,.0f}/s, end-to-end {run.docs_per_second:,.0f}/s "
                           f"(mean batch {run.mean_batch_size:.1f})")

    ideal = Series(f"ideal: nlp.pipe × {args.concurrency}", [value * args.concurrency for value in pipe.runs])
    series = [pipe, full, ideal, enqueue_only, end_to_end]
    mean_batch = statistics.median(run.mean_batch_size for run in runs)
    max_batch = max(run.max_batch_size for run in runs)
    cores = os.cpu_count()

    out.print(f"[bold]Slimline throughput[/]: {args.documents} documents × {args.repeats} repeats, "
              f"concurrency {args.concurrency}, batch size {args.batch_size}", soft_wrap=True)
    out.print(f"{extractor.name} {extractor.version} ({', '.join(extractor.nlp.pipe_names)}), "
              f"spaCy {importlib.metadata.version('spacy')}, {cores} CPU cores, 1 thread per process", soft_wrap=True)
    table = Table(caption=f"docs/s: median of the runs · vs pipe: ÷ nlp.pipe in process\n"
                          f"vs ideal: ÷ nlp.pipe × {args.concurrency} (perfect scaling, spaCy only)")
    table.add_column("measurement")
    table.add_column("docs/s", justify="right")
    table.add_column("runs", justify="right")
    table.add_column("vs pipe", justify="right")
    table.add_column("vs ideal", justify="right")
    for entry in series:
        table.add_row(entry.label, f"{entry.median:,.0f}", " ".join(f"{value:,.0f}" for value in entry.runs),
                      f"{entry.median / pipe.median:.2f}", f"{entry.median / ideal.median:.2f}")
    out.print(table)
    out.print(f"worker batch size, per document: mean {mean_batch:.1f} (median of the runs), "
              f"max {max_batch} (limit {args.batch_size})", soft_wrap=True)

    if args.json:
        summary = {
            "config": {"documents": args.documents, "repeats": args.repeats, "concurrency": args.concurrency,
                       "batch_size": args.batch_size, "cpu_cores": cores, "model": extractor.name,
                       "model_version": extractor.version, "spacy": importlib.metadata.version("spacy")},
            "docs_per_second": {
                key: {"median": entry.median, "runs": entry.runs}
                for key, entry in zip(["in_process_pipe", "in_process_extractor", "ideal_pipe_x_concurrency",
                                       "enqueue", "end_to_end"], series, strict=True)
            },
            "ratios": {
                "end_to_end_vs_pipe": end_to_end.median / pipe.median,
                "end_to_end_vs_ideal": end_to_end.median / ideal.median,
                "end_to_end_vs_extractor": end_to_end.median / full.median,
                "extractor_vs_pipe": full.median / pipe.median,
            },
            "batch_size": {"mean": mean_batch, "max": max_batch},
            "end_to_end_runs": [asdict(run) for run in runs],
        }
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
        out.print(f"JSON summary written to {args.json}", soft_wrap=True)


if __name__ == "__main__":
    main()
