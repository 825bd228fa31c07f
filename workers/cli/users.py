"""`slimline users add|list|disable|enable|roles|password`: the review console's users (admins can also
manage them on the console's own page). Passwords are read without echo, or from standard input with
``--password-stdin`` (one line, for scripts); they are stored as argon2id hashes. Every change is audited.

Exit codes: 0 done; 2 bad arguments (unknown role, short password, a name taken, no such user), or the
database is not migrated; 6 the database cannot be reached."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from workers.cli.common import CliError, ExitCode, console, out, settings, store

app = typer.Typer(help="Users of the review console: add, list, disable, enable, set roles or a password.",
                  no_args_is_help=True)

_Roles = Annotated[list[str], typer.Option("--role", help="A role (repeatable): analyst, document_reviewer, "
                                                          "product_editor, rule_author, rule_approver, admin.")]
_PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input.")]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


def _hash(password: str) -> str:
    from workers.console.auth import PasswordPolicyError, hash_password

    try:
        return hash_password(password, settings().console.min_password_chars)
    except PasswordPolicyError as error:
        raise CliError(str(error), ExitCode.USAGE) from None


def _roles(roles: list[str]) -> list[str]:
    from workers.console.auth import check_roles

    try:
        return check_roles(roles)
    except ValueError as error:
        raise CliError(str(error), ExitCode.USAGE) from None


@app.command("add")
def add(username: Annotated[str, typer.Argument(help="The name the person logs in with.")], role: _Roles,
        password_stdin: _PasswordStdin = False) -> None:
    """Add a user with these roles; asks for the password twice."""
    from workers.db.store.console import ConflictError

    roles = _roles(role)
    if not username.strip() or " " in username or len(username) > 100:
        raise CliError("a user name has 1 to 100 characters and no spaces", ExitCode.USAGE)
    outcome_store = store()
    try:
        outcome_store.add_user(username, _hash(_password(password_stdin)), roles, actor=settings().producer_id)
    except ConflictError as error:
        raise CliError(str(error), ExitCode.USAGE) from None
    console.print(f"[green]added[/] {username} ({', '.join(roles)})")


@app.command("list")
def list_() -> None:
    """Every user: roles, whether active, last login."""
    table = Table("user", "roles", "active", "last login", "added by")
    for user in store().users():
        table.add_row(user["username"], ", ".join(user["roles"]), "yes" if user["active"] else "no",
                      str(user["last_login_at"] or ""), user["created_by"])
    out.print(table)


def _update(username: str, **change: object) -> None:
    try:
        store().update_user(username, actor=settings().producer_id, **change)  # type: ignore[arg-type]
    except LookupError as error:
        raise CliError(str(error), ExitCode.USAGE) from None


@app.command("disable")
def disable(username: Annotated[str, typer.Argument(help="Who.")]) -> None:
    """Stop a user from logging in (their open sessions end now). Users are never deleted: the audit log names them."""
    _update(username, active=False)
    console.print(f"[yellow]disabled[/] {username}")


@app.command("enable")
def enable(username: Annotated[str, typer.Argument(help="Who.")]) -> None:
    """Let a disabled (or locked-out) user log in again."""
    _update(username, active=True)
    console.print(f"[green]enabled[/] {username}")


@app.command("roles")
def roles(username: Annotated[str, typer.Argument(help="Who.")], role: _Roles) -> None:
    """Replace a user's roles."""
    _update(username, roles=_roles(role))
    console.print(f"{username}: {', '.join(_roles(role))}")


@app.command("password")
def password(username: Annotated[str, typer.Argument(help="Who.")], password_stdin: _PasswordStdin = False) -> None:
    """Set a user's password (their open sessions end now)."""
    _update(username, password_hash=_hash(_password(password_stdin)))
    console.print(f"password of {username} changed")
