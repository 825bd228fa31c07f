"""The bootsteps of a Slimline worker (see workers/lifecycle/__init__.py for the order).

A step that finds the worker must not start prints one line saying what to do and exits with code 2,
before any pool process or consumer exists."""

from __future__ import annotations

import logging
import math
import multiprocessing
import sys
import time
from typing import Any

from celery import bootsteps
from kombu import Queue as KombuQueue
from celery.worker import state as worker_state

from schemas import Kind
from workers.pipelines import ESCALATING_KINDS, LATENCY_CRITICAL_KINDS, PIPELINE_KINDS
from workers.runtime import process
from workers.runtime.names import ESCALATION_QUEUES, LANE_QUEUES, QUEUES, TASK_NAMES
from workers.security.worker_start import StartRefused
from workers.settings import Settings, get_settings

log = logging.getLogger("slimline.worker")

TIERS = ("compact", "escalated")
LANE_MAX_WAIT_SECONDS = 0.005


def refuse(message: str) -> None:
    """Stop the start with one line (no traceback) and exit code 2."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


class SlimlineStep(bootsteps.StartStopStep):
    """A worker step whose expected failures (:class:`StartRefused`) refuse the start with one line."""

    def __init__(self, worker: Any, **options: Any) -> None:
        super().__init__(worker, **options)
        try:
            self.prepare(worker, **options)
        except StartRefused as error:
            refuse(str(error))

    def prepare(self, worker: Any, **options: Any) -> None:
        """Runs in the main process, before the pool forks."""

    def create(self, worker: Any) -> Any:
        return self

    def start(self, worker: Any) -> None:
        pass

    def stop(self, worker: Any) -> None:
        pass

    def shutdown(self, worker: Any) -> None:
        self.stop(worker)


def queue_roles() -> dict[str, tuple[Kind, str]]:
    """Every queue a Slimline worker may consume: its kind and tier."""
    roles = {QUEUES[kind]: (kind, "compact") for kind in Kind if kind in PIPELINE_KINDS}
    roles |= {ESCALATION_QUEUES[kind]: (kind, "escalated") for kind in Kind if kind in ESCALATING_KINDS}
    return roles


def resolve_queues(selected: list[str] | None, tier: str | None) -> tuple[list[Kind], str, list[str]]:
    """The kinds and tier a worker serves, and its queues: from the queues it was asked to consume (-Q)
    and ``--tier``. No -Q: every kind's queue of the tier (compact by default)."""
    roles = queue_roles()
    if not selected:
        tier = tier or "compact"
        queues = [queue for queue, (_, role_tier) in roles.items() if role_tier == tier]
        return [roles[queue][0] for queue in queues], tier, queues
    unknown = [queue for queue in selected if queue not in roles]
    if unknown:
        raise StartRefused(f"not a Slimline queue: {', '.join(unknown)}; queues are {', '.join(sorted(roles))}")
    tiers = {roles[queue][1] for queue in selected}
    if len(tiers) > 1:
        raise StartRefused("a worker serves one tier: give it either kinds' queues (compact) or their escalation "
                           f"queues (escalated), not both ({', '.join(selected)})")
    [queue_tier] = tiers
    if tier is not None and tier != queue_tier:
        raise StartRefused(f"--tier {tier} does not match the queues {', '.join(selected)} ({queue_tier} tier): for "
                           f"the escalated tier, consume {', '.join(ESCALATION_QUEUES[k] for k in sorted(ESCALATING_KINDS))}")
    return [roles[queue][0] for queue in selected], queue_tier, list(selected)


