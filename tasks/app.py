"""The Celery app: Redis broker, JSON only, late acks, tuned redelivery, one queue per kind."""

from __future__ import annotations

import ssl
from typing import Any

from celery import Celery
from kombu import Queue

from schemas import Kind
from tasks.names import QUEUES, TASK_NAMES
from workers.settings import Settings, get_settings
from workers.runtime.threads import pin_native_threads

LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def broker_transport_options(settings: Settings) -> dict[str, object]:
    return {
        # A message delivered to a worker that died comes back after this many seconds.
        "visibility_timeout": settings.visibility_timeout_seconds,
        # ...checked every restore_interval seconds (kombu's default sweep runs every ~100 s).
        "unacked_restore_interval": settings.restore_interval_seconds,
        "unacked_restore_throttle": 1,
        # Slimline does not use message priorities: one Redis list per queue (workers/runtime/broker.py fetches from it).
        "priority_steps": [0],
        "socket_timeout": 30,
        "socket_connect_timeout": 5,
        "health_check_interval": 10,
    }


def broker_tls(settings: Settings) -> dict[str, Any] | None:
    """TLS options for a ``rediss://`` broker: the server certificate is always verified."""
    if settings.redis_url is None or not settings.redis_url.get_secret_value().startswith("rediss://"):
        return None
    options: dict[str, Any] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    for key, path in (("ssl_ca_certs", settings.redis_tls_ca_file), ("ssl_certfile", settings.redis_tls_cert_file),
                      ("ssl_keyfile", settings.redis_tls_key_file)):
        if path is not None:
            options[key] = str(path)
    return options


def create_app(settings: Settings) -> Celery:
    app = Celery("slimline", set_as_current=True)
    app.conf.update(
        broker_url=settings.redis_url.get_secret_value() if settings.redis_url else LOCAL_REDIS,
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
        task_queues=[Queue(name) for name in QUEUES.values()],
        task_routes={TASK_NAMES[kind]: {"queue": QUEUES[kind]} for kind in Kind},
        task_default_queue=QUEUES[Kind.documents],
        task_create_missing_queues=False,
        worker_consumer="workers.runtime.consumer:RecordingConsumer",
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
    )
    app.conf.slimline_settings = settings
    return app


pin_native_threads(get_settings().threads_per_process)
app = create_app(get_settings())

# Registers the tasks on the app.
import tasks.documents  # noqa: E402,F401
