"""Prometheus metrics of the gateway, served on its own /metrics beside the broker's queue metrics (the same
collector the workers serve), and /health (the workers' /ready checks: broker and database reachable)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from workers.runtime.metrics import BrokerCollector, broker_client
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
        self.decisions = Counter("slimline_gateway_decisions", "Synchronous decisions by source: worker (the stored "
                                 "decision) or rules_only (the deadline passed).", ["source"], registry=self.registry)
        self.registry.register(BrokerCollector(broker_client(settings)))

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.seconds.labels(route).observe(seconds)