def prefetch_multiplier(settings: Settings, kinds: list[Kind], concurrency: int) -> int:
    """Unacked messages count against the prefetch limit, and a batch's messages stay unacked until
    stored: leave room for one batch per pool process plus one filling up — within the byte budget
    for messages a worker holds (SLIMLINE_WORKER_PREFETCH_BYTES / the largest message allowed)."""
    largest_batch = max(settings.batch_policy(kind).max_batch_size for kind in kinds)
    by_count = (concurrency + 1) * largest_batch
    by_bytes = max(settings.worker_prefetch_bytes // settings.max_message_bytes, concurrency + 1)
    return max(1, math.ceil(min(by_count, by_bytes) / concurrency))


class Queues(SlimlineStep):
    """Which kinds and tier this worker serves (-Q, --tier), told to the pool processes through the app's
    configuration; prefetch sized from the batch and byte budgets unless --prefetch-multiplier is given."""

    def prepare(self, worker: Any, tier: str | None = None, lane: str | None = None, **options: Any) -> None:
        app = worker.app
        chosen = app.amqp.queues._consume_from  # what -Q selected (None: no -Q)
        selected = list(chosen) if chosen is not None else None
        kinds, tier, names = resolve_queues(selected, tier)
        if selected is None:
            app.amqp.queues.select(names)
        app.conf.slimline_consumed_kinds = [kind.value for kind in kinds]
        app.conf.slimline_tier = tier
        app.conf.slimline_lane = self.take_lane(app, kinds, tier, lane or get_settings().worker_lane)
        if not worker.prefetch_multiplier:  # 0 (Slimline's default): size it here
            worker.prefetch_multiplier = prefetch_multiplier(get_settings(), kinds, worker.concurrency)
        log.info("serving %s (%s tier) from %s, prefetch multiplier %d", ", ".join(k.value for k in kinds), tier,
                 ", ".join(app.amqp.queues.consume_from), worker.prefetch_multiplier)

    @staticmethod
    def take_lane(app: Any, kinds: list[Kind], tier: str, lane: str | None) -> str | None:
        """A lane's worker (``--lane urgent``) consumes its kinds' lane queues (``documents.urgent``) instead of
        their bulk queues, gathers a batch for at most :data:`LANE_MAX_WAIT_SECONDS`, and keeps its normal CPU
        priority (the lane is for what a person waits on)."""
        if lane is None:
            return None
        if tier != "compact":
            raise StartRefused(f"--lane {lane}: an escalated tier has no lane")
        lanes = {kind: LANE_QUEUES[lane][kind] for kind in kinds if kind in LANE_QUEUES[lane]}
        if not lanes:
            raise StartRefused(f"--lane {lane}: none of {', '.join(k.value for k in kinds)} has a {lane} lane")
        for kind, queue in lanes.items():
            app.amqp.queues.select_add(KombuQueue(queue))
            app.amqp.queues.deselect(QUEUES[kind])
            app.tasks[TASK_NAMES[kind]].flush_interval = min(app.tasks[TASK_NAMES[kind]].flush_interval,
                                                             LANE_MAX_WAIT_SECONDS)
        return lane


class Signing(SlimlineStep):
    """Producer keys, or an explicit opt-out (then a marker lets `status` and `health` warn); the audit key."""

    requires = (Queues,)
    marker: Any = None

    def prepare(self, worker: Any, **options: Any) -> None:
        from workers.security.worker_start import UnsignedMarker, check_audit_key, check_signing

        settings = get_settings()
        signed = check_signing(settings)
        check_audit_key()
        self.marker = None if signed else UnsignedMarker(settings)

    def start(self, worker: Any) -> None:
        if self.marker is not None:
            self.marker.start()

    def stop(self, worker: Any) -> None:
        if self.marker is not None:
            self.marker.stop()
            self.marker = None


class Database(SlimlineStep):
    """The database is reachable and migrated to this version."""

    requires = (Signing,)

    def prepare(self, worker: Any, **options: Any) -> None:
        from workers.db.engine import database_problem

        problem = database_problem(get_settings().database_url.get_secret_value())
        if problem is not None:
            raise StartRefused(problem[0])


class ModelKeys(SlimlineStep):
    """Encrypted model folders are decrypted into sealed memory files before the pool forks (the pool
    processes inherit them); a missing or wrong key refuses the start."""

    requires = (Database,)

    def prepare(self, worker: Any, **options: Any) -> None:
        from workers.security.worker_start import open_encrypted_models

        worker.app.conf.slimline_decrypted_models = open_encrypted_models(get_settings())
        worker.app.conf.slimline_settings = get_settings()


class LogMasking(SlimlineStep):
    """IBANs, card numbers, e-mails and phone numbers are masked in every log line, main and pool processes
    (which inherit the handlers)."""

    requires = (ModelKeys,)

    def prepare(self, worker: Any, **options: Any) -> None:
        from workers.security.masking import install_masking_filter

        covered = install_masking_filter([logging.getLogger("celery"), logging.getLogger("celery.task")])
        log.info("log masking on %d handler(s)", covered)


class CpuPriority(SlimlineStep):
    """Transactions get the CPU first: the gateway (which answers decisions in the request) at full priority, then
    workers of a latency-critical kind (SLIMLINE_LATENCY_WORKER_NICE), then the rest (SLIMLINE_WORKER_NICE); the
    pool inherits it. A lane's worker is never niced: a caller waits on each of its items."""

    requires = (LogMasking,)

    def prepare(self, worker: Any, **options: Any) -> None:
        from workers.runtime.threads import lower_cpu_priority

        settings = get_settings()
        kinds = {Kind(kind) for kind in worker.app.conf.slimline_consumed_kinds}
        if worker.app.conf.slimline_lane:
            return
        critical = bool(kinds & LATENCY_CRITICAL_KINDS)
        nice = settings.latency_worker_nice if critical else settings.worker_nice
        if nice:
            lower_cpu_priority(nice)
            log.info("running at nice %d: %s", nice, "below the gateway, above bulk workers" if critical
                     else "this worker serves no latency-critical queue")


class Metrics(SlimlineStep):
    """``/metrics`` and ``/ready`` from the main process (the multiprocess directory is chosen before the
    fork, so pool processes write their values there)."""

    requires = (CpuPriority,)
    server: Any = None

    def prepare(self, worker: Any, **options: Any) -> None:
        from workers.runtime import metrics

        settings = get_settings()
        self.server = metrics.start_metrics_server(
            settings, metrics.connectivity_check(settings), queues=worker.app.conf.slimline_consumed_kinds,
            processes=worker.concurrency)

    def stop(self, worker: Any) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


class PipelinesLoaded(SlimlineStep):
    """The consumer takes no message before every pool process has built and warmed up its pipelines
    (a model that fails to load stops the worker instead)."""

    requires = ("celery.worker.components:Pool", Metrics)
    PROGRESS_SECONDS = 10.0

    def prepare(self, worker: Any, **options: Any) -> None:
        self.loaded = process.count_loaded_processes(multiprocessing.get_context("fork").Value("i", 0))

    def start(self, worker: Any) -> None:
        pool = getattr(worker.pool, "_pool", None)
        if pool is None:  # a pool that does not fork (solo, threads): build the pipelines here
            process.load_pipelines(worker.app)
            return
        expected = worker.concurrency
        started = time.monotonic()
        reported = started
        while self.loaded.value < expected:
            if worker_state.should_stop is not None or worker_state.should_terminate is not None:
                return
            if time.monotonic() - reported > self.PROGRESS_SECONDS:
                reported = time.monotonic()
                log.info("waiting for the models: loaded in %d of %d pool processes", self.loaded.value, expected)
            time.sleep(0.05)
        log.info("models loaded in %d pool process(es) in %.1f s", expected, time.monotonic() - started)


class Drain(bootsteps.StartStopStep):
    """At stop (after running batches finished), every message this worker still holds — prefetched,
    buffered for a batch, or caught in a fetch — goes back to its queue at once, not after the
    visibility timeout."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def shutdown(self, consumer: Any) -> None:
        connection = getattr(consumer, "connection", None)
        if connection is None:
            return
        try:
            qos = connection.default_channel.qos
            held = len(qos._delivered) - len(qos._dirty)
            qos.restore_unacked_once()  # what the connection's close would do, here while the broker is known up
        except Exception as error:  # noqa: BLE001 - the broker is gone: other workers restore them after the timeout
            log.warning("could not return held messages at stop (%s); other workers restore them after the "
                        "visibility timeout", type(error).__name__)
            return
        if held:
            log.info("returned %d held message(s) to their queues", held)
