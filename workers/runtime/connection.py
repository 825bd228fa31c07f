"""How Slimline connects to Redis: URL, TLS and kombu transport options, shared by the Celery app and
the read-only inspection client."""

from __future__ import annotations

import ssl
from typing import Any

from workers.settings import Settings

LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def redis_url(settings: Settings) -> str:
    return settings.redis_url.get_secret_value() if settings.redis_url else LOCAL_REDIS


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
