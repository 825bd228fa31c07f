"""`slimline worker` and `slimline migrate`: run the consumers, prepare the database.

`slimline worker` is a thin wrapper around `celery -A tasks.app worker`: everything a worker does at start
and stop is a bootstep of the app (workers/lifecycle/), so both commands start the same worker."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from schemas import Kind
from workers.cli.common import CliError, ExitCode, console, settings
from workers.db.engine import describe_database
from workers.pipelines import ESCALATING_KINDS, PIPELINE_KINDS
from workers.runtime.names import ESCALATION_QUEUES, QUEUES


def parse_kinds(queues: str) -> list[Kind]:
    try:
        return [Kind(name.strip()) for name in queues.split(",") if name.strip()]
    except ValueError as error:
        raise CliError(f"{error}; queues are: {', '.join(k.value for k in Kind)}", ExitCode.USAGE) from None


def migrate() -> None:
    """Create or upgrade the database schema (Alembic)."""
    from sqlalchemy.exc import OperationalError

    from workers.db.engine import migrate as run_migrations

    url = settings().database_url.get_secret_value()
    try:
        run_migrations(url)
    except OperationalError:
        raise CliError(f"cannot reach the {describe_database(url)}: check SLIMLINE_DATABASE_URL",
                       ExitCode.UNREACHABLE) from None
    console.print(f"[green]database schema is up to date[/] ({describe_database(url)})")


def celery_worker_arguments(kinds: list[Kind], concurrency: int, loglevel: str, tier: str,
                            lane: str | None = None) -> list[str]:
    """The `celery worker` command line this command runs (also what to write in a unit file or a
    container spec to start the same worker with plain Celery)."""
    queues = [ESCALATION_QUEUES[kind] if tier == "escalated" else QUEUES[kind] for kind in kinds]
    return ["worker", "--queues", ",".join(queues), "--tier", tier, *(["--lane", lane] if lane else []),
            "--concurrency", str(concurrency), "--pool", "prefork", "--loglevel", loglevel,
            "--hostname", f"slimline-{os.getpid()}@%h", "--without-gossip", "--without-mingle"]


def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues to consume.")] = "documents",
    concurrency: Annotated[int, typer.Option(min=1, help="Pool processes (one per core is a good start).")] = 2,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    tier: Annotated[str, typer.Option(
        help="compact; or escalated: consume the kinds' escalation queues with the bigger configuration.")] = "compact",
    lane: Annotated[str | None, typer.Option(
        help="urgent: consume the kinds' urgent lane (documents.urgent) instead of their bulk queues.")] = None,
) -> None:
    """Start a Celery worker for the given queues, with Slimline's batching and delivery settings (the same
    worker as `celery -A tasks.app worker -Q QUEUES`). It refuses to start (exit 2, one line) without
    producer keys unless SLIMLINE_ALLOW_UNSIGNED=true, with an unmigrated database, and with a missing or
    wrong key for an encrypted model."""
    kinds = parse_kinds(queues)
    if tier not in ("compact", "escalated"):
        raise CliError(f"unknown tier {tier!r}: use compact or escalated", ExitCode.USAGE)
    if tier == "escalated" and (plain := [kind.value for kind in kinds if kind not in ESCALATING_KINDS]):
        raise CliError(f"{', '.join(plain)} has no escalation queue", ExitCode.USAGE)
    missing = [kind.value for kind in kinds if kind not in PIPELINE_KINDS]
    if missing:
        raise CliError(f"no pipeline for {', '.join(missing)} yet: their messages wait in Redis until one lands",
                       ExitCode.USAGE)
    from tasks.app import app as celery_app

    celery_app.worker_main(celery_worker_arguments(kinds, concurrency, loglevel, tier, lane))
