"""Administration: console users (add, roles, disable, reset a password) and the audit log."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from workers.console.auth import ROLES, PasswordPolicyError, Viewer, check_roles, hash_password
from workers.console.web import Console, Invalid
from workers.db.store.console import ConflictError


def routes(console: Console) -> APIRouter:
    router = APIRouter(route_class=console.route_class())
    admin = console.role("admin")

    @router.get("/admin/users")
    def users(request: Request, viewer: Viewer = admin) -> Response:
        return console.render(request, "admin/users.html", users=console.store.users(), roles=ROLES,
                              min_chars=console.settings.console.min_password_chars)

    @router.post("/admin/users")
    def add_user(request: Request, form: FormData = console.depends_form(), viewer: Viewer = admin) -> Response:
        username = _text(form, "username").strip()
        if not username or len(username) > 100 or not username.isprintable() or " " in username:
            raise Invalid("A user name has 1 to 100 characters and no spaces.")
        roles = _roles(form)
        try:
            password_hash = hash_password(_text(form, "password"), console.settings.console.min_password_chars)
            console.store.add_user(username, password_hash, roles, actor=viewer.username)
        except PasswordPolicyError as error:
            raise Invalid(str(error)) from None
        except ConflictError as error:
            raise Invalid(str(error)) from None
        return console.redirect("/admin/users", notice=f"Added {username} ({', '.join(roles) or 'no roles'}).")

    @router.post("/admin/users/update")
    def update_user(request: Request, form: FormData = console.depends_form(), viewer: Viewer = admin) -> Response:
        username = _text(form, "username")
        change = _text(form, "change")
        if change == "roles":
            roles = _roles(form)
            if username == viewer.username and "admin" not in roles:
                raise Invalid("You cannot take the admin role from yourself (ask another admin).")
            console.store.update_user(username, actor=viewer.username, roles=roles)
        elif change in ("disable", "enable"):
            if username == viewer.username:
                raise Invalid("You cannot disable yourself.")
            console.store.update_user(username, actor=viewer.username, active=change == "enable")
        elif change == "password":
            try:
                password_hash = hash_password(_text(form, "password"), console.settings.console.min_password_chars)
                console.store.update_user(username, actor=viewer.username, password_hash=password_hash)
            except PasswordPolicyError as error:
                raise Invalid(str(error)) from None
        else:
            raise Invalid("What should change?")
        return console.redirect("/admin/users", notice=f"{username}: {change} done.")

    @router.get("/admin/audit")
    def audit(request: Request, action: str | None = None, viewer: Viewer = admin) -> Response:
        return console.render(request, "admin/audit.html", rows=console.store.recent_audit(200, action or None),
                              action=action or "")

    return router


def _roles(form: FormData) -> list[str]:
    try:
        return check_roles([value for value in form.getlist("roles") if isinstance(value, str)])
    except ValueError as error:
        raise Invalid(str(error)) from None


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""
