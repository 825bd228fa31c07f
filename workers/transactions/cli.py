"""Commands for transactions, for the lead to mount on ``slimline``:

    slimline train simulate OUT.jsonl [--accounts N --days N --seed N --difficulty 0..1]
    slimline train risk LABELLED.jsonl [--out DIR --manifest-dir DIR --with-reviews --labels-from-database]
                        [--review-fpr F | --review-rate R] [--block-fpr F | --block-rate R]
                        [--folds N --increasing FEATURE ...]
    slimline backtest RULES.yaml LABELLED.jsonl [--batch-size N --json OUT]
    slimline flags list [--status open --limit 50]
    slimline flags show ID
    slimline flags review ID --as confirmed_fraud|dismissed|escalated|open [--note TEXT --actor NAME]
    slimline flags labels [--out LABELS.jsonl]

``app`` holds them all (``train`` and ``flags`` as groups, ``backtest`` as a command); ``train_app``
and ``flags_app`` can also be mounted on their own.

Exit codes: 0 done; 1 not found (no decision for that transaction id); 2 usage error (typer), an
unknown review status, or a threshold policy that is not a share in (0, 1) or is given twice; 3 the
database cannot be reached, or the private Redis of a replay cannot start; 4 an input file (labelled
history, rules, model) cannot be used, or the history holds too little fraud to train and measure on.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from schemas import Kind
from workers.cli.common import console, out, print_error
from workers.settings import Settings, get_settings

if TYPE_CHECKING:
    from workers.db.store import OutcomeStore

NOT_FOUND, UNREACHABLE, BAD_INPUT = 1, 3, 4
REVIEW_STATUSES = ("open", "escalated", "confirmed_fraud", "dismissed")
LABEL_OF_STATUS = {"confirmed_fraud": 1, "dismissed": 0}

app = typer.Typer(help="Transactions: risk model, rule backtests, flags for review.", no_args_is_help=True)
train_app = typer.Typer(help="Train models.", no_args_is_help=True)
flags_app = typer.Typer(help="Flagged transactions waiting for (or given) a review.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(flags_app, name="flags")


def fail(message: str, code: int) -> NoReturn:
    print_error(message)
    raise typer.Exit(code)


def _store(settings: Settings) -> OutcomeStore:
    from workers.db.store import OutcomeStore  # imported late: the other commands need no database

    try:
        return OutcomeStore.from_url(settings.database_url.get_secret_value())
    except Exception as error:  # noqa: BLE001 - any failure to open the database is reported in one line
        fail(f"cannot open the database ({type(error).__name__}): check SLIMLINE_DATABASE_URL", UNREACHABLE)


def _call(action: Any) -> Any:
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return action()
    except SQLAlchemyError as error:
        fail(f"database error ({type(error).__name__}): check SLIMLINE_DATABASE_URL and run `slimline migrate`",
             UNREACHABLE)


def _read(path: Path) -> tuple[list[Any], Any]:
    from workers.transactions.train import LabelledFileError, read_labelled

    try:
        return read_labelled(path)
    except (OSError, LabelledFileError) as error:
        fail(str(error), BAD_INPUT)


@train_app.command("simulate")
def simulate_command(
    output: Annotated[Path, typer.Argument(help="Where to write the labelled JSON lines.")],
    accounts: int = typer.Option(2000, min=1), days: int = typer.Option(60, min=1), seed: int = typer.Option(7),
    difficulty: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="0 easy .. 1 hard: how far fraud behaviour departs from the account's, and how "
                               "often customers behave alike.")] = 0.5,
) -> None:
    """Write a simulated labelled history (see workers/transactions/simulator.py)."""
    from workers.transactions.simulator import SimulationConfig, simulate, write_jsonl

    items = simulate(SimulationConfig(accounts=accounts, days=days, seed=seed, difficulty=difficulty))
    write_jsonl(items, output)
    fraud = sum(item["label"] for item in items)
    out.print(f"{len(items)} transactions, {fraud} fraudulent ({fraud / max(len(items), 1):.2%}) -> {output}")


def _target(name: str, fpr: float | None, rate: float | None, default: float) -> Any:
    from workers.transactions.train import Target

    if fpr is not None and rate is not None:
        fail(f"give --{name}-fpr or --{name}-rate, not both", 2)
    share = rate if rate is not None else default if fpr is None else fpr
    if not 0 < share < 1:
        fail(f"--{name}-{'rate' if rate is not None else 'fpr'} must be a share between 0 and 1 (e.g. 0.005), "
             f"not {share}", 2)
    return Target("rate" if rate is not None else "fpr", share)


@train_app.command("risk")
def train_risk_command(
    labelled: Annotated[Path, typer.Argument(help="JSON lines: transactions in the contract, each with label 0|1.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Model directory (default: DATA_DIR/models/"
                                                               "transactions-risk).")] = None,
    manifest_dir: Annotated[Path | None, typer.Option(help="Where the SHA-256 manifest goes (default: beside "
                                                           "the model directory, in manifests/).")] = None,
    with_reviews: Annotated[bool, typer.Option(
        "--with-reviews", help="Let analysts' reviews (confirmed_fraud / dismissed) override the file's labels.",
    )] = False,
    review_fpr: Annotated[float | None, typer.Option(
        help="Share of legitimate transactions the score may send to review (default 0.005).")] = None,
    review_rate: Annotated[float | None, typer.Option(
        help="Or: share of all transactions the score may send to review.")] = None,
    block_fpr: Annotated[float | None, typer.Option(
        help="Share of legitimate transactions the score may block (default 0.0002).")] = None,
    block_rate: Annotated[float | None, typer.Option(
        help="Or: share of all transactions the score may block.")] = None,
    folds: Annotated[int, typer.Option(min=2, max=12, help="Time-ordered cross-validation folds.")] = 4,
    increasing: Annotated[list[str] | None, typer.Option(
        help="A feature the risk may only grow with (monotone constraint), e.g. amount_to_mean_7d; repeatable.",
    )] = None,
    labels_from_database: Annotated[bool, typer.Option(
        "--labels-from-database", help="Let analysts' decisions in the review console (fraud / legitimate; the "
                                       "newest per transaction) override the file's labels.",
    )] = False,
) -> None:
    """Choose and train the risk model on all the history; thresholds from the stated policy; prints the
    procedure's metrics on a later period it did not train on, with 95 % intervals."""
    from zoneinfo import ZoneInfo

    from workers.transactions.risk import RiskModelError
    from workers.transactions.train import ThresholdPolicy, TrainingPlan, file_source, train_risk

    policy = ThresholdPolicy(review=_target("review", review_fpr, review_rate, 0.005),
                             block=_target("block", block_fpr, block_rate, 0.0002))
    plan = TrainingPlan(folds=folds, increasing=tuple(increasing or ()), policy=policy)
    settings = get_settings()
    items, labels = _read(labelled)
    if with_reviews:
        changed = _apply_reviews(settings, [item.id for item in items], labels)
        out.print(f"{changed} label(s) taken from analysts' reviews")
    if labels_from_database:
        changed, known = _apply_console_labels(settings, [item.id for item in items], labels)
        out.print(f"{known} transaction(s) of the file have an analyst's label in the database; {changed} label(s) changed")
    out_dir = out_dir or settings.data_dir / "models" / "transactions-risk"
    manifest_dir = manifest_dir or out_dir.parent / "manifests"
    try:
        card = train_risk(items, labels, out_dir, manifest_dir, zone=ZoneInfo(settings.transactions.timezone),
                          source=file_source(labelled), plan=plan,
                          progress=lambda message: console.print(f"[dim]{escape(message)}[/dim]", highlight=False,
                                                             soft_wrap=True))
    except (ValueError, RiskModelError) as error:
        fail(str(error), BAD_INPUT)
    except RuntimeError as error:  # the private Redis for the replay did not start
        fail(str(error), UNREACHABLE)
    _print_card(card)
    out.print(f"model {card['version']} -> {out_dir}\nuse it with SLIMLINE_TRANSACTIONS__MODEL_DIR={out_dir} "
              f"SLIMLINE_TRANSACTIONS__MODEL_MANIFEST_DIR={manifest_dir}")


