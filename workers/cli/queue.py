"""`enqueue`, `drain`, `status`, `health`: put work in, watch it go, check the system.

Everything here but `enqueue` is read-only: no message is fetched, moved or held."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from rich.table import Table

from schemas import ItemError, Kind
from workers.cli.common import CliError, ExitCode, broker, console, out, progress, settings, store
from workers.pipelines import PIPELINE_KINDS


def read_items(stream: TextIO | Any) -> Iterator[Any]:
    """Yield parsed objects from JSON Lines (or from one JSON array), or RejectedItem for lines that are
    not UTF-8 or not JSON."""
    from workers.client import RejectedItem

    first = stream.peek(1)[:1] if hasattr(stream, "peek") else b""
    if first == b"[":
        try:
            items = json.load(stream)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CliError(f"the input starts with '[' but is not a JSON array ({error}); "
                           "Slimline reads JSON Lines: one object per line", ExitCode.USAGE) from None
        yield from items
        return
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
            yield RejectedItem(number, None, [ItemError(
                field="line", reason=f"not valid JSON: {error.msg} (column {error.colno}); "
                                     "expected JSON Lines, one object per line")])


def _count_items(path: Path) -> int | None:
    with path.open("rb") as handle:
        if handle.read(1) == b"[":
            return None
        handle.seek(0)
        return sum(1 for line in handle if line.strip())


def open_source(source: str) -> tuple[Any, int | None]:
    if source == "-":
        return sys.stdin.buffer, None
    path = Path(source)
    if not path.is_file():
        raise CliError(f"no such file: {source}", ExitCode.USAGE)
    return path.open("rb"), _count_items(path)


def enqueue(
    kind: Annotated[Kind, typer.Argument(help="documents, transactions or products")],
    source: Annotated[str, typer.Argument(help="A JSON Lines file (or one JSON array), or - for standard input.")],
) -> None:
    """Validate each item and enqueue the good ones; report the bad ones by line number.
    Exit 0: all enqueued; 4: some rejected; 5: none enqueued; 3: queue full; 6: Redis unreachable."""
    report = send_file(kind, source)
    raise typer.Exit(report.exit_code)


def send_file(kind: Kind, source: str) -> Any:
    from workers.client import QueueFull, enqueue as send
    from workers.runtime.publish import NotReplicated

    stream, total = open_source(source)
    broker()  # reachable, or one clear line
    with stream, progress() as bar:
        task = bar.add_task(f"enqueue {kind.value}", total=total)
        try:
            report = send(kind, read_items(stream), on_progress=lambda n: bar.advance(task, n))
        except QueueFull as error:
            raise CliError(str(error), ExitCode.QUEUE_FULL) from None
        except NotReplicated as error:
            raise CliError(str(error), ExitCode.UNREACHABLE) from None
    console.print(f"[green]{report.accepted} enqueued[/], [yellow]{len(report.rejected)} rejected[/]"
                  + (" (stored: `slimline rejections list`)" if report.rejected and report.recorded else ""))
    for rejected in report.rejected[:50]:
        reasons = "; ".join(f"{error.field}: {error.reason}" for error in rejected.errors)
        console.print(f"  line {rejected.position}" + (f" (id {rejected.item_id})" if rejected.item_id else "")
                      + f": {reasons}")
    if len(report.rejected) > 50:
        console.print(f"  … and {len(report.rejected) - 50} more")
    return report


def drain(
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds (exit 1).")] = 600.0,
    worker_grace: Annotated[float, typer.Option(
        help="Exit 7 if a non-empty queue has had no live worker for this many seconds.")] = 15.0,
) -> None:
    """Wait until every queue is empty and no message is in flight (all outcomes stored).
    Exit 0: drained; 1: timed out; 7: work waits and no live worker consumes it; 6: Redis unreachable."""
    wait_for_drain(timeout, worker_grace)


def wait_for_drain(timeout: float, worker_grace: float, total: int | None = None) -> None:
    from workers.runtime.queues import in_flight, outstanding, queue_depths, unserved_queues

    client = broker()
    total = total if total is not None else outstanding(client)
    deadline = time.monotonic() + timeout
    unserved_since: float | None = None
    quiet_polls = 0
    with progress() as bar:
        task = bar.add_task("drain: stored", total=max(total, 1) if total else None)
        while True:
            remaining = outstanding(client)
            total = max(total, remaining)
            bar.update(task, total=max(total, 1), completed=total - remaining)
            quiet_polls = quiet_polls + 1 if remaining == 0 else 0
            if quiet_polls >= 2:
                break
            unserved = unserved_queues(client)
            now = time.monotonic()
            unserved_since = (unserved_since or now) if unserved else None
            if unserved and now - unserved_since >= worker_grace:
                raise CliError(f"no live worker consumes {', '.join(unserved)} ({remaining} message(s) waiting): "
                               f"start one with {' and '.join(_worker_command(queue) for queue in unserved)}",
                               ExitCode.NO_WORKER)
            if now >= deadline:
                raise CliError(f"timed out after {timeout:.0f}s: {queue_depths(client, PIPELINE_KINDS)} queued, "
                               f"{in_flight(client)} in flight", ExitCode.FAILED)
            time.sleep(0.25)
    console.print("[green]drained[/]")


def _worker_command(queue: str) -> str:
    kind, _, escalate = queue.partition(".")
    return f"`slimline worker --queues {kind}{' --tier escalated' if escalate else ''}`"


def status() -> None:
    """Queue depths, messages in flight, live workers per queue, stored outcome counts (read-only)."""
    from workers.runtime.queues import in_flight, live_workers, queue_depths

    client = broker()
    workers = live_workers(client)
    table = Table("what", "count")
    for queue, depth in queue_depths(client).items():
        table.add_row(f"queue {queue}", str(depth))
        table.add_row(f"workers on {queue}", str(sum(queue in worker.queues for worker in workers)))
    table.add_row("in flight (unacked)", str(in_flight(client)))
    table.add_row("workers", str(len(workers)))
    for name, count in store().counts().items():
        table.add_row(name, str(count))
    out.print(table)
    _warn_about_signing(client)


def _warn_about_signing(client: Any) -> None:
    from workers.cli.security import signing_warnings

    for warning in signing_warnings(client):
        console.print(f"[yellow]warning[/]: {warning}")


def health() -> None:
    """Exit 0 when Redis and the database are usable (6 if not; 2 if the database is not migrated);
    list the live workers per queue (a worker need not be running)."""
    from workers.runtime.queues import describe_redis, live_workers

    client = broker()
    store().engine.dispose()
    console.print(f"[green]ok[/]: {describe_redis(settings())} and the database are usable")
    workers = live_workers(client)
    for kind in Kind:
        serving = [f"{worker.host}:{worker.pid}" for worker in workers if kind.value in worker.queues]
        console.print(f"  {kind.value}: {len(serving)} live worker(s)" + (f" ({', '.join(serving)})" if serving else ""))
    _warn_about_signing(client)
