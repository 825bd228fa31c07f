"""The review console as one FastAPI router, for `slimline serve` to include::

    from workers.console.router import console_router
    app.include_router(console_router(settings))   # pages under /console

Every page is server-rendered (Jinja2, autoescaped) with htmx vendored under /console/static/."""

from __future__ import annotations

from fastapi import APIRouter

from workers.console.pages import admin, documents, flags, login, overview, products, rules
from workers.console.web import Console
from workers.db.store import OutcomeStore
from workers.settings import Settings, get_settings


def console_router(settings: Settings | None = None, store: OutcomeStore | None = None,
                   prefix: str = "/console") -> APIRouter:
    console = Console(settings or get_settings(), store, prefix)
    router = APIRouter(prefix=console.prefix, include_in_schema=False)
    for page in (login, overview, flags, rules, documents, products, admin):
        router.include_router(page.routes(console))
    return router
