"""Logging in and out, and the vendored static files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.responses import FileResponse, Response

from workers.console.auth import Viewer, new_token, same_token, token_hash, verify_password
from workers.console.web import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Console, Denied, NotFound
from workers.db.models import utcnow

STATIC = Path(__file__).parents[1] / "static"
# Served by name from this list only (no path from the request reaches the file system).
STATIC_FILES = {"htmx.min.js": "text/javascript", "console.css": "text/css", "favicon.svg": "image/svg+xml"}
WRONG = "Wrong user name or password, or the user is locked out for a while after too many wrong passwords."


def routes(console: Console) -> APIRouter:
    router = APIRouter(route_class=console.route_class())

    def secure(request: Request) -> bool:
        configured = console.settings.console.cookie_secure
        return configured if configured is not None else request.url.scheme == "https"

    def safe_next(target: str | None) -> str:
        """Only a console page of this server (never another site: ``//host`` or ``/\\host``)."""
        if target and target.startswith(console.prefix + "/") and not target.startswith(("//", "/\\")) \
                and "\\" not in target:
            return target
        return console.url("/")

    def login_page(request: Request, target: str | None, error: str | None = None, status: int = 200) -> Response:
        token = new_token()
        response = console.render(request, "login.html", status_code=status, next=safe_next(target),
                                  login_csrf=token, error=error)
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=secure(request),
                            path=console.prefix or "/")
        return response

    @router.get("/login")
    def login_form(request: Request, next: str | None = None) -> Response:
        return login_page(request, next)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        if not same_token(request.cookies.get(LOGIN_CSRF_COOKIE), _text(form, "csrf_token")):
            raise Denied("The login form's security token is missing or does not match: reload the page.")
        username, password = _text(form, "username").strip(), _text(form, "password")
        client = request.client.host if request.client else None
        user = await run_in_threadpool(authenticate, username, password, client)
        if user is None:
            return login_page(request, _text(form, "next"), WRONG, status=401)
        token = new_token()
        csrf = new_token()
        expires = utcnow() + timedelta(hours=console.settings.console.session_hours)
        await run_in_threadpool(console.store.create_session, user["id"], token_hash(token), csrf, expires)
        response = console.redirect("/")
        response.headers["location"] = safe_next(_text(form, "next"))
        response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=secure(request),
                            path=console.prefix or "/", max_age=int(console.settings.console.session_hours * 3600))
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=console.prefix or "/")
        return response

    def authenticate(username: str, password: str, client: str | None) -> dict | None:
        user = console.store.user(username) if username else None
        usable = user is not None and user["active"] and not _locked(user)
        verified = verify_password(user["password_hash"] if usable and user else None, password)
        if user is not None:
            limits = console.settings.console
            console.store.record_login(username, succeeded=verified.ok, attempts=limits.login_attempts,
                                       lockout=timedelta(minutes=limits.lockout_minutes),
                                       password_hash=verified.rehash, client=client)
        return user if verified.ok else None

    @router.post("/logout")
    def logout(request: Request, form: FormData = console.depends_form()) -> Response:
        viewer: Viewer = console.viewer(request)
        console.store.end_session(viewer.session_token_hash, actor=viewer.username)
        response = console.redirect("/login")
        response.delete_cookie(SESSION_COOKIE, path=console.prefix or "/")
        return response

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise NotFound(f"no static file {name!r}")
        return FileResponse(STATIC / name, media_type=STATIC_FILES[name],
                            headers={"Cache-Control": "public, max-age=3600"})

    return router


def _locked(user: dict) -> bool:
    until = user.get("locked_until")
    if until is None:
        return False
    if until.tzinfo is None:
        from datetime import timezone

        until = until.replace(tzinfo=timezone.utc)
    return until > utcnow()


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""
