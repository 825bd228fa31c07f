"""What every command shares: consoles, exit codes, expected failures, and access to Redis and the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import redis
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from workers.settings import Settings, get_settings

if TYPE_CHECKING:
    from workers.db.store import OutcomeStore

console = Console(stderr=True, soft_wrap=True)  # messages for people: a line stays one line (the terminal wraps it)
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


def print_error(message: str) -> None:
    """One line, verbatim: brackets in a message are not markup, and a long path is not broken by a newline."""
    console.print(f"[red]error[/]: {escape(message)}", highlight=False)


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


def store(must_exist: bool = True) -> OutcomeStore:
    """The outcome store, after checking the database is reachable and migrated (without creating an
    empty SQLite file where there was none)."""
    from workers.db.engine import database_problem
    from workers.db.store import OutcomeStore

    url = settings().database_url.get_secret_value()
    problem = database_problem(url, must_exist)
    if problem is not None:
        message, unreachable = problem
        raise CliError(message, ExitCode.UNREACHABLE if unreachable else ExitCode.USAGE)
    return OutcomeStore.from_url(url)


@contextmanager
def progress() -> Iterator[Progress]:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        yield bar
