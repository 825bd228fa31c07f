"""Read-only views of the broker: queue depths and work in flight."""

from __future__ import annotations

import time

import redis
from celery import Celery

from schemas import Kind
from tasks.names import QUEUES

# kombu's Redis transport keeps delivered-but-unacknowledged messages (incl. scheduled retries) here.
UNACKED_KEY = "unacked"


def broker_client(app: Celery) -> redis.Redis:
    """A Redis client configured exactly as the app's broker connection (password, TLS, timeouts)."""
    return app.connection_for_read().default_channel.client


def queue_depths(client: redis.Redis) -> dict[str, int]:
    return {QUEUES[kind]: int(client.llen(QUEUES[kind])) for kind in Kind}


def in_flight(client: redis.Redis) -> int:
    return int(client.hlen(UNACKED_KEY))


def wait_until_drained(client: redis.Redis, timeout: float, poll: float = 0.25) -> bool:
    """True once no message is queued or in flight on two polls in a row (a retry may sit between
    the original's ack and its republish for an instant); False on timeout."""
    deadline = time.monotonic() + timeout
    quiet_polls = 0
    while time.monotonic() < deadline:
        busy = sum(queue_depths(client).values()) + in_flight(client)
        quiet_polls = quiet_polls + 1 if busy == 0 else 0
        if quiet_polls >= 2:
            return True
        time.sleep(poll)
    return False
