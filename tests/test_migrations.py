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
    assert {"document_results", "rejections", "dead_letters", "audit_log"} <= set(inspect(make_engine(url)).get_table_names())
    _assert_schema_matches_models(url)


@pytest.mark.postgres
def test_migrations_match_the_models_on_postgresql(postgres: PostgresCluster) -> None:
    from workers.db.engine import migrate

    url = postgres.create_database(f"migrations_{uuid.uuid4().hex[:8]}")
    migrate(url)
    _assert_schema_matches_models(url)
