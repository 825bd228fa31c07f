"""batch_stats: batch statistics for slimline report (per batch: kind, stage seconds, CPU seconds, items, model version)

Reserved in the chain so that work landing in parallel keeps one linear history; empty until that work lands.

Revision ID: 0004
Revises: 0003
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
