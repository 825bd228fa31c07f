"""The review console as one FastAPI router, which `slimline serve` includes (``workers.console.router``)::

    app.include_router(console_router())   # pages under /console

Every page is server-rendered (Jinja2, autoescaped) with htmx vendored under /console/static/."""

from __future__ import annotations

from fastapi import APIRouter

from workers.console.pages import admin, documents, flags, login, overview, products, rules
from workers.console.web import Console
from workers.db.store import OutcomeStore
from workers.settings import Settings


def console_router(settings: Settings | None = None, store: OutcomeStore | None = None,
                   prefix: str = "/console") -> APIRouter:
    """Pages use the serving app's ``state.settings`` and ``state.services.store`` when it has them (the
    gateway's), else these, else the environment's."""
    console = Console(settings, store, prefix)
    router = APIRouter(prefix=console.prefix, include_in_schema=False)
    for page in (login, overview, flags, rules, documents, products, admin):
        router.include_router(page.routes(console))
    return router
