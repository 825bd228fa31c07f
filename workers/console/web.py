"""What every console page shares: the templates (autoescaped), the logged-in viewer, role checks, CSRF
checks, error pages and security headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from workers.console.auth import Viewer, same_token, token_hash
from workers.db.store import OutcomeStore
from workers.db.store.console import ConflictError
from workers.settings import Settings, get_settings

TEMPLATES = Path(__file__).parent / "templates"
SESSION_COOKIE = "slimline_session"
LOGIN_CSRF_COOKIE = "slimline_login_csrf"
CSRF_HEADER = "X-CSRF-Token"

# Scripts only from the console itself (htmx, vendored), no inline script or handler, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                                "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class NotLoggedIn(Exception):
    pass


class Denied(Exception):
    """403: outside the viewer's roles, or a form without its CSRF token."""


class NotFound(Exception):
    pass


class Invalid(Exception):
    """422: a form a person can correct; the message says what to change."""


# The state of the app serving the request being handled (set by the console's route class).
_app_state: ContextVar[Any] = ContextVar("console_app_state", default=None)


class Console:
    """The console's settings, store and templates, shared by its pages. Served by the gateway, it uses the
    gateway's (``app.state.settings``, ``app.state.services.store``); else its own, from the environment."""

    def __init__(self, settings: Settings | None = None, store: OutcomeStore | None = None,
                 prefix: str = "/console") -> None:
        self._settings = settings
        self._store = store
        self.prefix = prefix.rstrip("/")
        environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                                  trim_blocks=True, lstrip_blocks=True)
        environment.globals.update(prefix=self.prefix, url=self.url)
        environment.filters["money"] = _money
        environment.filters["when"] = _when
        self.templates = Jinja2Templates(env=environment)

    @property
    def settings(self) -> Settings:
        app_settings = getattr(_app_state.get(), "settings", None)
        if isinstance(app_settings, Settings):
            return app_settings
        if self._settings is None:
            self._settings = get_settings()
        return self._settings

    @property
    def store(self) -> OutcomeStore:
        services = getattr(_app_state.get(), "services", None)
        if isinstance(getattr(services, "store", None), OutcomeStore):
            return services.store  # type: ignore[union-attr]
        if self._store is None:
            self._store = OutcomeStore.from_url(self.settings.database_url.get_secret_value())
        return self._store

    def url(self, path: str, **query: Any) -> str:
        """A console URL; query values are encoded (item ids may hold '/', '+', ':' or '@')."""
        query = {key: value for key, value in query.items() if value not in (None, "")}
        return f"{self.prefix}{path}" + (f"?{urlencode(query, quote_via=quote)}" if query else "")

    # --- who is asking ---------------------------------------------------------------------------

    def viewer(self, request: Request) -> Viewer:
        """The logged-in person (raises NotLoggedIn)."""
        cached = getattr(request.state, "console_viewer", None)
        if cached is not None:
            return cached
        token = request.cookies.get(SESSION_COOKIE)
        found = self.store.session_user(token_hash(token), timedelta(minutes=self.settings.console.idle_minutes)) \
            if token else None
        if found is None:
            raise NotLoggedIn()
        viewer = Viewer.of(*found)
        request.state.console_viewer = viewer
        return viewer

    def optional_viewer(self, request: Request) -> Viewer | None:
        try:
            return self.viewer(request)
        except NotLoggedIn:
            return None

    def require(self, *roles: str) -> Callable[[Request], Viewer]:
        """A dependency: the viewer, if they hold one of ``roles``; else 403 (audited)."""
        def dependency(request: Request) -> Viewer:
            viewer = self.viewer(request)
            if roles and not viewer.can(*roles):
                self.store.audit(viewer.username, "console.denied", None,
                                 {"path": request.url.path, "method": request.method, "needs": list(roles)})
                raise Denied(f"This needs the role {' or '.join(roles)}; you have "
                             f"{', '.join(sorted(viewer.roles)) or 'none'}.")
            return viewer
        return dependency

    def role(self, *roles: str) -> Any:
        """``viewer: Viewer = console.role("analyst")`` in a route's parameters (no roles: any logged-in person)."""
        return Depends(self.require(*roles))

    def depends_form(self) -> Any:
        """``form: FormData = console.depends_form()`` in a POST route's parameters: CSRF-checked."""
        return Depends(self.form)

    async def form(self, request: Request) -> FormData:
        """A dependency for every POST: the form, once its CSRF token matches the session's (else 403)."""
        form = await request.form()
        token = form.get("csrf_token") or request.headers.get(CSRF_HEADER)
        viewer = await _in_thread(self.viewer, request)
        if not same_token(viewer.csrf_token, token if isinstance(token, str) else None):
            await _in_thread(self.store.audit, viewer.username, "console.csrf_refused", None,
                             {"path": request.url.path})
            raise Denied("This form's security token is missing or does not match your session: reload the page "
                         "and try again.")
        return form

    # --- responses -------------------------------------------------------------------------------

    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
        context.setdefault("viewer", getattr(request.state, "console_viewer", None))
        context.setdefault("notice", request.query_params.get("notice"))
        return self.templates.TemplateResponse(request, template, context, status_code=status_code)

    def redirect(self, path: str, **query: Any) -> RedirectResponse:
        return RedirectResponse(self.url(path, **query), status_code=303)

    def route_class(self) -> type[APIRoute]:
        console = self

        class ConsoleRoute(APIRoute):
            """Turns the console's expected failures into pages, and adds the security headers."""

            def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
                handler = super().get_route_handler()

                async def handle(request: Request) -> Response:
                    serving = _app_state.set(request.app.state)
                    try:
                        response = await handler(request)
                    except NotLoggedIn:
                        response = console._to_login(request)
                    except Denied as error:
                        response = console._error(request, 403, "Not allowed", str(error))
                    except (NotFound, LookupError) as error:
                        response = console._error(request, 404, "Not found", _message(error))
                    except ConflictError as error:
                        response = console._error(request, 409, "Cannot do that now", str(error))
                    except Invalid as error:
                        response = console._error(request, 422, "Please correct the form", str(error))
                    finally:
                        _app_state.reset(serving)
                    for name, value in SECURITY_HEADERS.items():
                        response.headers.setdefault(name, value)
                    return response

                return handle

        return ConsoleRoute

    def _to_login(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = self.url("/login", next=target if request.method == "GET" else None)
        if request.headers.get("HX-Request"):  # htmx: make the whole page go to the login form
            return Response(status_code=401, headers={"HX-Redirect": login})
        return RedirectResponse(login, status_code=303)

    def _error(self, request: Request, status: int, title: str, message: str) -> Response:
        return self.render(request, "error.html", status_code=status, title=title, message=message)


async def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)


def _message(error: Exception) -> str:
    return str(error.args[0]) if error.args else "There is nothing here."


def _money(amount: Any, currency: str | None = None) -> str:
    try:
        text = f"{float(amount):,.2f}"
    except (TypeError, ValueError):
        return "–"
    return f"{text} {currency}" if currency else text


def _when(value: Any) -> str:
    """An ISO timestamp or datetime, to the second, in UTC as stored."""
    if value is None or value == "":
        return "–"
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return text.replace("T", " ")[:19]
