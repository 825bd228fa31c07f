"""console: the review console (users, roles, case locks, saved views, rule versions, analyst labels)

Reserved in the chain so that work landing in parallel keeps one linear history; empty until that work lands.

Revision ID: 0006
Revises: 0005
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
