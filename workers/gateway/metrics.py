"""Prometheus metrics of the gateway, served on its own /metrics with the depth of every queue (LLEN only: the
gateway's Redis user reads no message; the workers serve the rest of the broker's state)."""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from workers.runtime.metrics import broker_client
from workers.runtime.names import QUEUES, lane_queues
from workers.settings import Settings

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10)


class GatewayMetrics:
    def __init__(self, settings: Settings) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("slimline_gateway_requests", "HTTP requests by route and status code.",
                                ["route", "status"], registry=self.registry)
        self.seconds = Histogram("slimline_gateway_request_seconds", "Seconds from request to response, by route.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.items = Counter("slimline_gateway_items", "Items by kind and status (accepted, rejected, too_large, "
                             "not_sent, stored, failed, pending).", ["kind", "status"], registry=self.registry)
        self.decisions = Counter("slimline_gateway_decisions", "Synchronous decisions by source: gateway (decided in "
                                 "the request), worker (the stored decision) or rules_only (the deadline passed).",
                                 ["source"], registry=self.registry)
        self.registry.register(QueueDepths(broker_client(settings)))

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.seconds.labels(route).observe(seconds)


class QueueDepths(Collector):
    """``slimline_queue_depth`` of the queues the gateway sends to, as the workers report it, read at scrape time."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def collect(self) -> Iterator[Metric]:
        try:
            depths = {queue: int(self.client.llen(queue)) for queue in [*QUEUES.values(), *lane_queues()]}
        except redis.RedisError:
            return  # Redis is down: /health says so
        depth = GaugeMetricFamily("slimline_queue_depth", "Messages waiting in the queue.", labels=["queue"])
        for queue, length in depths.items():
            depth.add_metric([queue], length)
        yield depth
