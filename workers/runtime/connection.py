"""How Slimline connects to Redis: URL, TLS and kombu transport options, shared by the Celery app and
the read-only inspection client. A ``sentinel://`` URL (one or more Sentinels, ``;``-separated) reaches the master
the Sentinels name (workers/runtime/sentinel.py)."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import unquote, urlparse

import redis
from redis.sentinel import Sentinel

from workers.settings import Settings

LOCAL_REDIS = "redis://127.0.0.1:6379/0"
SENTINEL_PORT = 26379
# kombu's restore sweep holds a mutex key while it runs (300 s by default). A master that dies mid-sweep leaves
# the key on the replica it promoted (and an append-only file keeps it across a restart): nobody would restore
# unacknowledged messages until it expires. Sweeps take milliseconds, and two at once are safe (each message is
# restored in a WATCH transaction), so the key may expire soon.
UNACKED_MUTEX_SECONDS = 10


def redis_url(settings: Settings) -> str:
    return settings.redis_url.get_secret_value() if settings.redis_url else LOCAL_REDIS


def uses_sentinel(settings: Settings) -> bool:
    return redis_url(settings).startswith("sentinel://")


def sentinel_addresses(url: str) -> list[tuple[str, int]]:
    """``sentinel://[:password@]host:port;sentinel://host2:port/db`` → [(host, port), …]."""
    return [(parsed.hostname or "127.0.0.1", parsed.port or SENTINEL_PORT)
            for parsed in (urlparse(part) for part in url.split(";") if part.strip())]


def replicas_to_confirm(settings: Settings) -> int:
    """How many replicas must hold a producer's messages before they count as enqueued (0: no confirmation)."""
    configured = settings.sentinel.confirm_replicas
    return configured if configured is not None else (1 if uses_sentinel(settings) else 0)


def _sentinel_kwargs(settings: Settings, timeout: float) -> dict[str, Any]:
    options: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if settings.sentinel.password is not None:
        options["password"] = settings.sentinel.password.get_secret_value()
    return options


def redis_client(settings: Settings, **options: Any) -> redis.Redis:
    """A plain client (inspection, probes, metrics): the URL's server, or the master the Sentinels name."""
    url = redis_url(settings)
    if not uses_sentinel(settings):
        return redis.Redis.from_url(url, **options, **(broker_tls(settings) or {}))
    first = urlparse(url.split(";")[0])
    last = urlparse(url.split(";")[-1])
    database = int(last.path.strip("/") or 0)
    password = unquote(first.password) if first.password else None
    timeout = float(options.get("socket_timeout") or 5)
    sentinel = Sentinel(sentinel_addresses(url), sentinel_kwargs=_sentinel_kwargs(settings, timeout))
    return sentinel.master_for(settings.sentinel.master_name, db=database, password=password, **options)


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
        "unacked_mutex_expire": UNACKED_MUTEX_SECONDS,
    } | (_sentinel_transport_options(settings) if uses_sentinel(settings) else {})


def _sentinel_transport_options(settings: Settings) -> dict[str, object]:
    """kombu's Sentinel options; ``master_name`` also makes the broker's Transport use its Sentinel channel."""
    return {"master_name": settings.sentinel.master_name, "sentinel_kwargs": _sentinel_kwargs(settings, 5)}


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
