"""What the latency benchmarks share: a database per run (SQLite, or PostgreSQL in a throwaway cluster),
nearest-rank percentiles, JSON without infinities, and the run over the chosen databases."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from tests.support.services import PostgresCluster, postgres_binaries_missing


@contextmanager
def database_url(kind: str, root: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{root}/bench.db"
        return
    cluster = PostgresCluster().init()
    try:
        yield cluster.create_database("slimline_bench")
    finally:
        cluster.destroy()


def postgres_processes(url: str) -> list[int]:
    """The PostgreSQL server listening on ``url``'s port and its backends (none for SQLite)."""
    from sqlalchemy.engine import make_url

    from benchmarks.documents_path import children_of

    port = make_url(url).port
    if port is None:
        return []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if command and command[0].endswith(b"postgres") and str(port).encode() in command:
                return [int(entry.name), *children_of(int(entry.name))]
    return []


def percentile(values: list[float], share: float) -> float:
    """Nearest rank; values may hold infinities (requests never answered)."""
    ordered = sorted(values)
    return ordered[max(int(np.ceil(share / 100 * len(ordered))) - 1, 0)]


def finite(value: Any) -> Any:
    """JSON has no infinity: a latency that never ended is written as null."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return value


def run_per_database(args: argparse.Namespace, report: Any, run_database: Callable[[str, argparse.Namespace, Any], None],
                     print_report: Callable[[Any], None], out: Console) -> None:
    """Run each of ``args.databases`` (PostgreSQL skipped, with a note, without its server binaries), print the
    report with the load average around it, and write it as JSON to ``args.json`` if given. ``report`` is a
    dataclass with ``config`` and ``notes``."""
    report.config = {key: value for key, value in vars(args).items() if key != "json"} | {
        "load_average_at_start": os.getloadavg()}
    started = time.perf_counter()
    for kind in args.databases:
        if kind == "postgres" and (missing := postgres_binaries_missing()):
            report.notes.append(f"postgres skipped: {missing}")
            continue
        run_database(kind, args, report)
    report.config["minutes"] = (time.perf_counter() - started) / 60
    report.config["load_average_at_end"] = os.getloadavg()
    print_report(report)
    out.print(f"load average (1, 5, 15 min) at start {report.config['load_average_at_start']}, at end "
              f"{report.config['load_average_at_end']}; {report.config['minutes']:.1f} minutes", soft_wrap=True)
    if args.json:
        args.json.write_text(json.dumps(finite(asdict(report)), indent=2, default=str) + "\n")
        out.print(f"JSON written to {args.json}")
