"""Slimline's Redis transport (workers/runtime/broker.py: atomic fetch, leases, presence) over Redis Sentinel.

kombu's ``SentinelChannel`` asks the Sentinels which server is master whenever it opens a connection; this
channel combines it with ours, so a worker that loses its master reconnects to whichever replica the Sentinels
promoted, and keeps its delivery guarantees there. The broker's ``Transport`` (``broker_transport`` in
tasks/app.py) switches to this channel when the transport options name a master (``master_name``), which
workers/runtime/connection.py sets for ``sentinel://`` URLs.

What a failover costs (README, "Redis failover"; tests/test_sentinel_failover.py): replication is
asynchronous, so the promoted replica may miss the master's last writes. A lost fetch or acknowledgement makes
a message come back (processed again, stored once); a lost enqueue would lose the message, which is why
producers confirm their messages on a replica before they count as enqueued (workers/runtime/publish.py).
"""

from __future__ import annotations

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import redis as kombu_redis

from workers.runtime import broker

# With several Sentinel URLs, a connection that finds no master moves on to the next URL (kombu's
# Connection.switch), which takes the transport from the URL's scheme: "sentinel" would swap this transport for
# kombu's stock one mid-run (no atomic fetch, no leases, and every batch's acknowledgement fails). Found by
# tests/test_sentinel_failover.py. From the first Sentinel connection on, the scheme names this transport.
TRANSPORT_ALIASES["sentinel"] = "workers.runtime.sentinel:Transport"


class SentinelChannel(broker.Channel, kombu_redis.SentinelChannel):
    """broker.Channel's fetch and sweep, on connections to the master the Sentinels name."""


class Transport(broker.Transport):
    Channel = SentinelChannel
    default_port = 26379
