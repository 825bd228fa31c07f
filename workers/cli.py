"""``slimline``: run workers, enqueue work, watch it drain, read results."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from schemas import ItemError, Kind
from workers.pipelines import PIPELINE_KINDS
from workers.settings import get_settings

app = typer.Typer(help="Slimline: language AI on your own CPUs, in batches, over Redis queues.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
dlq_app = typer.Typer(help="Dead letters: items that kept failing.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
console = Console(stderr=True)
out = Console()


def _kinds(queues: str) -> list[Kind]:
    try:
        return [Kind(name.strip()) for name in queues.split(",") if name.strip()]
    except ValueError as error:
        raise typer.BadParameter(f"{error}; queues are: {', '.join(k.value for k in Kind)}") from None


def _store():  # type: ignore[no-untyped-def]
    from workers.db.store import OutcomeStore

    return OutcomeStore.from_url(get_settings().database_url.get_secret_value())


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema (Alembic)."""
    from workers.db.engine import migrate as run_migrations

    run_migrations(get_settings().database_url.get_secret_value())
    console.print("[green]database schema is up to date[/]")


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues to consume.")] = "documents",
    concurrency: Annotated[int, typer.Option(min=1, help="Pool processes (one per core is a good start).")] = 2,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Start a Celery worker for the given queues, with Slimline's batching and delivery settings."""
    kinds = _kinds(queues)
    missing = [kind.value for kind in kinds if kind not in PIPELINE_KINDS]
    if missing:
        console.print(f"[red]no pipeline for {', '.join(missing)} yet[/]: their messages wait in Redis until one lands")
        raise typer.Exit(2)
    settings = get_settings()
    from workers.db.engine import schema_is_current

    if not schema_is_current(settings.database_url.get_secret_value()):
        console.print("[red]the database schema is missing or out of date[/]: run `slimline migrate` first")
        raise typer.Exit(2)
    from tasks.app import app as celery_app

    celery_app.conf.slimline_consumed_kinds = [kind.value for kind in kinds]
    largest_batch = max(settings.batch_policy(kind).max_batch_size for kind in kinds)
    # Unacked messages count against the prefetch limit, and a batch's messages stay unacked until
    # stored: leave room for one batch per pool process plus one filling up.
    multiplier = math.ceil((concurrency + 1) * largest_batch / concurrency)
    celery_app.worker_main([
        "worker", "--queues", ",".join(kind.value for kind in kinds), "--concurrency", str(concurrency),
        "--pool", "prefork", "--loglevel", loglevel, "--prefetch-multiplier", str(multiplier),
        "--hostname", f"slimline-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
    ])  # fmt: skip


def _read_jsonl(stream: TextIO | Any) -> Iterator[Any]:
    """Yield parsed objects, or RejectedItem for lines that are not UTF-8 or not JSON."""
    from workers.client import RejectedItem

    for number, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as error:
            yield RejectedItem(number, None, [ItemError(field="line", reason=f"not valid UTF-8 at byte {error.start}")])
            continue
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as error:
            yield RejectedItem(number, None, [ItemError(field="line", reason=f"not valid JSON: {error.msg} "
                                                                            f"(column {error.colno})")])


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


@app.command()
def enqueue(
    kind: Annotated[Kind, typer.Argument(help="documents, transactions or products")],
    source: Annotated[str, typer.Argument(help="A JSON Lines file, or - for standard input.")],
) -> None:
    """Validate each line and enqueue the good ones; report the bad ones with line numbers."""
    from workers.client import QueueFull, enqueue as send

    total = None if source == "-" else _count_lines(Path(source))
    stream = sys.stdin.buffer if source == "-" else Path(source).open("rb")
    with stream, _progress() as progress:
        bar = progress.add_task(f"enqueue {kind.value}", total=total)
        try:
            report = send(kind, _read_jsonl(stream), on_progress=lambda n: progress.advance(bar, n))
        except QueueFull as error:
            console.print(f"[red]{error}[/]")
            raise typer.Exit(3) from None
    console.print(f"[green]{report.accepted} enqueued[/], [yellow]{len(report.rejected)} rejected[/]")
    for rejected in report.rejected[:50]:
        reasons = "; ".join(f"{error.field}: {error.reason}" for error in rejected.errors)
        console.print(f"  line {rejected.position}" + (f" (id {rejected.item_id})" if rejected.item_id else "")
                      + f": {reasons}")
    if len(report.rejected) > 50:
        console.print(f"  … and {len(report.rejected) - 50} more")


@contextmanager
def _progress() -> Iterator[Progress]:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        yield progress


@app.command()
def drain(
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds (exit 1).")] = 600.0,
) -> None:
    """Wait until every queue is empty and no message is in flight (all outcomes stored)."""
    from tasks.app import app as celery_app
    from workers.runtime.queues import broker_client, in_flight, queue_depths, wait_until_drained

    client = broker_client(celery_app)
    with _progress() as progress:
        progress.add_task("drain: waiting for queues to empty and in-flight work to be stored", total=None)
        drained = wait_until_drained(client, timeout, kinds=PIPELINE_KINDS)
    if not drained:
        console.print(f"[red]timed out after {timeout:.0f}s: {queue_depths(client, PIPELINE_KINDS)} queued, "
                      f"{in_flight(client)} in flight[/]")
        raise typer.Exit(1)
    console.print("[green]drained[/]")


