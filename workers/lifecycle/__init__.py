"""A Slimline worker's lifecycle, as Celery bootsteps: everything a worker must do at start and at stop
happens however it is started, `slimline worker` (a thin wrapper) or plain `celery -A tasks.app worker`.

Start, in this order, before the pool forks (workers/lifecycle/steps.py):
  Queues → Signing → Database → ModelKeys → LogMasking → CpuPriority → Metrics
then, once the pool has started and before the consumer takes a message:
  PipelinesLoaded (every pool process has built and warmed up its pipelines).
Stop: the consumer's Drain returns every message the worker still holds to its queue; Metrics and
Signing clean up after themselves.
"""

from __future__ import annotations

import click
from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

from workers.lifecycle import steps
from workers.runtime.names import LANE_QUEUES
from workers.runtime.process import dispose, load_pipelines

WORKER_STEPS = (steps.Queues, steps.Signing, steps.Database, steps.ModelKeys, steps.LogMasking, steps.CpuPriority,
                steps.Metrics, steps.PipelinesLoaded)


def install(app: Celery) -> None:
    """Add Slimline's bootsteps and worker options (``--tier``) to the app."""
    for step in WORKER_STEPS:
        app.steps["worker"].add(step)
    app.steps["consumer"].add(steps.Drain)
    # Each pool process builds its pipelines after the fork, and audits its last receipts at exit.
    worker_process_init.connect(lambda **_: load_pipelines(app), weak=False)
    worker_process_shutdown.connect(lambda **_: dispose(), weak=False)
    app.user_options["worker"].add(click.Option(
        ["--tier"], default=None, type=click.Choice(["compact", "escalated"]),
        help="Slimline: compact (the kinds' queues) or escalated (their escalation queues, the bigger "
             "configuration). Default: from -Q, else compact."))
    app.user_options["worker"].add(click.Option(
        ["--lane"], default=None, type=click.Choice(sorted(LANE_QUEUES)),
        help="Slimline: consume the kinds' lane queues (urgent: documents.urgent) instead of their bulk queues, "
             "with short batch waits and normal CPU priority. Default: SLIMLINE_WORKER_LANE."))
