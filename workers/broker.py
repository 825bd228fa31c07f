"""kombu's Redis transport with one gap in its at-least-once delivery closed.

kombu takes a message off its queue (BRPOP), then records it as unacknowledged in a second
command. If Redis goes away between the two (a restart, a failover), stock kombu drops the
message: it is neither in the queue nor in the ``unacked`` hash. Here such a message is kept
in memory and pushed back to its queue as soon as the consumer has a connection again.
Selected with Celery's ``broker_transport`` setting; broker URLs stay ``redis://``/``rediss://``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)

_orphans: list[tuple[dict[str, Any], str, str]] = []  # (raw message, exchange, routing key)
_orphans_lock = threading.Lock()


def orphan_count() -> int:
    with _orphans_lock:
        return len(_orphans)


class QoS(kombu_redis.QoS):
    def append(self, message: Any, delivery_tag: str) -> None:
        try:
            super().append(message, delivery_tag)
        except Exception:
            delivery = message.delivery_info
            with _orphans_lock:
                _orphans.append((message._raw, delivery["exchange"], delivery["routing_key"]))
            log.warning("broker connection lost while taking message %s; it will be returned to its queue",
                        delivery_tag)
            raise


class Channel(kombu_redis.Channel):
    QoS = QoS

    def basic_consume(self, *args: Any, **kwargs: Any) -> Any:
        self._return_orphans()
        return super().basic_consume(*args, **kwargs)

    def _return_orphans(self) -> None:
        with _orphans_lock:
            pending = list(_orphans)
            _orphans.clear()
        if not pending:
            return
        try:
            with self.conn_or_acquire() as client:
                pipe = client.pipeline()
                for raw, exchange, routing_key in pending:
                    self._do_restore_message(raw, exchange, routing_key, pipe)
                pipe.execute()
        except Exception:
            with _orphans_lock:
                _orphans.extend(pending)
            raise
        log.warning("returned %d message(s) taken during a broker outage to their queues", len(pending))


class Transport(kombu_redis.Transport):
    Channel = Channel
