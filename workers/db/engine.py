"""Engines and migrations. SQLite gets WAL and a busy timeout so several worker processes can write."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def make_engine(url: str, pre_ping: bool = True) -> Engine:
    """``pre_ping``: test each PostgreSQL connection with a round trip before lending it out, so that a request
    after a database restart does not fail once. Batch workers turn it off: their writes retry transient errors
    (workers/runtime/retry.py) on a fresh connection, and a round trip per batch is latency for every decision."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # hide_parameters: a database error must not copy documents into logs or dead letters.
    return create_engine(url, pool_pre_ping=pre_ping, pool_size=2, max_overflow=2, hide_parameters=True,
                         connect_args={"connect_timeout": 5})


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = url
    return config


def schema_is_current(url: str) -> bool:
    """True if the database is at the newest migration (workers refuse to start otherwise)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config(url)).get_current_head()
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision() == head
    finally:
        engine.dispose()


def describe_database(url: str) -> str:
    """Which database a URL names, for people (never its password)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite database {parsed.database}"
    return f"{parsed.get_backend_name()} database {parsed.database} on {parsed.host}:{parsed.port or 'default port'}"


def database_problem(url: str, must_exist: bool = True) -> tuple[str, bool] | None:
    """Why the database cannot be used yet, or None: (a line saying what to do, True if unreachable).
    Never creates an empty SQLite file where there was none."""
    from sqlalchemy.exc import OperationalError

    parsed = make_url(url)
    where = describe_database(url)
    if parsed.get_backend_name() == "sqlite" and must_exist and parsed.database and not Path(parsed.database).exists():
        return f"no {where} here: run `slimline migrate` first, or set SLIMLINE_DATABASE_URL", False
    try:
        current = schema_is_current(url)
    except OperationalError:
        return f"cannot reach the {where}: check SLIMLINE_DATABASE_URL and that the server runs", True
    if not current:
        return f"the {where} is not migrated to this version: run `slimline migrate`", False
    return None


def migrate(url: str) -> None:
    """Bring the schema to the newest Alembic revision."""
    command.upgrade(_alembic_config(url), "head")
