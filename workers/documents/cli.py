"""`slimline review documents list|show|resolve`: a person decides the documents the models were unsure of.

A resolution is a new version of tier ``human`` that supersedes the compact or escalated result without
erasing it, and is audited with who and when."""

from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer
from rich.table import Table

from schemas import Kind
from workers.cli.common import CliError, ExitCode, console, out, store

review_app = typer.Typer(help="Documents waiting for a person: list, show, resolve.", no_args_is_help=True)
NEEDS_REVIEW = "needs_review"


@review_app.command("list")
def review_list(limit: Annotated[int, typer.Option(help="At most this many.")] = 50) -> None:
    """Documents whose current result needs a person (class score or margin below the thresholds)."""
    rows = store().current_results(Kind.documents, review_status=NEEDS_REVIEW, limit=limit)
    table = Table("id", "tier", "class", "score", "margin", "language", "summary")
    for row in rows:
        result = row["result"]
        classification = result.get("classification") or {}
        table.add_row(row["item_id"], row["tier"], str(classification.get("label")),
                      f"{classification.get('score', 0):.2f}", f"{classification.get('margin', 0):.2f}",
                      str(result.get("language")), (result.get("summary") or {}).get("text", "")[:80])
    out.print(table)
    console.print(f"{len(rows)} document(s) need review")


@review_app.command("show")
def review_show(item_id: Annotated[str, typer.Argument(help="The document's id.")]) -> None:
    """Every version of one document's result, oldest first."""
    versions = store().history(Kind.documents, item_id)
    if not versions:
        raise CliError(f"no document result with id {item_id!r}", ExitCode.USAGE)
    for version in versions:
        out.print_json(json.dumps(version, default=str))


@review_app.command("resolve")
def review_resolve(
    item_id: Annotated[str, typer.Argument(help="The document's id.")],
    label: Annotated[str, typer.Option("--label", help="The class a person chose.")],
    note: Annotated[str | None, typer.Option(help="Why, for the audit log.")] = None,
    reviewer: Annotated[str, typer.Option("--as", help="Who decides (default: your user name).")] = "",
) -> None:
    """Set the class of a document as a person decided it: a new current version, audited."""
    outcome_store = store()
    current = outcome_store.current_results(Kind.documents, item_ids=[item_id])
    if not current:
        raise CliError(f"no document result with id {item_id!r}", ExitCode.USAGE)
    result = dict(current[0]["result"])
    result["classification"] = {"label": label, "score": 1.0, "margin": 1.0, "method": "human",
                                "model": None, "previous": result.get("classification")}
    reviewed = outcome_store.review(Kind.documents, item_id, actor=reviewer or getpass.getuser(),
                                    review_status="resolved", result=result, note=note)
    console.print(f"[green]resolved[/] {item_id} as {label!r} (version {reviewed['version']}, by "
                  f"{reviewed['producer']})")
