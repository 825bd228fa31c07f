"""The console alone in an ASGI app: for tests and local use until it is served by `slimline serve`::

    uvicorn --factory workers.console.standalone:create_app --port 8080
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import RedirectResponse

from workers.console.router import console_router


def create_app() -> FastAPI:
    app = FastAPI(title="Slimline review console", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(console_router())

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=303)

    return app
