"""What every command shares: consoles, exit codes, expected failures, and access to Redis and the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import redis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import make_url

from workers.settings import Settings, get_settings

if TYPE_CHECKING:
    from workers.db.store import OutcomeStore

console = Console(stderr=True)  # messages for people
out = Console()  # data: results, tables


class ExitCode:
    """Exit codes a script can trust (README, "Exit codes")."""

    OK = 0
    FAILED = 1  # e.g. `drain` timed out
    USAGE = 2  # bad arguments, missing input file, database not migrated
    QUEUE_FULL = 3
    SOME_REJECTED = 4
    NONE_ACCEPTED = 5
    UNREACHABLE = 6  # Redis or the database cannot be reached
    NO_WORKER = 7  # a queue holds work and no live worker consumes it


class CliError(Exception):
    """An expected failure: printed as one line a person can act on, never a traceback."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def settings() -> Settings:
    return get_settings()


def broker() -> redis.Redis:
    from workers.runtime.queues import BrokerUnreachable, inspection_client

    try:
        return inspection_client(settings())
    except BrokerUnreachable as error:
        raise CliError(str(error), ExitCode.UNREACHABLE) from None


def describe_database(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite database {parsed.database}"
    return f"{parsed.get_backend_name()} database {parsed.database} on {parsed.host}:{parsed.port or 'default port'}"


def store(must_exist: bool = True) -> OutcomeStore:
    """The outcome store, after checking the database is reachable and migrated (without creating an
    empty SQLite file where there was none)."""
    from sqlalchemy.exc import OperationalError

    from workers.db.engine import schema_is_current
    from workers.db.store import OutcomeStore

    url = settings().database_url.get_secret_value()
    parsed = make_url(url)
    where = describe_database(url)
    if parsed.get_backend_name() == "sqlite" and must_exist and parsed.database and not Path(parsed.database).exists():
        raise CliError(f"no {where} here: run `slimline migrate` first, or set SLIMLINE_DATABASE_URL", ExitCode.USAGE)
    try:
        current = schema_is_current(url)
    except OperationalError:
        raise CliError(f"cannot reach the {where}: check SLIMLINE_DATABASE_URL and that the server runs",
                       ExitCode.UNREACHABLE) from None
    if not current:
        raise CliError(f"the {where} is not migrated to this version: run `slimline migrate`", ExitCode.USAGE)
    return OutcomeStore.from_url(url)


@contextmanager
def progress() -> Iterator[Progress]:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        yield bar
