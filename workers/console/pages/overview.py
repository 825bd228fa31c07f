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

    @router.get("/report")
    def report(request: Request, days: float = 7, viewer: Viewer = console.role()) -> Response:
        """The cost and accuracy report (`slimline report`), when that part is installed, as its JSON."""
        built, error = cost_report(console, max(min(days, 366), 0.01))
        return console.render(request, "report.html", built=built, error=error, days=days)

    return router


def cost_report(console: Console, days: float) -> tuple[str | None, str | None]:
    """(the report as JSON, None) or (None, why not). The report is a separate part: nothing here needs it."""
    if not report_available():
        return None, "The cost and accuracy report (`slimline report`) is not installed here."
    try:
        from workers.report.build import build_report
        from workers.report.render import to_json

        now = utcnow()
        return to_json(build_report(console.store, console.settings.report, now - timedelta(days=days), now)), None
    except Exception as error:  # noqa: BLE001 - an optional part: say so, keep the console up
        return None, f"The cost and accuracy report could not be built here ({type(error).__name__})."


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
