"""`slimline worker` and `slimline migrate`: run the consumers, prepare the database."""

from __future__ import annotations

import math
import os
from typing import Annotated

import typer

from schemas import Kind
from workers.cli.common import CliError, ExitCode, console, describe_database, settings
from workers.runtime.names import ESCALATION_QUEUES, QUEUES
from workers.pipelines import ESCALATING_KINDS, PIPELINE_KINDS
from workers.runtime.threads import lower_cpu_priority


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


def prefetch_multiplier(kinds: list[Kind], concurrency: int) -> int:
    """Unacked messages count against the prefetch limit, and a batch's messages stay unacked until
    stored: leave room for one batch per pool process plus one filling up — within the byte budget
    for messages a worker holds (SLIMLINE_WORKER_PREFETCH_BYTES / the largest message allowed)."""
    config = settings()
    largest_batch = max(config.batch_policy(kind).max_batch_size for kind in kinds)
    by_count = (concurrency + 1) * largest_batch
    by_bytes = max(config.worker_prefetch_bytes // config.max_message_bytes, concurrency + 1)
    return max(1, math.ceil(min(by_count, by_bytes) / concurrency))


def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues to consume.")] = "documents",
    concurrency: Annotated[int, typer.Option(min=1, help="Pool processes (one per core is a good start).")] = 2,
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
    tier: Annotated[str, typer.Option(
        help="compact; or escalated: consume the kinds' escalation queues with the bigger configuration.")] = "compact",
) -> None:
    """Start a Celery worker for the given queues, with Slimline's batching and delivery settings.
    It refuses to start (exit 2, one line) without producer keys unless SLIMLINE_ALLOW_UNSIGNED=true,
    and with a missing or wrong model key for an encrypted model."""
    kinds = parse_kinds(queues)
    if tier not in ("compact", "escalated"):
        raise CliError(f"unknown tier {tier!r}: use compact or escalated", ExitCode.USAGE)
    if tier == "escalated" and (plain := [kind.value for kind in kinds if kind not in ESCALATING_KINDS]):
        raise CliError(f"{', '.join(plain)} has no escalation queue", ExitCode.USAGE)
    missing = [kind.value for kind in kinds if kind not in PIPELINE_KINDS]
    if missing:
        raise CliError(f"no pipeline for {', '.join(missing)} yet: their messages wait in Redis until one lands",
                       ExitCode.USAGE)
    from workers.cli import security
    from workers.cli.common import store

    signed = security.check_signing(settings())
    security.check_audit_key()
    store().engine.dispose()  # reachable and migrated, or one clear line
    decrypted = security.open_encrypted_models(settings())  # before the pool forks: it inherits them
    security.install_log_masking()
    unmark = security.mark_unsigned(settings()) if not signed else None
    from tasks.app import app as celery_app

    celery_app.conf.slimline_settings = settings()
    celery_app.conf.slimline_consumed_kinds = [kind.value for kind in kinds]
    celery_app.conf.slimline_tier = tier
    celery_app.conf.slimline_decrypted_models = decrypted
    from workers.runtime import metrics

    config = settings()
    if Kind.transactions not in kinds and config.worker_nice:
        lower_cpu_priority(config.worker_nice)  # transactions get the CPU first
    endpoint = metrics.start_metrics_server(config, metrics.connectivity_check(config),
                                            queues=[kind.value for kind in kinds], processes=concurrency)
    try:
        _run_celery_worker(celery_app, kinds, concurrency, loglevel, tier)
    finally:
        endpoint.stop()
        if unmark is not None:
            unmark()


def _run_celery_worker(celery_app, kinds: list[Kind], concurrency: int, loglevel: str,  # type: ignore[no-untyped-def]
                       tier: str) -> None:
    queues = [ESCALATION_QUEUES[kind] if tier == "escalated" else QUEUES[kind] for kind in kinds]
    celery_app.worker_main([
        "worker", "--queues", ",".join(queues), "--concurrency", str(concurrency),
        "--pool", "prefork", "--loglevel", loglevel,
        "--prefetch-multiplier", str(prefetch_multiplier(kinds, concurrency)),
        "--hostname", f"slimline-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
    ])  # fmt: skip
