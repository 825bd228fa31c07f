"""kombu's Redis transport with an atomic fetch, so that no message can vanish in transit.

Stock kombu takes a message with ``BRPOP`` and records it as unacknowledged in a second command.
Redis deletes the message when it sends the BRPOP reply, so a message is in neither place while the
reply sits unread in the worker's socket (a consumer keeps a BRPOP outstanding almost all the time),
and ``kill -9`` or a Redis restart at that moment loses it.

Here the message is moved atomically with ``BLMOVE`` into a fetching list owned by the channel;
recording it as unacknowledged and removing it from that list happen in one ``MULTI``. Each channel
keeps a heartbeat key alive; the periodic restore sweep (kombu's ``restore_visible``) returns the
contents of fetching lists whose owner stopped beating to their queues. Needs Redis >= 6.2.

While a queue holds messages, a channel does not block: one Lua script (``FETCH_MANY``) takes up to
32 of them (within the prefetch limit) and records each as unacknowledged exactly as kombu does, in
one atomic step and one round trip, instead of a BLMOVE and a MULTI per message. When the script
comes back with fewer than it asked for, the channel goes back to waiting with BLMOVE.

Only channels that consume work queues take part: Celery's control replies (``*.pidbox`` queues,
read by ``celery inspect``, Flower…) use kombu's stock fetch, and only a worker's channel runs the
restore sweep, so that no inspection can fetch, move or hold a message.

Leases: a worker renews the unacknowledged-index score of every message it holds at each sweep, so
kombu's restore (any worker's, for any queue) brings back only the messages of a worker that stopped
renewing — a dead one — however long a batch runs. Each sweep also refreshes a presence key per
channel (``slimline:worker:<owner>``: host, pid and queues), which ``status``, ``health`` and
``drain`` read to know which queues have a live consumer.

Selected with Celery's ``broker_transport`` setting; broker URLs stay ``redis://``/``rediss://``, or
``sentinel://`` with a ``master_name`` transport option (then over Sentinel: workers/runtime/sentinel.py).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from queue import Empty
from time import monotonic, time
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

FETCHING_LISTS = "slimline:fetching-lists"  # set of every fetching list key
UNPARSEABLE = "slimline:unparseable"  # raw items that are not kombu messages (kept, bounded)
# With several queues on one channel, BLMOVE waits on one queue at a time, this long at most.
MULTI_QUEUE_WAIT_SECONDS = 0.1
# While a queue holds messages, up to this many are fetched per round trip (within the prefetch limit).
FETCH_MANY_LIMIT = 32

# Takes up to ARGV[1] messages from the queue and records each as unacknowledged (kombu's hash entry
# [payload, exchange, routing key] and index score ARGV[2]) in the same atomic step, as QoS.append
# would one by one. An item that is no kombu message with a delivery tag goes to the fetching list
# (KEYS[4]) instead and takes the one-by-one path. Returns item, its delivery tag ("" if not recorded), ...
FETCH_MANY = """
local taken = {}
for _ = 1, tonumber(ARGV[1]) do
  local item = redis.call('RPOP', KEYS[1])
  if not item then break end
  local ok, message = pcall(cjson.decode, item)
  local properties = ok and type(message) == 'table' and message.properties
  local tag = type(properties) == 'table' and properties.delivery_tag
  local info = type(properties) == 'table' and properties.delivery_info
  if type(tag) == 'string' and type(info) == 'table' and type(info.exchange) == 'string'
      and type(info.routing_key) == 'string' then
    redis.call('HSET', KEYS[2], tag,
               '[' .. item .. ',' .. cjson.encode(info.exchange) .. ',' .. cjson.encode(info.routing_key) .. ']')
    redis.call('ZADD', KEYS[3], ARGV[2], tag)
    taken[#taken + 1] = item
    taken[#taken + 1] = tag
  else
    redis.call('LPUSH', KEYS[4], item)
    taken[#taken + 1] = item
    taken[#taken + 1] = ''
  end
end
return taken
"""


WORKER_PRESENCE_PREFIX = "slimline:worker:"
CONTROL_QUEUE_SUFFIX = ".pidbox"  # Celery's control reply queues end like this


def is_work_queue(queue: str) -> bool:
    return not queue.endswith(CONTROL_QUEUE_SUFFIX)


def presence_key(owner: str) -> str:
    return f"{WORKER_PRESENCE_PREFIX}{owner}"


def fetching_list(owner: str, queue: str) -> str:
    return f"slimline:fetching:{owner}:{queue}"


def heartbeat_key(owner: str) -> str:
    return f"slimline:fetching-alive:{owner}"


def _parse_fetching_list(key: str) -> tuple[str, str]:
    _, _, owner, queue = key.split(":", 3)
    return owner, queue


def is_kombu_message(payload: Any) -> bool:
    """The shape kombu's Redis transport delivers (FETCH_MANY checks the same in Lua)."""
    properties = payload.get("properties") if isinstance(payload, dict) else None
    info = properties.get("delivery_info") if isinstance(properties, dict) else None
    return isinstance(info, dict) and isinstance(properties.get("delivery_tag"), str) and \
        isinstance(info.get("exchange"), str) and isinstance(info.get("routing_key"), str)


def return_to_queue(client: Any, key: str) -> int:
    """Move every message of a fetching list back to the consuming end of its queue."""
    _, queue = _parse_fetching_list(key)
    moved = 0
    while client.lmove(key, queue, "RIGHT", "RIGHT") is not None:
        moved += 1
    return moved


def return_all_held_messages(url: str) -> int:
    """Return every message held in flight (fetching lists and kombu's unacknowledged hash) to its
    queue, as kombu's restore does. Only for a Redis none of whose workers is running any more
    (``slimline run``'s private one, after its workers stopped): a live worker's messages would be
    delivered twice."""
    from kombu import Connection

    with Connection(url, transport=Transport) as connection:
        channel = connection.default_channel
        with channel.conn_or_acquire() as client:
            returned = 0
            for raw_key in client.smembers(FETCHING_LISTS):
                key = bytes_to_str(raw_key)
                returned += return_to_queue(client, key)
                client.srem(FETCHING_LISTS, key)
            for tag in client.hkeys(channel.unacked_key):
                channel.qos.restore_by_tag(bytes_to_str(tag), client=client)
                returned += 1
    return returned


class QoS(kombu_redis.QoS):
    _ack_pipe: Any = None  # set while acknowledgements are gathered into one round trip

    @contextmanager
    def acks_in_one_round_trip(self) -> Iterator[None]:
        """Acknowledge several messages with one pipeline (a batch's worth, in the time of one). If the
        pipeline fails, the messages stay recorded as unacknowledged in Redis and come back after the
        visibility timeout (outcomes are idempotent)."""
        with self.channel.conn_or_acquire() as client:
            self._ack_pipe = client.pipeline()
            try:
                yield
                self._ack_pipe.execute()
            finally:
                self._ack_pipe = None

    def ack(self, delivery_tag: str) -> None:
        if self._ack_pipe is None:
            return super().ack(delivery_tag)
        self._remove_from_indices(delivery_tag, self._ack_pipe)
        virtual.QoS.ack(self, delivery_tag)

    def append(self, message: Any, delivery_tag: str) -> None:
        """Record the message as unacknowledged and take it off the fetching list, atomically (a message
        fetched with FETCH_MANY is recorded already)."""
        if self.channel.recorded_by_fetch:
            virtual.QoS.append(self, message, delivery_tag)
            return
        delivery = message.delivery_info
        fetched = self.channel.fetched
        with self.pipe_or_acquire() as pipe:
            pipe.zadd(self.unacked_index_key, {delivery_tag: time()})
            pipe.hset(self.unacked_key, delivery_tag,
                      dumps([message._raw, delivery["exchange"], delivery["routing_key"]]))
            if fetched is not None:
                pipe.lrem(fetched[0], 1, fetched[1])
            pipe.execute()
        virtual.QoS.append(self, message, delivery_tag)

    def restore_visible(self, start: int = 0, num: int = 10, interval: int = 10) -> None:
        """Only a worker (a channel consuming work queues) renews leases and sweeps."""
        if not self.channel.consumes_work_queues:
            return
        self.renew_leases()
        self.channel.sweep_fetching_lists()
        super().restore_visible(start=start, num=num, interval=interval)

    def renew_leases(self) -> None:
        """Mark every message this channel holds as fresh (``ZADD XX``: acked ones are not re-added)."""
        tags = [tag for tag in self._delivered if tag not in self._dirty]
        if not tags:
            return
        now = time()
        with self.channel.conn_or_acquire() as client:
            client.zadd(self.unacked_index_key, {tag: now for tag in tags}, xx=True)


class Channel(kombu_redis.Channel):
    QoS = QoS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = uuid.uuid4().hex
        self.fetched: tuple[str, bytes] | None = None  # (fetching list, raw item) during delivery
        self.recorded_by_fetch = False  # during delivery of a message FETCH_MANY recorded as unacknowledged
        self._fetch_queue: str | None = None
        self._fetch_many_count = 0  # messages asked of FETCH_MANY in the outstanding fetch; 0: a BLMOVE
        self._queue_may_hold_more = False  # the last fetch got what it asked for: do not block next time
        self._fetch_incomplete = False
        self._registered_lists: set[str] = set()
        self._presence_announced = False

    @property
    def heartbeat_seconds(self) -> int:
        return max(int(self.visibility_timeout), 5)

    @property
    def presence_seconds(self) -> int:
        """A live worker refreshes its presence at every sweep; three missed sweeps and it is gone."""
        return max(3 * int(self.unacked_restore_interval), 5)

    @property
    def consumes_work_queues(self) -> bool:
        return any(is_work_queue(queue) for queue in self.active_queues)

    @property
    def _uses_stock_fetch(self) -> bool:
        return bool(self.active_queues) and not self.consumes_work_queues

    def _register_fetching_list(self, queue: str) -> str:
        key = fetching_list(self.owner, queue)
        if key not in self._registered_lists:
            with self.conn_or_acquire() as client:
                client.pipeline().set(heartbeat_key(self.owner), 1, ex=self.heartbeat_seconds) \
                    .sadd(FETCHING_LISTS, key).execute()
            self._registered_lists.add(key)
        return key

    def _return_own_messages(self) -> None:
        with self.conn_or_acquire() as client:
            moved = sum(return_to_queue(client, key) for key in self._registered_lists)
        if moved:
            log.warning("returned %d message(s) from an interrupted fetch to their queues", moved)

    def _brpop_start(self, timeout: float | None = None) -> None:
        if self._uses_stock_fetch:
            return super()._brpop_start(timeout)
        if timeout is None:
            timeout = self.brpop_timeout
        queues = self._queue_cycle.consume(len(self.active_queues))
        if not queues:
            return
        if self._fetch_incomplete:  # the last fetch's reply was never handled: its message is ours
            self._return_own_messages()
            self._fetch_incomplete = False
        queue = queues[0]
        if len(queues) > 1:
            timeout = min(timeout, MULTI_QUEUE_WAIT_SECONDS)
        key = self._register_fetching_list(queue)
        self._fetch_queue = queue
        self._in_poll = self.client.connection
        self._brpop_sent_at = monotonic()
        self._fetch_incomplete = True
        self._fetch_many_count = self._fetch_many_allowance() if self._queue_may_hold_more else 0
        if self._fetch_many_count:  # a busy queue: many at once, without blocking
            self.client.connection.send_command("EVAL", FETCH_MANY, 4, queue, self.unacked_key,
                                                self.unacked_index_key, key, self._fetch_many_count, time())
        else:  # an idle queue: wait for one
            self.client.connection.send_command("BLMOVE", queue, key, "RIGHT", "LEFT", timeout or 0)

    def _fetch_many_allowance(self) -> int:
        estimate = self.qos.can_consume_max_estimate()
        return FETCH_MANY_LIMIT if estimate is None else max(0, min(FETCH_MANY_LIMIT, int(estimate)))

    def _brpop_read(self, **options: Any) -> bool:
        if self._uses_stock_fetch:
            return super()._brpop_read(**options)
        try:
            command = "EVAL" if self._fetch_many_count else "BLMOVE"
            try:
                reply = self.client.parse_response(self.client.connection, command, **options)
            except self.connection_errors:
                self.client.connection.disconnect()
                raise
            queue = str(self._fetch_queue)
            self._queue_cycle.rotate(queue)
            if command == "BLMOVE":
                fetched = [] if reply is None else [(reply, None)]
                self._queue_may_hold_more = reply is not None
            else:
                fetched = [(reply[index], bytes_to_str(reply[index + 1]) or None) for index in range(0, len(reply), 2)]
                self._queue_may_hold_more = len(fetched) == self._fetch_many_count
            if not fetched:
                self._fetch_incomplete = False
                raise Empty()
            self._deliver_all(fetching_list(self.owner, queue), queue, fetched)
            self._fetch_incomplete = False
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()

    def _deliver_all(self, key: str, queue: str, fetched: list[tuple[bytes, str | None]]) -> None:
        """Deliver each fetched item (with its delivery tag if FETCH_MANY recorded it). Items still in the
        fetching list if this fails go back at the next fetch; recorded ones are restored here, rather
        than after the visibility timeout."""
        delivered = 0
        try:
            for item, recorded_tag in fetched:
                try:
                    payload = loads(bytes_to_str(item))
                except ValueError:
                    payload = None
                if not is_kombu_message(payload):
                    self._set_aside_unparseable(key, item, recorded_tag)
                    delivered += 1
                    continue
                if recorded_tag:
                    self.recorded_by_fetch = True
                else:
                    self.fetched = (key, item)
                try:
                    self.connection._deliver(payload, queue)
                finally:
                    self.fetched, self.recorded_by_fetch = None, False
                delivered += 1
        finally:
            for _, recorded_tag in fetched[delivered:]:  # the one that failed too: restored once at most
                if recorded_tag:
                    self.qos.restore_by_tag(recorded_tag)

    def _set_aside_unparseable(self, key: str, item: bytes, recorded_tag: str | None = None) -> None:
        """Keep an item that is no kombu message (bounded) out of the way: off the fetching list, or out
        of the unacknowledged records if FETCH_MANY recorded it (JSON Lua decodes and Python does not)."""
        log.error("set aside an item of %s that is not a kombu message (kept in %s)", _parse_fetching_list(key)[1],
                  UNPARSEABLE)
        with self.conn_or_acquire() as client:
            pipe = client.pipeline()
            if recorded_tag:
                pipe.zrem(self.unacked_index_key, recorded_tag).hdel(self.unacked_key, recorded_tag)
            else:
                pipe.lrem(key, 1, item)
            pipe.lpush(UNPARSEABLE, item).ltrim(UNPARSEABLE, 0, 999).execute()

    def sweep_fetching_lists(self) -> None:
        """Beat this channel's heart; return messages of fetching lists whose owner is gone."""
        with self.conn_or_acquire() as client:
            presence = json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                   "queues": sorted(q for q in self.active_queues if is_work_queue(q))})
            client.set(presence_key(self.owner), presence, ex=self.presence_seconds)
            self._presence_announced = True
            if self._registered_lists:  # (re-added: a sweep elsewhere may have dropped them during a stall)
                client.pipeline().set(heartbeat_key(self.owner), 1, ex=self.heartbeat_seconds) \
                    .sadd(FETCHING_LISTS, *self._registered_lists).execute()
            for raw_key in client.smembers(FETCHING_LISTS):
                key = bytes_to_str(raw_key)
                owner, _ = _parse_fetching_list(key)
                if owner == self.owner or client.exists(heartbeat_key(owner)):
                    continue
                moved = return_to_queue(client, key)
                client.srem(FETCHING_LISTS, key)
                if moved:
                    log.warning("returned %d message(s) fetched by a lost consumer to their queue", moved)

    def close(self) -> None:
        if self._in_poll:  # take the outstanding reply first, so nothing more arrives in our lists
            try:
                self._brpop_read()
            except Empty:
                pass
            except self.connection_errors:
                pass
        if self._registered_lists:
            try:
                self._return_own_messages()
                with self.conn_or_acquire() as client:
                    client.pipeline().delete(heartbeat_key(self.owner)) \
                        .srem(FETCHING_LISTS, *self._registered_lists).execute()
            except Exception as error:  # another consumer's sweep returns them once our heartbeat stops
                log.warning("could not return fetched messages on close: %r", error)
        if self._presence_announced:
            try:
                with self.conn_or_acquire() as client:
                    client.delete(presence_key(self.owner))
            except Exception:  # noqa: BLE001 - it expires on its own
                pass
        super().close()


class Transport(kombu_redis.Transport):
    Channel = Channel

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        if client.transport_options.get("master_name"):  # a sentinel:// URL (workers/runtime/connection.py)
            from workers.runtime.sentinel import SentinelChannel

            self.Channel = SentinelChannel
