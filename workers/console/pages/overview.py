"""The overview: queues, workers, throughput and errors, from the same sources as `slimline status`
(read-only Redis views, the store's counts); and the cost and accuracy report where it is installed."""

from __future__ import annotations

import importlib.util
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from workers.console.auth import Viewer
from workers.console.web import Console
from workers.db.models import utcnow


def routes(console: Console) -> APIRouter:
    router = APIRouter(route_class=console.route_class())

    @router.get("/")
    def overview(request: Request, viewer: Viewer = console.role()) -> Response:
        store = console.store
        now = utcnow()
        return console.render(
            request, "overview.html", broker=broker_view(console), counts=store.counts(),
            waiting=store.review_counts(), last_5m=store.activity(now - timedelta(minutes=5)),
            last_hour=store.activity(now - timedelta(hours=1)), report=report_available())

    return router


def broker_view(console: Console) -> dict[str, Any]:
    """Queue depths, messages in flight and live workers; or why Redis could not be read."""
    from workers.runtime.queues import BrokerUnreachable, in_flight, inspection_client, live_workers, queue_depths

    try:
        client = inspection_client(console.settings, timeout=1.0)
    except BrokerUnreachable as error:
        return {"error": str(error)}
    try:
        workers = live_workers(client)
        depths = queue_depths(client)
        return {"error": None, "in_flight": in_flight(client),
                "queues": [{"name": queue, "depth": depth,
                            "workers": sum(queue in worker.queues for worker in workers)}
                           for queue, depth in depths.items()],
                "workers": sorted(workers, key=lambda worker: (worker.host, worker.pid))}
    except Exception as error:  # noqa: BLE001 - the page shows the rest
        return {"error": f"could not read the queues: {type(error).__name__}"}
    finally:
        client.close()


def report_available() -> bool:
    """The cost and accuracy report (`slimline report`, workers/report/) is a separate, optional part."""
    return importlib.util.find_spec("workers.report") is not None
