"""The report on the terminal (rich tables), as JSON, and as one self-contained HTML file (tables, and the plots
embedded as PNG images: it opens offline and can be mailed)."""

from __future__ import annotations

import base64
import html
import json
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table


def number(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}g}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _model(row: dict[str, Any], width: int = 40) -> str:
    name = f"{row.get('model') or ''} v{row.get('model_version')}".strip()
    return name if len(name) <= width else name[:width - 1] + "…"  # JSON has the whole name


def _language(value: str | None) -> str:
    return "– (rejected or failed)" if value is None else value


# Each section is (title, columns, rows as lists of cells); the terminal and HTML renderers share them.

def sections(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    currency = report["prices"]["currency"]
    documents = report["accuracy"]["documents"]
    flags = report["accuracy"]["transactions"]["flags"]
    out = [
        (f"Work, latency and cost per 1,000 items ({currency})",
         ["kind", "tier", "model", "language", "items", "CPU s/1k", "p50 s", "p95 s", "cost/1k", "hosted LLM/1k",
          "LLM ÷ compact"],
         [[g["kind"], g["tier"], _model(g), _language(g["language"]), number(g["items"]),
           number(g["cpu_seconds_per_1k"]), number(g["latency_p50_seconds"]), number(g["latency_p95_seconds"]),
           number(g["cost_per_1k"]), number(g["llm_cost_per_1k"]), number(g["llm_cost_ratio"], 4)]
          for g in report["groups"]]),
        (f"Cost per stage per 1,000 items ({currency})",
         ["kind", "tier", "model", "stage", "wall s/1k", "CPU s/1k", "cost/1k"],
         [[s["kind"], s["tier"], _model(s), s["stage"], number(s["wall_seconds_per_1k"]),
           number(s["cpu_seconds_per_1k"]), number(s["cost_per_1k"])] for s in report["stages"]]),
        ("Document classes against a person's (reviewed documents)",
         ["tier", "model version", "language", "reviewed", "correct", "accuracy"],
         [[r["tier"], str(r["model_version"]), r["language"], number(r["reviewed"]), number(r["correct"]),
           percent(r["accuracy"])] for r in documents["class"]]),
        (f"Entities against a person's ({documents['entities']['documents']} documents with reviewed entities)",
         ["label", "predicted", "kept", "person's", "precision", "recall"],
         [[r["label"], number(r["predicted"]), number(r["kept"]), number(r["reviewed"]), percent(r["precision"]),
           percent(r["recall"])] for r in documents["entities"]["rows"]]),
        ("Flags against analysts' labels (slimline flags review)",
         ["labelled", "confirmed fraud", "dismissed", "flagged", "flagged fraud", "precision", "recall",
          "average precision"],
         [[number(flags["labelled"]), number(flags["confirmed_fraud"]), number(flags["dismissed"]),
           number(flags["flagged"]), number(flags["flagged_fraud"]), percent(flags["precision"]),
           percent(flags["recall"]), number(flags["average_precision"])]] if flags["labelled"] else []),
        ("Product descriptions: grounding check and people's approvals",
         ["language", "descriptions", "generator tried", "passed", "pass rate", "attempt pass rate", "approved",
          "kept as written", "kept rate"],
         [[r["language"], number(r["descriptions"]), number(r["tried"]), number(r["passed"]),
           percent(r["grounding_pass_rate"]), percent(r["attempt_pass_rate"]), number(r["approved"]),
           number(r["kept"]), percent(r["kept_rate"])] for r in report["accuracy"]["products"]["grounding"]]),
        (f"Accuracy per cost: right answers per 1 {currency}",
         ["kind", "tier", "language", "metric", "value", "n", "cost/1k", f"right per {currency}",
          "hosted LLM/1k", f"LLM best case per {currency}"],
         [[r["kind"], str(r["tier"]), r["language"], r["metric"], percent(r["value"]), number(r["count"]),
           number(r["cost_per_1k"]), number(r["right_per_currency_unit"]), number(r["llm_cost_per_1k"]),
           number(r["llm_best_case_right_per_currency_unit"])] for r in report["accuracy_per_cost"]]),
    ]
    return out


def _period(report: dict[str, Any]) -> str:
    period = report["period"]
    return f"{period['since']:%Y-%m-%d %H:%M} → {period['until']:%Y-%m-%d %H:%M} UTC"


def _prices(report: dict[str, Any]) -> str:
    p = report["prices"]
    return (f"prices: {p['core_hour_price']} {p['currency']} per core-hour; hosted LLM {p['llm_price_per_1k_tokens']} "
            f"in / {p['llm_output_price_per_1k_tokens']} out per 1,000 tokens, {p['chars_per_token']} characters a "
            f"token (SLIMLINE_REPORT__*)")


def to_terminal(report: dict[str, Any], console: Console) -> None:
    console.print(f"[bold]Slimline report[/] {_period(report)}: {report['batches']} batches", highlight=False)
    console.print(_prices(report), highlight=False)
    for title, columns, rows in sections(report):
        if not rows:
            console.print(f"[bold]{title}[/]: nothing in this period", highlight=False)
            continue
        table = Table(*columns, title=title, title_justify="left")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for note in report["notes"]:
        console.print(f"note: {note}", highlight=False, style="dim")


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, default=_json_default, indent=2)


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
img{display:block;margin:.5em 0 1.5em;max-width:100%}.note{color:#666;font-size:.9em}"""


def to_html(report: dict[str, Any], plots: dict[str, bytes]) -> str:
    parts = [f"<!doctype html><html lang=en><meta charset=utf-8><title>Slimline report</title><style>{_STYLE}</style>",
             f"<h1>Slimline report</h1><p>{html.escape(_period(report))}: {report['batches']} batches. "
             f"{html.escape(_prices(report))}</p>"]
    for title, columns, rows in sections(report):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if not rows:
            parts.append("<p>Nothing in this period.</p>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows]
        parts.append("</table>")
    parts.append("<h2>Plots</h2>")
    for title, png in plots.items():
        encoded = base64.b64encode(png).decode("ascii")
        parts.append(f"<h3>{html.escape(title)}</h3><img alt=\"{html.escape(title)}\" "
                     f"src=\"data:image/png;base64,{encoded}\">")
    parts += [f"<p class=note>{html.escape(note)}</p>" for note in report["notes"]]
    parts.append("</html>")
    return "\n".join(parts)
