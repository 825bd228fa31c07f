"""`slimline run`: the main job on embedded defaults, and an orderly stop on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from schemas import Kind
from workers.cli.common import CliError, ExitCode, console, settings
from workers.cli.outcomes import print_results
from workers.cli.queue import send_file, status, wait_for_drain
from workers.cli.worker import migrate
from workers.settings import get_settings

WORKER_START_SECONDS = 180
DEMO_PRODUCTS = 5


def run(
    source: Annotated[Path | None, typer.Argument(help="Documents to process (JSON Lines); default: bundled sample.")] = None,
    concurrency: Annotated[int, typer.Option(min=1)] = 2,
    products: Annotated[bool | None, typer.Option(
        "--products/--no-products", help="Also write descriptions of a few bundled products "
                                         "(default: only with the bundled documents).")] = None,
) -> None:
    """The main job on embedded defaults: a private Redis (unless SLIMLINE_REDIS_URL is set), SQLite, one
    worker; process the documents and show their results. Ctrl-C stops everything in order."""
    if source is not None and not source.is_file():
        raise CliError(f"no such file: {source}", ExitCode.USAGE)
    with resources.as_file(resources.files("workers.documents") / "data" / "sample_documents.jsonl") as sample:
        _run(source or sample, concurrency, source is None if products is None else products)


def _run(source: Path, concurrency: int, products: bool) -> None:
    from workers.runtime.redis_server import RedisServer

    redis_server = None
    workers: list[subprocess.Popen[bytes]] = []
    try:
        if settings().redis_url is None:
            redis_server = RedisServer(settings().data_dir / "redis").start()
            os.environ["SLIMLINE_REDIS_URL"] = redis_server.url
            # A private loopback Redis for one machine: signing is not required (the workers warn).
            os.environ.setdefault("SLIMLINE_ALLOW_UNSIGNED", "true")
            get_settings.cache_clear()
            console.print(f"started a private Redis server on port {redis_server.port}")
        migrate()
        workers.append(_start_worker(concurrency, "compact", "documents"))
        workers.append(_start_worker(1, "escalated", "documents"))  # the bigger configuration, for hard cases
        if products:
            workers.append(_start_worker(1, "compact", "products"))
        for worker in workers:
            _wait_until_ready(worker)
        report = send_file(Kind.documents, str(source))
        product_report = _send_products() if products else None
        wait_for_drain(timeout=900, worker_grace=30,
                       total=report.accepted + (product_report.accepted if product_report else 0))
        print_results(Kind.documents, item_ids=report.item_ids)
        if product_report is not None:
            print_results(Kind.products, item_ids=product_report.item_ids)
        status()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the orderly stop short
        console.print("[yellow]interrupted[/]: stopping the worker (running batches finish, the rest stays "
                      "queued), then Redis; nothing accepted is lost")
        raise typer.Exit(130) from None
    finally:
        for worker in workers:
            _stop_worker(worker)
        if redis_server is not None:
            _return_held_messages(redis_server.url)
            redis_server.stop()


def _send_products():  # type: ignore[no-untyped-def]
    """A few of the bundled products, and one asking for a language no template covers (a rejection)."""
    import json

    from workers.client import enqueue

    with resources.as_file(resources.files("workers.products") / "data" / "sample_products.jsonl") as sample:
        products = [json.loads(line) for line in sample.read_text().splitlines() if line.strip()]
    chosen = products[:DEMO_PRODUCTS] + [product for product in products[DEMO_PRODUCTS:]
                                         if not set(product["languages"]) <= {"en", "de", "fr", "es", "it"}][:1]
    console.print(f"enqueueing {len(chosen)} bundled products (English is written by the model, "
                  "other languages by templates)")
    report = enqueue(Kind.products, chosen)
    console.print(f"[green]{report.accepted} products enqueued[/], [yellow]{len(report.rejected)} rejected[/]")
    return report


def _start_worker(concurrency: int, tier: str, queue: str) -> subprocess.Popen[bytes]:
    """A worker in its own process group (Ctrl-C reaches only this command, which stops it in order),
    logging to a file."""
    name = queue if tier == "compact" else f"{queue}-{tier}"
    log_path = settings().data_dir / f"worker-{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    console.print(f"starting a {name} worker (models load in a few seconds; its log: {log_path})")
    with log_path.open("ab") as log:
        return subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--queues", queue,
                                 "--concurrency", str(concurrency), "--loglevel", "INFO", "--tier", tier],
                                stdout=log, stderr=log, start_new_session=True,
                                env=os.environ | {"SLIMLINE_METRICS_PORT": os.environ.get("SLIMLINE_METRICS_PORT", "0")})


def _wait_until_ready(worker: subprocess.Popen[bytes]) -> None:
    from workers.cli.common import broker
    from workers.runtime.queues import live_workers

    client = broker()
    deadline = time.monotonic() + WORKER_START_SECONDS
    while not any(live.pid == worker.pid for live in live_workers(client)):
        if worker.poll() is not None:
            raise CliError(f"the worker stopped while starting (exit {worker.returncode}): see "
                           f"the logs in {settings().data_dir}", ExitCode.FAILED)
        if time.monotonic() > deadline:
            raise CliError(f"the worker was not ready after {WORKER_START_SECONDS}s: see "
                           f"the logs in {settings().data_dir}", ExitCode.FAILED)
        time.sleep(0.2)
    console.print(f"worker {worker.pid} ready")


def _return_held_messages(url: str) -> None:
    """A warm stop returns what a worker holds; one killed after its grace period (or a stop that
    went wrong) may leave messages held. No worker uses this private Redis any more: return them now
    rather than after the visibility timeout of a later run."""
    from workers.runtime.broker import return_all_held_messages

    try:
        returned = return_all_held_messages(url)
    except Exception as error:  # noqa: BLE001 - Redis gone: the next run's workers restore them
        console.print(f"could not check for messages held by the stopped workers ({type(error).__name__}); "
                      "a later worker returns them after the visibility timeout")
        return
    if returned:
        console.print(f"returned {returned} message(s) still held by the stopped workers to their queues")


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """Warm shutdown: running batches finish and are stored, buffered messages go back to Redis."""
    if worker.poll() is not None:
        return
    worker.terminate()
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
