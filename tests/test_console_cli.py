"""`slimline users`: add (password from standard input), list, disable, enable; bad roles and short passwords
refused in one line with exit 2; every change audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from workers.cli.users import app
from workers.db.engine import migrate
from workers.db.store import OutcomeStore
from workers.settings import get_settings


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'slimline.db'}"
    migrate(url)
    monkeypatch.setenv("SLIMLINE_DATABASE_URL", url)
    monkeypatch.setenv("SLIMLINE_PRODUCER_ID", "ops@host")
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def _users(*args: str, stdin: str | None = None) -> tuple[int, str]:
    from workers.cli.common import CliError

    try:
        result = CliRunner().invoke(app, list(args), input=stdin, catch_exceptions=False)
    except CliError as error:  # `slimline` prints these as one line with their exit code
        return error.code, str(error)
    return result.exit_code, result.output


def test_users_are_added_listed_disabled_and_enabled(database: str) -> None:
    assert _users("add", "ana", "--role", "analyst", "--role", "rule_author", "--password-stdin",
                  stdin="a long password 1\n") == (0, "added ana (analyst, rule_author)\n")
    code, listed = _users("list")
    assert code == 0 and "ana" in listed and "analyst, rule_author" in listed
    assert _users("disable", "ana")[0] == 0
    store = OutcomeStore.from_url(database)
    assert store.user("ana")["active"] is False
    assert _users("enable", "ana")[0] == 0 and store.user("ana")["active"] is True
    assert [(row["actor"], row["action"]) for row in store.audit_rows()] == [
        ("ops@host", "user.add"), ("ops@host", "user.disable"), ("ops@host", "user.enable")]


def test_bad_roles_short_passwords_taken_names_and_unknown_users_are_refused(database: str) -> None:
    assert _users("add", "bo", "--role", "root", "--password-stdin", stdin="a long password 1\n") == (
        2, "unknown role(s) root: roles are analyst, document_reviewer, product_editor, rule_author, rule_approver, "
           "admin")
    assert _users("add", "bo", "--role", "admin", "--password-stdin", stdin="short\n") == (
        2, "a password needs at least 12 characters")
    assert _users("add", "bo", "--role", "admin", "--password-stdin", stdin="a long password 1\n")[0] == 0
    assert _users("add", "bo", "--role", "admin", "--password-stdin", stdin="a long password 2\n") == (
        2, "there is already a user named 'bo'")
    assert _users("disable", "nobody") == (2, "no user named 'nobody'")
