"""Alembic environment: the URL comes from the caller (``workers.db.engine.migrate``) or the settings."""

from alembic import context

from workers.db.engine import make_engine
from workers.db.models import Base


def _url() -> str:
    url = context.config.attributes.get("database_url")
    if url:
        return url
    from workers.settings import get_settings

    return get_settings().database_url.get_secret_value()


def run_migrations_online() -> None:
    engine = make_engine(_url())
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
