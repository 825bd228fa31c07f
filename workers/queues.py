"""Read-only views of the broker: queue depths and work in flight."""

from __future__ import annotations

import redis
from celery import Celery

from schemas import Kind
from tasks.names import QUEUES

# kombu's Redis transport keeps delivered-but-unacknowledged messages (incl. scheduled retries) here.
UNACKED_KEY = "unacked"


def broker_client(app: Celery) -> redis.Redis:
    return redis.Redis.from_url(app.conf.broker_url, socket_timeout=10, socket_connect_timeout=5)


def queue_depths(client: redis.Redis) -> dict[str, int]:
    return {QUEUES[kind]: int(client.llen(QUEUES[kind])) for kind in Kind}


def in_flight(client: redis.Redis) -> int:
    return int(client.hlen(UNACKED_KEY))
