"""The gateway's ASGI app: ``create_app(settings)`` builds it, and ``slimline serve`` runs it under uvicorn.

- the API (workers/gateway/api.py) under ``/v1``;
- ``/health`` (and ``/ready``): 200 when Redis and the database answer, else 503 with the problems, as a worker's
  ``/ready``; ``/metrics``: the gateway's Prometheus metrics and the broker's queue metrics;
- ``/openapi.json``, and ``/docs`` (Swagger UI) and ``/redoc`` served from the gateway itself (fastapi-offline:
  no CDN, nothing fetched at run time);
- the review console, when its package is installed: ``workers.console`` exports ``router`` (a FastAPI
  ``APIRouter``), included as it is. Its pages reach what the gateway holds through ``request.app.state``:
  ``settings`` (:class:`workers.settings.Settings`) and ``services`` (:class:`workers.gateway.services.Services`:
  ``store``, the outcome store; ``redis``, an asyncio Redis client of the broker).
"""

from __future__ import annotations

import importlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic.json_schema import models_json_schema

from schemas import INPUT_MODELS
from workers.gateway.api import router as api_router
from workers.gateway.metrics import GatewayMetrics
from workers.gateway.responses import Health
from workers.gateway.services import Services
from workers.runtime.metrics import connectivity_check
from workers.settings import Settings

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    docs = settings.gateway.docs
    app = FastAPIOffline(title="Slimline gateway", version=_version(), docs_url="/docs" if docs else None,
                         redoc_url="/redoc" if docs else None, lifespan=_lifespan,
                         description="Documents, transactions and products over HTTP, into Slimline's queues. "
                                     "Authenticate with `Authorization: Bearer <API key>` (`slimline api-keys create`).")
    app.state.settings = settings
    app.state.services = services or Services(settings)
    app.state.metrics = GatewayMetrics(settings)
    app.state.readiness = connectivity_check(settings)
    app.include_router(api_router)
    app.add_api_route("/health", _health, methods=["GET"], response_model=Health, tags=["operations"],
                      summary="Redis and the database reachable (200), or the problems (503)")
    app.add_api_route("/ready", _health, methods=["GET"], response_model=Health, include_in_schema=False)
    app.add_api_route("/metrics", _metrics, methods=["GET"], tags=["operations"], summary="Prometheus metrics",
                      response_class=Response)
    include_console(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(TimingMiddleware)
    return app


def include_console(app: FastAPI) -> bool:
    """The review console's pages, when ``workers.console`` is installed (its own routes, auth and static files)."""
    try:
        console = importlib.import_module("workers.console")
    except ModuleNotFoundError as missing:
        if missing.name == "workers.console":
            return False
        raise
    app.include_router(console.router)
    return True


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    services: Services = app.state.services
    await anyio.to_thread.run_sync(services.warm_up)
    async with anyio.create_task_group() as background:
        background.start_soon(services.keep_rules_fresh)
        yield
        background.cancel_scope.cancel()
    await services.close()


async def _health(request: Request) -> JSONResponse:
    problems = await anyio.to_thread.run_sync(request.app.state.readiness)
    return JSONResponse(Health(ready=not problems, problems=problems).model_dump(),
                        status_code=200 if not problems else 503)


async def _metrics(request: Request) -> Response:
    body = await anyio.to_thread.run_sync(generate_latest, request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, plus the input contracts (schemas/messages.py) the ingest routes refer to."""
    if app.openapi_schema is None:
        document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        _, definitions = models_json_schema([(model, "validation") for model in INPUT_MODELS.values()],
                                            ref_template="#/components/schemas/{model}")
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(definitions.get("$defs", {}))
        document["components"]["securitySchemes"] = {"apiKey": {"type": "http", "scheme": "bearer"}}
        document["security"] = [{"apiKey": []}]
        app.openapi_schema = document
    return app.openapi_schema


class TimingMiddleware:
    """Requests and seconds per route template and status code (a plain ASGI middleware: no per-request task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, observed = time.perf_counter(), 500, False

        def observe() -> None:
            nonlocal observed
            observed = True
            path = getattr(scope.get("route"), "path", None) or "unmatched"
            scope["app"].state.metrics.observe(path, status, time.perf_counter() - started)

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body") and not observed:
                observe()  # the response is out: background work (recording rejections) is not counted

        try:
            await self.app(scope, receive, sending)
        finally:
            if not observed:
                observe()


def _version() -> str:
    try:
        return metadata.version("slimline")
    except metadata.PackageNotFoundError:
        return "unknown"
