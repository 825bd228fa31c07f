"""gateway: the HTTP gateway (API keys, stored hashed)

Reserved in the chain so that work landing in parallel keeps one linear history; empty until that work lands.

Revision ID: 0005
Revises: 0004
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
