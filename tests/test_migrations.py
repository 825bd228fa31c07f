"""The Alembic migrations build exactly the tables the ORM models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from tests.support.services import REPO_ROOT, PostgresCluster
from workers.db.engine import make_engine
from workers.db.models import Base


def _assert_schema_matches_models(url: str) -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_slimline_migrate_creates_the_schema_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = subprocess.run([sys.executable, "-m", "workers.cli", "migrate"], cwd=REPO_ROOT, capture_output=True,
                            text=True, env={"SLIMLINE_DATABASE_URL": url, "PATH": "/usr/bin:/bin"}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert {"results", "rejections", "dead_letters", "audit_log"} <= set(inspect(make_engine(url)).get_table_names())
    _assert_schema_matches_models(url)


@pytest.mark.postgres
def test_migrations_match_the_models_on_postgresql(postgres: PostgresCluster) -> None:
    from workers.db.engine import migrate

    url = postgres.create_database(f"migrations_{uuid.uuid4().hex[:8]}")
    migrate(url)
    _assert_schema_matches_models(url)


def test_document_results_of_0001_become_version_1_of_the_versioned_results(tmp_path: Path) -> None:
    from alembic import command
    from sqlalchemy import text

    from workers.db.engine import _alembic_config, migrate
    from workers.db.store import OutcomeStore
    from schemas import Kind

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(_alembic_config(url), "0001")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO document_results VALUES ('inv-1', 'en', 0.9, 'lid', '[]', 10, 'm', '1', 4, 0.2, 1,"
            " 'msg-1', 'erp', 'w', '2024-01-01 00:00:00')"))
    engine.dispose()
    migrate(url)
    [row] = OutcomeStore.from_url(url).current_results(Kind.documents)
    assert (row["item_id"], row["version"], row["tier"], row["message_id"]) == ("inv-1", 1, "compact", "msg-1")
    assert row["result"]["language"] == "en" and row["result"]["entities"] == []
