"""``slimline``: run workers, enqueue work, watch it drain, read results.

Each command group lives in its own module; this one assembles them and turns expected failures
(:class:`workers.cli.common.CliError`) into one line and a documented exit code."""

from __future__ import annotations

import sys

import typer

from workers.cli import models, outcomes, queue, run, worker
from workers.cli.common import CliError, console

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


def main() -> None:
    try:
        code = app(standalone_mode=False)  # with standalone_mode off, click returns typer.Exit's code
    except CliError as error:
        console.print(f"[red]error[/]: {error}")
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
