"""The broker transport's helpers, against a real Redis server."""

from __future__ import annotations

from kombu import Connection

from workers.runtime.broker import Transport, return_all_held_messages
from workers.runtime.queues import in_flight
from workers.runtime.redis_server import RedisServer


def test_held_messages_of_stopped_workers_go_back_to_their_queue_once(redis_server: RedisServer) -> None:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    with Connection(redis_server.url, transport=Transport) as producer:
        queue = producer.SimpleQueue("documents")
        for number in range(3):
            queue.put({"n": number})
        held = [queue.get(timeout=5) for _ in range(2)]  # delivered, never acknowledged (and maybe one prefetched)
        in_transit = in_flight(client)
        assert in_transit >= 2 and in_transit + client.llen("documents") == 3

        assert return_all_held_messages(redis_server.url) == in_transit
        assert in_flight(client) == 0 and client.llen("documents") == 3
        assert return_all_held_messages(redis_server.url) == 0
        queue.close()  # the holder's own restore at close finds nothing left to restore
    assert client.llen("documents") == 3 and sorted(m.payload["n"] for m in held) == [0, 1]
