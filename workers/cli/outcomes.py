"""`results`, `rejections` and `dlq`: read what was stored, replay what kept failing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.table import Column, Table

from schemas import Kind
from workers.cli.common import CliError, ExitCode, console, out, settings, store

rejections_app = typer.Typer(help="Rejections: input that can never be processed, and why.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters: items that kept failing.", no_args_is_help=True)


def results(
    kind: Annotated[Kind, typer.Argument(help="documents, transactions or products")],
    format: Annotated[str, typer.Option("--format", help="table or jsonl")] = "table",
    limit: Annotated[int | None, typer.Option(help="At most this many rows.")] = None,
    history: Annotated[bool, typer.Option("--history", help="Every version of each item, not only the current.")] = False,
    item: Annotated[list[str] | None, typer.Option("--id", help="Only this item (repeatable).")] = None,
) -> None:
    """Print stored results: the current version of each item (--history: all versions)."""
    print_results(kind, format, limit, history, item)


def print_results(kind: Kind, format: str = "table", limit: int | None = None, history: bool = False,
                  item_ids: Sequence[str] | None = None) -> None:
    outcome_store = store()
    if history:
        rows = [row for item_id in (item_ids or [None]) for row in outcome_store.history(kind, item_id, limit)]
    else:
        rows = outcome_store.current_results(kind, item_ids=item_ids, limit=limit)
    if format == "jsonl":
        for row in rows:
            out.print_json(json.dumps(row, default=str), indent=None)
        return
    if format != "table":
        raise CliError(f"unknown format {format!r}: use table or jsonl", ExitCode.USAGE)
    widest_id = max((len(row["item_id"]) for row in rows), default=2)
    table = Table(Column("id", no_wrap=True, min_width=widest_id), "v", "tier", "status", "result", "model")
    for row in rows:
        table.add_row(row["item_id"], str(row["version"]) + ("" if row["is_current"] else " (old)"), row["tier"],
                      row["review_status"] or "", _summary(kind, row["result"]),
                      f"{row['model'] or ''} {row['model_version'] or ''}".strip())
    out.print(table)
    if not rows:
        console.print(f"no {kind.value} results stored" + (" for these ids" if item_ids else ""))


def _summary(kind: Kind, result: dict[str, Any]) -> str:
    """One cell a person can read; `--format jsonl` has everything."""
    if kind is Kind.documents:
        parts = [result.get("language") or "?"]
        if isinstance(result.get("classification"), dict):
            parts.append(f"class {result['classification'].get('label')}")
        entities = ", ".join(f"{e['text']} [{e['label']}]" for e in result.get("entities", [])[:12])
        parts.append(entities)
        summary = (result.get("summary") or {}).get("text", "")
        parts.append(f"summary: {summary[:160]}{'…' if len(summary) > 160 else ''}" if summary else "")
        return " · ".join(part for part in parts if part)
    if kind is Kind.transactions:
        score = result.get("score")
        codes = [rule["code"] for rule in result.get("rules_fired", [])]
        codes += [reason.get("code", "") for reason in result.get("model_reasons", [])]
        return " · ".join([str(result.get("action")), "score " + ("–" if score is None else f"{score:.3f}"),
                           ", ".join(code for code in codes if code)])
    if kind is Kind.products:
        paths = " ".join(f"{language}:{description.get('path')}"
                         for language, description in (result.get("descriptions") or {}).items())
        return paths
    return json.dumps(result, default=str, ensure_ascii=False)[:200]


@rejections_app.command("list")
def rejections_list(
    kind: Annotated[Kind | None, typer.Option(help="Only this kind.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """Rejected items, newest first: by whom (producer or worker), which field, why."""
    table = Table("message id", "kind", "item", "by", "field", "reason", "at")
    for row in store().rejections(kind.value if kind else None, limit=limit):
        table.add_row(row.message_id, row.kind, row.item_id or "", row.source, row.field, row.reason[:80],
                      f"{row.rejected_at:%Y-%m-%d %H:%M:%S}")
    out.print(table)


@rejections_app.command("show")
def rejections_show(message_id: Annotated[str, typer.Argument(help="The message id from `rejections list`.")]) -> None:
    """Every error of one rejection, and a short excerpt of what was sent."""
    [row] = store().rejections(message_ids=[message_id]) or [None]
    if row is None:
        raise CliError(f"no rejection with message id {message_id!r}", ExitCode.USAGE)
    out.print_json(json.dumps({"message_id": row.message_id, "kind": row.kind, "item_id": row.item_id,
                               "source": row.source, "producer": row.producer, "errors": row.errors,
                               "excerpt": row.payload_excerpt, "rejected_at": str(row.rejected_at)}))


@dlq_app.command("list")
def dlq_list(all: Annotated[bool, typer.Option("--all", help="Include replayed ones.")] = False) -> None:
    """Show dead letters: payload id, error, attempts."""
    table = Table("message id", "kind", "item", "attempts", "error", "replayed")
    for letter in store().dead_letters(include_replayed=all):
        table.add_row(letter.message_id, letter.kind, letter.item_id or "", str(letter.attempts),
                      letter.error[:80], str(letter.replayed_at or ""))
    out.print(table)


@dlq_app.command("replay")
def dlq_replay(ids: Annotated[list[str] | None, typer.Argument(help="Message ids; none means all.")] = None) -> None:
    """Enqueue dead letters again as fresh first attempts (on behalf of their original producer)."""
    from tasks.app import app as celery_app
    from workers.cli.common import broker
    from workers.runtime.publish import send_item

    outcome_store = store()
    broker()
    letters = outcome_store.dead_letters(ids or None)
    for letter in letters:
        # Marked first: if the replay fails again quickly, its new dead letter reopens this one.
        outcome_store.mark_replayed([letter.message_id])
        try:
            send_item(celery_app, Kind(letter.kind), letter.payload,
                      {"producer": letter.producer} if letter.producer else {}, task_id=letter.message_id)
        except Exception:
            outcome_store.mark_replayed([letter.message_id], replayed=False)
            raise
    outcome_store.audit(settings().producer_id, "dlq.replay", None,
                        {"message_ids": [letter.message_id for letter in letters]})
    console.print(f"replayed {len(letters)} dead letter(s)")
