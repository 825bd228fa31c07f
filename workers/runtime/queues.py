"""Read-only views of the broker: queue depths, work in flight, live workers.

These use a plain Redis client and read-only commands (LLEN, HLEN, SCAN, GET): no inspection ever
fetches, moves or holds a message, and none takes part in the restore sweep.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis

from schemas import Kind
from workers.runtime.names import ESCALATION_QUEUES, QUEUES, lane_queues
from workers.pipelines import ESCALATING_KINDS, PIPELINE_KINDS
from workers.runtime.broker import FETCHING_LISTS, WORKER_PRESENCE_PREFIX
from workers.runtime.connection import broker_tls, redis_url
from workers.settings import Settings

# kombu's Redis transport keeps delivered-but-unacknowledged messages (incl. scheduled retries) here.
UNACKED_KEY = "unacked"


class BrokerUnreachable(RuntimeError):
    """Redis could not be reached; the message says where and what to do."""


def describe_redis(settings: Settings) -> str:
    """Where Redis is, without credentials."""
    url = redis.connection.parse_url(redis_url(settings))
    where = f"{url.get('host', '127.0.0.1')}:{url.get('port', 6379)}" if "path" not in url else url["path"]
    origin = "SLIMLINE_REDIS_URL" if settings.redis_url else "default; SLIMLINE_REDIS_URL is not set"
    return f"Redis at {where} ({origin})"


def inspection_client(settings: Settings, timeout: float = 3.0) -> redis.Redis:
    """A Redis client for read-only commands; raises :class:`BrokerUnreachable` at once if Redis is down."""
    options = {key: value for key, value in (broker_tls(settings) or {}).items()}
    client = redis.Redis.from_url(redis_url(settings), socket_connect_timeout=timeout, socket_timeout=timeout,
                                  **options)
    try:
        client.ping()
    except redis.AuthenticationError:
        raise BrokerUnreachable(f"{describe_redis(settings)} refused the credentials: check SLIMLINE_REDIS_URL") from None
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        raise BrokerUnreachable(f"cannot reach {describe_redis(settings)}: start Redis or set SLIMLINE_REDIS_URL "
                                f"(`slimline run` starts a private one)") from None
    return client


def work_queues(kinds: Iterable[Kind]) -> list[str]:
    """The queues of these kinds, with the escalation queues of the kinds that escalate and their lanes."""
    kinds = list(kinds)
    return ([QUEUES[kind] for kind in kinds] + [ESCALATION_QUEUES[kind] for kind in kinds if kind in ESCALATING_KINDS]
            + lane_queues(kinds))


def queue_depths(client: redis.Redis, kinds: Iterable[Kind] = tuple(Kind)) -> dict[str, int]:
    return {queue: int(client.llen(queue)) for queue in work_queues(kinds)}


def in_flight(client: redis.Redis) -> int:
    """Messages taken by workers and not yet acknowledged, including those between fetch and record."""
    fetching = [key for key in client.smembers(FETCHING_LISTS)]
    return int(client.hlen(UNACKED_KEY)) + sum(int(client.llen(key)) for key in fetching)


@dataclass(frozen=True)
class LiveWorker:
    host: str
    pid: int
    queues: tuple[str, ...]


def live_workers(client: redis.Redis) -> list[LiveWorker]:
    """Workers whose presence key is fresh (refreshed at every restore sweep; see workers/runtime/broker.py)."""
    workers = []
    for key in client.scan_iter(match=f"{WORKER_PRESENCE_PREFIX}*", count=500):
        raw = client.get(key)
        try:
            presence = json.loads(raw) if raw else None
            workers.append(LiveWorker(str(presence["host"]), int(presence["pid"]), tuple(presence["queues"])))
        except (ValueError, KeyError, TypeError):
            continue
    return workers


def unserved_queues(client: redis.Redis, kinds: Iterable[Kind] = PIPELINE_KINDS) -> list[str]:
    """Non-empty queues that no live worker consumes."""
    served = {queue for worker in live_workers(client) for queue in worker.queues}
    return [queue for queue, depth in queue_depths(client, kinds).items() if depth and queue not in served]


def outstanding(client: redis.Redis, kinds: Iterable[Kind] = PIPELINE_KINDS) -> int:
    return sum(queue_depths(client, kinds).values()) + in_flight(client)


def wait_until_drained(client: redis.Redis, timeout: float, poll: float = 0.25,
                       kinds: Iterable[Kind] = PIPELINE_KINDS,
                       on_poll: Callable[[int], None] | None = None) -> bool:
    """True once the queues of ``kinds`` are empty and nothing is in flight, on two polls in a row;
    False on timeout. ``on_poll`` gets the number of messages still outstanding."""
    deadline = time.monotonic() + timeout
    quiet_polls = 0
    while time.monotonic() < deadline:
        busy = outstanding(client, kinds)
        if on_poll:
            on_poll(busy)
        quiet_polls = quiet_polls + 1 if busy == 0 else 0
        if quiet_polls >= 2:
            return True
        time.sleep(poll)
    return False
