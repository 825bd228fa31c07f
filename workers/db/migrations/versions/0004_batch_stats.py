"""batch_stats: batch statistics for slimline report (per batch: kind, stage seconds, CPU seconds, items, model version)

One row per batch a worker stored, written in the batch's transaction: kind, tier, model and version, worker,
messages and their outcomes, wall and CPU seconds per stage, input characters, and results per language.

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

JsonColumn = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'batch_stats',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('tier', sa.String(length=20), nullable=False),
        sa.Column('model', sa.String(length=200), nullable=True),
        sa.Column('model_version', sa.String(length=100), nullable=True),
        sa.Column('worker', sa.String(length=200), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('results', sa.Integer(), nullable=False),
        sa.Column('rejected', sa.Integer(), nullable=False),
        sa.Column('failed', sa.Integer(), nullable=False),
        sa.Column('input_chars', sa.Integer(), nullable=False),
        sa.Column('validate_seconds', sa.Float(), nullable=False),
        sa.Column('pipeline_seconds', sa.Float(), nullable=False),
        sa.Column('persist_seconds', sa.Float(), nullable=False),
        sa.Column('total_seconds', sa.Float(), nullable=False),
        sa.Column('validate_cpu_seconds', sa.Float(), nullable=False),
        sa.Column('pipeline_cpu_seconds', sa.Float(), nullable=False),
        sa.Column('persist_cpu_seconds', sa.Float(), nullable=False),
        sa.Column('cpu_seconds', sa.Float(), nullable=False),
        sa.Column('languages', JsonColumn, nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_batch_stats_started', 'batch_stats', ['started_at'])


def downgrade() -> None:
    op.drop_index('ix_batch_stats_started', 'batch_stats')
    op.drop_table('batch_stats')
