"""``slimline products review``: a person reads, approves or corrects a product's descriptions before
anything is published. Every decision goes through the store's audited ``review``.

Exit codes: 0 done; 1 no stored description for that product id; 2 bad arguments (a language the
result does not have, empty text, database not migrated); 6 the database cannot be reached.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from schemas import Kind
from workers.cli.common import CliError, ExitCode, console, out, print_error, settings, store

app = typer.Typer(help="Product descriptions: list, read, approve or correct drafts.", no_args_is_help=True)
review_app = typer.Typer(help="Review drafts before they are published.", no_args_is_help=True)
app.add_typer(review_app, name="review")

APPROVED = "approved"
_Actor = Annotated[str | None, typer.Option(
    help="Who decides (recorded in the audit log); default SLIMLINE_PRODUCER_ID.")]
_Note = Annotated[str | None, typer.Option(help="Why, for the audit log.")]


@contextmanager
def _expected_failures() -> Iterator[None]:
    """One line a person can act on and a documented exit code, never a traceback."""
    try:
        yield
    except CliError as error:
        print_error(str(error))
        raise typer.Exit(error.code) from None


def _current(item_id: str) -> dict[str, Any]:
    rows = store().current_results(Kind.products, item_ids=[item_id])
    if not rows:
        raise CliError(f"no stored description for product {item_id!r}: see `slimline products review list`",
                       ExitCode.FAILED)
    return rows[0]


@review_app.command("list")
def list_(
    status: Annotated[str, typer.Option(help="draft, approved, … or 'all'.")] = "draft",
    limit: Annotated[int | None, typer.Option(help="At most this many products.")] = None,
) -> None:
    """Products whose current descriptions have this review status (default: drafts waiting for a person)."""
    with _expected_failures():
        rows = store().current_results(Kind.products, review_status=None if status == "all" else status, limit=limit)
        table = Table()
        table.add_column("id", overflow="fold", min_width=12)  # an id is never cut short: people type it next
        for header in ("v", "status", "languages (path)", "untranslated", "why a template"):
            table.add_column(header, overflow="fold")
        for row in rows:
            descriptions: dict[str, Any] = row["result"].get("descriptions", {})
            table.add_row(
                row["item_id"], str(row["version"]), row["review_status"] or "",
                " ".join(f"{lang}:{d['path']}" for lang, d in descriptions.items()),
                str(sum(len(d.get("untranslated", [])) for d in descriptions.values())),
                " ".join(sorted({r["code"] for d in descriptions.values() for r in d.get("reasons", [])})),
            )
        out.print(table)
        if not rows:
            console.print(f"no products with review status {status!r}")


@review_app.command()
def show(item_id: Annotated[str, typer.Argument(help="The product id.")]) -> None:
    """Every language's text, which path wrote it, the check's reasons and what stayed untranslated."""
    with _expected_failures():
        row = _current(item_id)
        out.print(f"[bold]{item_id}[/] version {row['version']} ({row['tier']}), status {row['review_status']}")
        for language, description in row["result"].get("descriptions", {}).items():
            origin = description.get("model") or f"template v{description.get('template_version')}"
            if description["path"] == "human":
                origin = f"edited by {description.get('edited_by')}"
            out.print(f"\n[bold]{language}[/] · {description['path']} · {origin} · {description.get('verdict')}")
            out.print(description["text"], highlight=False)
            for reason in description.get("reasons", []):
                out.print(f"  reason: {reason['code']}: {reason['detail']}", highlight=False)
            untranslated = [entry["text"] for entry in description.get("untranslated", [])]
            if untranslated:
                out.print(f"  untranslated: {'; '.join(untranslated)}", highlight=False)


@review_app.command()
def approve(item_id: Annotated[str, typer.Argument(help="The product id.")], actor: _Actor = None,
            note: _Note = None) -> None:
    """Approve the current descriptions as they are."""
    with _expected_failures():
        _current(item_id)
        reviewed = store().review(Kind.products, item_id, actor=actor or settings().producer_id,
                                  review_status=APPROVED, note=note)
        console.print(f"[green]approved[/] {item_id} version {reviewed['version']}")


@review_app.command()
def edit(
    item_id: Annotated[str, typer.Argument(help="The product id.")],
    language: Annotated[str, typer.Option(help="Which language's description to replace.")],
    text: Annotated[str | None, typer.Option(help="The corrected description.")] = None,
    file: Annotated[Path | None, typer.Option(help="Read the corrected description from this UTF-8 file.")] = None,
    actor: _Actor = None,
    note: _Note = None,
) -> None:
    """Replace one language's description with a person's text: stored as a new, approved version (tier human)."""
    with _expected_failures():
        if (text is None) == (file is None):
            raise CliError("give the corrected description with --text or with --file (one of them)", ExitCode.USAGE)
        if file is not None:
            try:
                text = file.read_text(encoding="utf-8")
            except OSError as error:
                raise CliError(f"cannot read {file}: {error.strerror}", ExitCode.USAGE) from None
        assert text is not None
        if not text.strip():
            raise CliError("the corrected description is empty", ExitCode.USAGE)
        row = _current(item_id)
        result = copy.deepcopy(row["result"])
        descriptions = result.get("descriptions", {})
        if language not in descriptions:
            raise CliError(f"{item_id} has no {language!r} description (it has: {', '.join(descriptions)})",
                           ExitCode.USAGE)
        who = actor or settings().producer_id
        previous = descriptions[language]
        descriptions[language] = {
            "text": text.strip(), "path": "human", "edited_by": who, "model": None, "model_sha256": None,
            "template_version": None, "verdict": "human", "reasons": [], "untranslated": [],
            "replaced": {"path": previous.get("path"), "text": previous.get("text"), "version": row["version"]},
        }
        result["review_status"] = APPROVED
        reviewed = store().review(Kind.products, item_id, actor=who, review_status=APPROVED, result=result, note=note)
        console.print(f"[green]stored[/] {item_id} {language} as version {reviewed['version']} (approved)")
