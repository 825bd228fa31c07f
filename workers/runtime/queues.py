"""Read-only views of the broker: queue depths and work in flight."""

from __future__ import annotations

import time
from collections.abc import Iterable

import redis
from celery import Celery

from schemas import Kind
from tasks.names import QUEUES
from workers.runtime.broker import FETCHING_LISTS
from workers.pipelines import PIPELINE_KINDS

# kombu's Redis transport keeps delivered-but-unacknowledged messages (incl. scheduled retries) here.
UNACKED_KEY = "unacked"


def broker_client(app: Celery) -> redis.Redis:
    """A Redis client configured exactly as the app's broker connection (password, TLS, timeouts)."""
    return app.connection_for_read().default_channel.client


def queue_depths(client: redis.Redis, kinds: Iterable[Kind] = tuple(Kind)) -> dict[str, int]:
    return {QUEUES[kind]: int(client.llen(QUEUES[kind])) for kind in kinds}


def in_flight(client: redis.Redis) -> int:
    """Messages taken by workers and not yet acknowledged, including those between fetch and record."""
    fetching = [key for key in client.smembers(FETCHING_LISTS)]
    return int(client.hlen(UNACKED_KEY)) + sum(int(client.llen(key)) for key in fetching)


def wait_until_drained(client: redis.Redis, timeout: float, poll: float = 0.25,
                       kinds: Iterable[Kind] = PIPELINE_KINDS) -> bool:
    """True once the queues of ``kinds`` are empty and nothing is in flight, on two polls in a row;
    False on timeout."""
    deadline = time.monotonic() + timeout
    quiet_polls = 0
    while time.monotonic() < deadline:
        busy = sum(queue_depths(client, kinds).values()) + in_flight(client)
        quiet_polls = quiet_polls + 1 if busy == 0 else 0
        if quiet_polls >= 2:
            return True
        time.sleep(poll)
    return False
