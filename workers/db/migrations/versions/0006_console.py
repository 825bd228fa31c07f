"""console: the review console (users, sessions, case locks, saved views, analysts' labels, rule versions)

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'console_users',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('username', sa.String(length=100), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=False),
        sa.Column('roles', JSON, nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('failed_logins', sa.Integer(), nullable=False),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('username'),
    )
    op.create_table(
        'console_sessions',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('csrf_token', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['console_users.id']),
        sa.PrimaryKeyConstraint('token_hash'),
    )
    op.create_index('ix_console_sessions_user', 'console_sessions', ['user_id'])
    op.create_table(
        'case_locks',
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('item_id', sa.String(length=200), nullable=False),
        sa.Column('username', sa.String(length=100), nullable=False),
        sa.Column('locked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('kind', 'item_id'),
    )
    op.create_table(
        'saved_views',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('owner', sa.String(length=100), nullable=False),
        sa.Column('page', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('filters', JSON, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('owner', 'page', 'name', name='uq_saved_views_owner_page_name'),
    )
    op.create_table(
        'analyst_labels',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('transaction_id', sa.String(length=200), nullable=False),
        sa.Column('decision', sa.String(length=20), nullable=False),
        sa.Column('label', sa.Integer(), nullable=True),
        sa.Column('comment', sa.Text(), nullable=False),
        sa.Column('analyst', sa.String(length=100), nullable=False),
        sa.Column('result_version', sa.Integer(), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_analyst_labels_transaction', 'analyst_labels', ['transaction_id'])
    op.create_table(
        'rule_versions',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('document', sa.Text(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('base_version', sa.Integer(), nullable=True),
        sa.Column('summary', sa.Text(), nullable=False),
        sa.Column('author', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('backtest', JSON, nullable=True),
        sa.Column('backtested_by', sa.String(length=100), nullable=True),
        sa.Column('backtested_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decided_by', sa.String(length=100), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decision_note', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_rule_versions_status', 'rule_versions', ['status'])


def downgrade() -> None:
    op.drop_index('ix_rule_versions_status', 'rule_versions')
    op.drop_table('rule_versions')
    op.drop_index('ix_analyst_labels_transaction', 'analyst_labels')
    op.drop_table('analyst_labels')
    op.drop_table('saved_views')
    op.drop_table('case_locks')
    op.drop_index('ix_console_sessions_user', 'console_sessions')
    op.drop_table('console_sessions')
    op.drop_table('console_users')
