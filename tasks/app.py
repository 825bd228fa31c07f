"""The Celery app: Redis broker, JSON only, late acks, tuned redelivery, one queue per kind, and the worker's
lifecycle as bootsteps (workers/lifecycle/), so `celery -A tasks.app worker` is a complete Slimline worker."""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from schemas import Kind
from workers.runtime.names import ESCALATION_QUEUES, QUEUES, TASK_NAMES
from tasks.process import register_batch_tasks
from workers.runtime.connection import broker_tls, broker_transport_options, redis_url
from workers import lifecycle
from workers.settings import Settings, get_settings
from workers.runtime.threads import pin_native_threads

def create_app(settings: Settings) -> Celery:
    app = Celery("slimline", set_as_current=True)
    app.conf.update(
        broker_url=redis_url(settings),
        # kombu's Redis transport with an atomic fetch (see workers/runtime/broker.py).
        broker_transport="workers.runtime.broker:Transport",
        broker_transport_options=broker_transport_options(settings),
        broker_use_ssl=broker_tls(settings),
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        # JSON only: a pickled message is refused (and recorded as a rejection), never executed.
        task_serializer="json",
        result_serializer="json",
        event_serializer="json",
        accept_content=["json"],
        # Outcomes live in the database; nothing is kept in Redis per task.
        result_backend=None,
        task_ignore_result=True,
        # At-least-once: ack after the outcome is stored.
        task_acks_late=True,
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 20, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 3},
        task_queues=[Queue(name) for name in (*QUEUES.values(), *ESCALATION_QUEUES.values())],
        task_routes={TASK_NAMES[kind]: {"queue": QUEUES[kind]} for kind in Kind},
        task_default_queue=QUEUES[Kind.documents],
        task_create_missing_queues=False,
        worker_consumer="workers.runtime.consumer:RecordingConsumer",
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        # 0: sized by the worker's Queues bootstep from the batch sizes and the byte budget
        # (an explicit --prefetch-multiplier wins).
        worker_prefetch_multiplier=0,
    )
    app.conf.slimline_settings = settings
    register_batch_tasks(app, settings)
    lifecycle.install(app)
    return app


pin_native_threads(get_settings().threads_per_process)
app = create_app(get_settings())
