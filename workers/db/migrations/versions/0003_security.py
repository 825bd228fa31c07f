"""security: a tamper-evident audit chain, erasure tombstones and legal holds

``audit_log.hmac`` chains every row to the one before it (keyed outside the database);
``audit_chain`` is the one-row lock and counter appenders serialize on. ``tombstones`` keep the
SHA-256 of erased item ids (never the ids), so that a late copy of an erased item is refused.
``legal_holds`` block purge and erasure of an item, with the reason.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_log') as batch:
        batch.add_column(sa.Column('hmac', sa.String(length=64), nullable=True))
    chain = op.create_table(
        'audit_chain',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.bulk_insert(chain, [{'id': 1, 'rows': 0}])
    op.create_table(
        'tombstones',
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('item_hash', sa.String(length=64), nullable=False),
        sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('kind', 'item_hash'),
    )
    op.create_table(
        'legal_holds',
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('item_id', sa.String(length=200), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('held_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('kind', 'item_id'),
    )
    op.create_index('ix_rejections_item', 'rejections', ['kind', 'item_id'])
    op.create_index('ix_dead_letters_item', 'dead_letters', ['kind', 'item_id'])


def downgrade() -> None:
    op.drop_index('ix_dead_letters_item', 'dead_letters')
    op.drop_index('ix_rejections_item', 'rejections')
    op.drop_table('legal_holds')
    op.drop_table('tombstones')
    op.drop_table('audit_chain')
    with op.batch_alter_table('audit_log') as batch:
        batch.drop_column('hmac')
