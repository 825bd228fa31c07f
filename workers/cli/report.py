"""``slimline report``: for a period, items, CPU seconds, latency and cost per kind, tier, model version, language
and stage; the same work priced at a hosted LLM; accuracy where a person reviewed; accuracy per cost.

Exit codes: 0 done; 2 a bad period or output file, or the database is not migrated; 6 the database cannot be
reached."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from workers.cli.common import CliError, ExitCode, console, out, settings, store

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Format(str, Enum):
    table = "table"
    json = "json"


def parse_moment(text: str, now: datetime) -> datetime:
    """``30m``, ``24h``, ``7d``, ``2w`` before now, or an ISO date or datetime (UTC unless it says otherwise)."""
    relative = _RELATIVE.match(text.strip())
    if relative:
        return now - timedelta(**{_UNITS[relative.group(2)]: float(relative.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(f"cannot read {text!r} as a time: give 30m, 24h, 7d, 2w, or an ISO date such as 2024-05-01 "
                       "or 2024-05-01T08:00", ExitCode.USAGE) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def report(
    since: Annotated[str, typer.Option(help="Start of the period: 30m, 24h, 7d, 2w ago, or an ISO date/time (UTC).")]
    = "7d",
    until: Annotated[str | None, typer.Option(help="End of the period (default: now), same forms.")] = None,
    output_format: Annotated[Format, typer.Option("--format", help="table (terminal) or json (stdout).")]
    = Format.table,
    html_file: Annotated[Path | None, typer.Option("--html", help="Also write an HTML report with plots here.")]
    = None,
) -> None:
    """Cost and accuracy per cost: items, CPU seconds, latency and cost per 1,000 items per kind, tier, model
    version, language and stage, beside a hosted LLM's price; accuracy where a person reviewed."""
    from sqlalchemy.exc import SQLAlchemyError

    from workers.report.build import build_report
    from workers.report.render import to_json, to_terminal

    now = datetime.now(timezone.utc)
    start, end = parse_moment(since, now), parse_moment(until, now) if until else now
    if start >= end:
        raise CliError(f"the period is empty: --since {since} is not before --until {until or 'now'}", ExitCode.USAGE)
    outcome_store = store()
    try:
        built = build_report(outcome_store, settings().report, start, end)
    except SQLAlchemyError as error:
        raise CliError(f"database error ({type(error).__name__}): check SLIMLINE_DATABASE_URL", ExitCode.UNREACHABLE) \
            from None
    finally:
        outcome_store.engine.dispose()
    if output_format is Format.json:
        print(to_json(built))  # plain JSON on stdout, for jq and scripts
    else:
        to_terminal(built, out if out.is_terminal else Console(width=160))  # a log file keeps the tables readable
    if html_file is not None:
        write_html(built, html_file)


def write_html(built: dict, path: Path) -> None:
    from workers.report.plots import all_plots
    from workers.report.render import to_html

    with console.status("drawing the plots…"):
        page = to_html(built, all_plots(built))
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot write {path}: {error.strerror}", ExitCode.USAGE) from None
    console.print(f"HTML report written to {path}")
