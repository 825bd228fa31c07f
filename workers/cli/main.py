"""The ``slimline`` command: assembles every command group (each lives in its own module, the
capabilities' in their packages) and turns expected failures (:class:`workers.cli.common.CliError`)
into one line and a documented exit code."""

from __future__ import annotations

import sys

import typer

from workers.cli import models, outcomes, queue, report, run, security, users, worker
from workers.cli.common import CliError, console, print_error
from workers.documents import cli as documents_cli
from workers.documents.classify import cli as classify_cli
from workers.gateway import cli as gateway_cli
from workers.products import cli as products_cli
from workers.transactions import cli as transactions_cli

app = typer.Typer(help="Slimline: language AI on your own CPUs, in batches, over Redis queues.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
app.command()(worker.worker)
app.command()(worker.migrate)
app.command()(queue.enqueue)
app.command()(queue.drain)
app.command()(queue.status)
app.command()(queue.health)
app.command()(outcomes.results)
app.add_typer(outcomes.rejections_app, name="rejections")
app.add_typer(outcomes.dlq_app, name="dlq")
app.command("model-manifest")(models.model_manifest)
app.command()(run.run)
app.command()(report.report)
app.command()(gateway_cli.serve)
app.add_typer(gateway_cli.api_keys_app, name="api-keys")

train_app = typer.Typer(help="Train models on labelled data.", no_args_is_help=True)
train_app.command("classifier")(classify_cli.classifier)
train_app.command("risk")(transactions_cli.train_risk_command)
train_app.command("simulate")(transactions_cli.simulate_command)
app.add_typer(train_app, name="train")
review_app = typer.Typer(help="Work waiting for a person.", no_args_is_help=True)
review_app.add_typer(documents_cli.review_app, name="documents")
app.add_typer(review_app, name="review")
app.add_typer(transactions_cli.flags_app, name="flags")
app.command("backtest")(transactions_cli.backtest_command)
app.add_typer(products_cli.app, name="products")
app.command("redis-acl")(security.redis_acl)
app.add_typer(security.models_app, name="models")
app.add_typer(security.audit_app, name="audit")
app.command()(security.purge)
app.command()(security.erase)
app.command()(security.hold)
app.command()(security.release)
app.add_typer(users.app, name="users")


def main() -> None:
    try:
        code = app(standalone_mode=False)  # with standalone_mode off, click returns typer.Exit's code
    except CliError as error:
        print_error(str(error))
        sys.exit(error.code)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as error:  # click's own usage errors
        import click

        if isinstance(error, click.exceptions.ClickException):
            error.show()
            sys.exit(error.exit_code)
        if isinstance(error, click.exceptions.Exit):
            sys.exit(error.exit_code)
        if isinstance(error, click.exceptions.Abort):
            console.print("[yellow]interrupted[/]")
            sys.exit(130)
        raise
    sys.exit(code if isinstance(code, int) else 0)