@app.command()
def results(
    kind: Annotated[Kind, typer.Argument(help="documents, transactions or products")],
    format: Annotated[str, typer.Option("--format", help="jsonl or table")] = "table",
    limit: Annotated[int | None, typer.Option(help="At most this many rows.")] = None,
) -> None:
    """Print stored results."""
    from workers.db.store import RESULT_TABLES

    if kind not in RESULT_TABLES:
        console.print(f"no results are stored for {kind.value} yet")
        raise typer.Exit(0)
    rows = _store().iter_rows(RESULT_TABLES[kind], limit=limit)
    if format == "jsonl":
        for row in rows:
            out.print_json(json.dumps(row, default=str), indent=None)
        return
    table = Table("id", "language", "entities", "model", "batch")
    for row in rows:
        entities = ", ".join(f"{e['text']} [{e['label']}]" for e in row["entities"])
        table.add_row(row["document_id"], row["language"] or "", entities,
                      f"{row['model']} {row['model_version']}", str(row["batch_size"]))
    out.print(table)


@app.command()
def status() -> None:
    """Queue depths, messages in flight, live workers, stored outcome counts."""
    from tasks.app import app as celery_app
    from workers.runtime.queues import broker_client, in_flight, queue_depths

    client = broker_client(celery_app)
    table = Table("what", "count")
    for queue, depth in queue_depths(client).items():
        table.add_row(f"queue {queue}", str(depth))
    table.add_row("in flight (unacked)", str(in_flight(client)))
    table.add_row("workers", str(len(celery_app.control.ping(timeout=1.0) or [])))
    for name, count in _store().counts().items():
        table.add_row(name, str(count))
    out.print(table)


@dlq_app.command("list")
def dlq_list(all: Annotated[bool, typer.Option("--all", help="Include replayed ones.")] = False) -> None:
    """Show dead letters: payload id, error, attempts."""
    table = Table("message id", "kind", "item", "attempts", "error", "replayed")
    for letter in _store().dead_letters(include_replayed=all):
        table.add_row(letter.message_id, letter.kind, letter.item_id or "", str(letter.attempts),
                      letter.error[:80], str(letter.replayed_at or ""))
    out.print(table)


@dlq_app.command("replay")
def dlq_replay(ids: Annotated[list[str] | None, typer.Argument(help="Message ids; none means all.")] = None) -> None:
    """Enqueue dead letters again as fresh first attempts (on behalf of their original producer)."""
    from tasks.app import app as celery_app
    from workers.client import send_item

    settings = get_settings()
    store = _store()
    letters = store.dead_letters(ids or None)
    for letter in letters:
        # Marked first: if the replay fails again quickly, its new dead letter reopens this one.
        store.mark_replayed([letter.message_id])
        try:
            send_item(celery_app, Kind(letter.kind), letter.payload,
                      {"producer": letter.producer} if letter.producer else {}, task_id=letter.message_id)
        except Exception:
            store.mark_replayed([letter.message_id], replayed=False)
            raise
    store.audit(settings.producer_id, "dlq.replay", None, {"message_ids": [letter.message_id for letter in letters]})
    console.print(f"replayed {len(letters)} dead letter(s)")


@app.command("model-manifest")
def model_manifest(
    model_dir: Annotated[Path, typer.Argument(help="A spaCy model folder (with meta.json).")],
    out_dir: Annotated[Path, typer.Option(help="Where to write the manifest (SLIMLINE_MODEL_MANIFEST_DIR).")],
) -> None:
    """Record the SHA-256 of every file of a local model, so workers can verify it before loading."""
    import spacy

    from workers.models.integrity import write_manifest

    meta = spacy.util.load_meta(model_dir / "meta.json")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = write_manifest(f"{meta['lang']}_{meta['name']}", meta["version"], model_dir, manifest_dir=out_dir)
    console.print(f"wrote {path}")


@app.command()
def run(
    source: Annotated[Path | None, typer.Argument(help="Documents to process (JSON Lines); default: bundled sample.")] = None,
    concurrency: Annotated[int, typer.Option(min=1)] = 2,
) -> None:
    """The main job on embedded defaults: private Redis (unless SLIMLINE_REDIS_URL is set), SQLite,
    one worker; process the documents and show the results."""
    from workers.runtime.redis_server import RedisServer

    settings = get_settings()
    redis_server = None
    if settings.redis_url is None:
        redis_server = RedisServer(settings.data_dir / "redis").start()
        os.environ["SLIMLINE_REDIS_URL"] = redis_server.url
        get_settings.cache_clear()
        console.print(f"started a private Redis server on port {redis_server.port}")
    worker_process = None
    try:
        migrate()
        worker_process = subprocess.Popen([sys.executable, "-m", "workers.cli", "worker", "--queues", "documents",
                                           "--concurrency", str(concurrency), "--loglevel", "WARNING"])
        with resources.as_file(resources.files("workers.documents") / "data" / "sample_documents.jsonl") as sample:
            enqueue(Kind.documents, str(source or sample))
        drain(timeout=600)
        results(Kind.documents, format="table", limit=None)
        status()
    finally:
        if worker_process is not None:
            worker_process.terminate()
            try:
                worker_process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker_process.kill()
        if redis_server is not None:
            redis_server.stop()


if __name__ == "__main__":
    app()