def _print_card(card: dict[str, Any]) -> None:
    evaluation = card["evaluation"]
    measured = evaluation["measured_on"]
    out.print(f"measured on {measured['transactions']} later transactions ({measured['fraud']} fraudulent, base rate "
              f"{evaluation['base_rate']:.3%}) by the same procedure trained on the earlier "
              f"{evaluation['trained_on']['transactions']}:")
    table = Table("metric", "value", "95 % interval")
    for name, m in evaluation["metrics"].items():
        table.add_row(name.replace("_", " "), f"{m['value']:.3f}", f"{m['low']:.3f} - {m['high']:.3f}")
    for action, realised in evaluation["thresholds_realised"].items():
        table.add_row(f"{action} threshold: flags", f"{realised['share_of_all']:.3%} of all, "
                      f"{realised['share_of_legitimate']:.3%} of legitimate",
                      f"policy {realised['target']}; recall {realised['recall']:.3f}")
    out.print(table)
    training = card["training"]
    chosen = ", ".join(f"{name}={training['params'][name]}" for name in ("num_leaves", "min_sum_hessian_in_leaf",
                                                                         "scale_pos_weight"))
    out.print(f"chosen by cross-validation: {chosen}, {training['rounds']} rounds; refit on "
              f"{training['refit_on']['transactions']} transactions ({training['refit_on']['fraud']} fraudulent)")
    groups = card["importance"]["gain_share_by_group"]
    top = card["importance"]["gain_share"][:5]
    out.print("gain: " + ", ".join(f"{name} {share:.0%}" for name, share in groups.items()) + "; top features: "
              + ", ".join(f"{name} {share:.0%}" for name, share in top))


def _apply_reviews(settings: Settings, ids: list[str], labels: Any) -> int:
    store = _store(settings)
    position = {item_id: index for index, item_id in enumerate(ids)}
    changed = 0
    for status, label in LABEL_OF_STATUS.items():
        for row in _call(lambda: store.current_results(Kind.transactions, review_status=status)):
            index = position.get(row["item_id"])
            if index is not None and labels[index] != label:
                labels[index] = label
                changed += 1
    return changed


def _apply_console_labels(settings: Settings, ids: list[str], labels: Any) -> tuple[int, int]:
    """The console's labels (table analyst_labels) over the file's: (labels changed, transactions labelled)."""
    store = _store(settings)
    position = {item_id: index for index, item_id in enumerate(ids)}
    changed = known = 0
    for row in _call(lambda: store.analyst_labels()):
        index = position.get(row["transaction_id"])
        if index is None or row["label"] is None:
            continue
        known += 1
        if labels[index] != row["label"]:
            labels[index] = row["label"]
            changed += 1
    return changed, known


@app.command("backtest")
def backtest_command(
    rules: Annotated[Path, typer.Argument(help="The rule file to try (YAML).")],
    labelled: Annotated[Path, typer.Argument(help="JSON lines: transactions in the contract, each with label 0|1.")],
    batch_size: Annotated[int | None, typer.Option(min=1, help="Default: the transactions queue's batch size.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the full report here.")] = None,
) -> None:
    """Replay a labelled history through the live code path; alert volume, precision and recall per rule."""
    from workers.transactions.backtest import backtest
    from workers.transactions.risk import RiskModelError
    from workers.transactions.rules import RuleFileError

    items, labels = _read(labelled)
    try:
        result = backtest(rules, items, labels, get_settings(), batch_size)
    except (RuleFileError, RiskModelError) as error:
        fail(str(error), BAD_INPUT)
    except RuntimeError as error:  # the private Redis for the replay did not start
        fail(str(error), UNREACHABLE)
    table = Table("rule", "action", "fired", "precision", "recall")
    for code, m in result["per_rule"].items():
        table.add_row(code, m["action"], str(m["flagged"]), _ratio(m["precision"]), _ratio(m["recall"]))
    for name in ("rules_alone", "overall"):
        m = result[name]
        table.add_row(f"[bold]{name.replace('_', ' ')}[/bold]", "", str(m["flagged"]), _ratio(m["precision"]),
                      _ratio(m["recall"]))
    out.print(table)
    out.print(f"{result['transactions']} transactions ({result['fraud']} fraudulent) over "
              f"{len(result['alerts_per_day'])} days; alerts per day: median {result['alerts_per_day_median']:g}, "
              f"max {max(result['alerts_per_day'].values(), default=0)}; rules {result['rule_set_version']}, "
              f"model {result['model_version']}")
    if json_out:
        json_out.write_text(json.dumps(result, indent=2) + "\n")


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@flags_app.command("list")
def flags_list(
    status: Annotated[str, typer.Option(help=f"One of {', '.join(REVIEW_STATUSES)}.")] = "open",
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """Flagged transactions with this review status, in the order they were decided."""
    _check_status(status)
    store = _store(get_settings())
    rows = _call(lambda: store.current_results(Kind.transactions, review_status=status, limit=limit))
    table = Table("transaction", "action", "score", "rules", "model reasons", "status")
    for row in rows:
        result = row.get("result") or {}
        table.add_row(row["item_id"], str(result.get("action")), _score(result.get("score")),
                      ", ".join(rule["code"] for rule in result.get("rules_fired", [])),
                      ", ".join(reason["code"] for reason in result.get("model_reasons", [])),
                      str(row.get("review_status")))
    out.print(table)
    out.print(f"{len(rows)} flag(s) {status}")


def _score(score: float | None) -> str:
    return "-" if score is None else f"{score:.3f}"


def _check_status(status: str) -> None:
    if status not in REVIEW_STATUSES:
        fail(f"unknown status {status!r}: use one of {', '.join(REVIEW_STATUSES)}", 2)


@flags_app.command("labels")
def flags_labels(
    out_file: Annotated[Path | None, typer.Option("--out", help="Write JSON lines here (default: standard output).")] = None,
    history: Annotated[bool, typer.Option("--history", help="Every decision, not only the newest per transaction.")] = False,
) -> None:
    """Analysts' decisions from the review console: transaction id, label (1 fraud, 0 legitimate, null
    escalated), decision, analyst, when, comment; as JSON lines, oldest first."""
    store = _store(get_settings())
    rows = _call(lambda: store.analyst_labels(newest_only=not history))
    lines = [json.dumps({"transaction_id": row["transaction_id"], "label": row["label"], "decision": row["decision"],
                         "analyst": row["analyst"], "decided_at": row["decided_at"].isoformat(),
                         "result_version": row["result_version"], "comment": row["comment"]}, ensure_ascii=False)
             for row in rows]
    if out_file is None:
        for line in lines:
            print(line)
        return
    out_file.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    console.print(f"{len(lines)} label(s) -> {out_file}")


@flags_app.command("show")
def flags_show(transaction_id: Annotated[str, typer.Argument(help="The transaction's id.")]) -> None:
    """The current decision with its reasons and features, then every version (decisions and reviews)."""
    store = _store(get_settings())
    rows = _call(lambda: store.current_results(Kind.transactions, item_ids=[transaction_id]))
    if not rows:
        fail(f"no decision for transaction {transaction_id!r}", NOT_FOUND)
    row = rows[0]
    result = row.get("result") or {}
    out.print(f"[bold]{escape(transaction_id)}[/bold]: {result.get('action')} (score {_score(result.get('score'))}, "
              f"decided by {result.get('decided_by')}), review status {row.get('review_status')}", highlight=False)
    for rule in result.get("rules_fired", []):
        out.print(escape(f"  rule {rule['code']} ({rule['action']}): {rule['description']}"), highlight=False)
    for reason in result.get("model_reasons", []):
        out.print(escape(f"  model {reason['code']}: {reason['description']} (+{reason['contribution']})"),
                  highlight=False)
    if result.get("degraded"):
        out.print(escape(f"  degraded: {result['degraded']}"), highlight=False)
    out.print(f"  rules {result.get('rule_set_version')}, model {result.get('model_version')}", highlight=False)
    out.print_json(json.dumps(result.get("features", {})))
    history = _call(lambda: store.history(Kind.transactions, transaction_id))
    table = Table("version", "tier", "review status", "action", "when", "by", "note")
    for version in history:
        table.add_row(str(version.get("version")), str(version.get("tier")), str(version.get("review_status")),
                      str((version.get("result") or {}).get("action")), str(version.get("processed_at") or ""),
                      str(version.get("producer") or ""), str(version.get("note") or ""))
    out.print(table)


@flags_app.command("review")
def flags_review(
    transaction_id: Annotated[str, typer.Argument(help="The transaction's id.")],
    status: Annotated[str, typer.Option("--as", help=f"One of {', '.join(REVIEW_STATUSES)}.")],
    note: Annotated[str | None, typer.Option(help="Why (kept in the audit log).")] = None,
    actor: Annotated[str | None, typer.Option(help="Who reviews (default: your login name).")] = None,
) -> None:
    """Set a flag's review status; the store keeps who and when in the audit log."""
    _check_status(status)
    store = _store(get_settings())
    if not _call(lambda: store.current_results(Kind.transactions, item_ids=[transaction_id])):
        fail(f"no decision for transaction {transaction_id!r}", NOT_FOUND)
    who = actor or getpass.getuser()
    try:
        _call(lambda: store.review(Kind.transactions, transaction_id, actor=who, review_status=status, note=note))
    except LookupError:
        fail(f"no decision for transaction {transaction_id!r}", NOT_FOUND)
    out.print(f"{transaction_id}: {status} (by {who})")
