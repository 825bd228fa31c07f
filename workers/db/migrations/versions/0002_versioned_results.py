"""versioned results for every kind of work

One ``results`` table replaces ``document_results``: each item keeps every version of its outcome
(content changes, escalations, people's reviews) and exactly one current version. Rejections say
whether the producer or a worker refused the item; dead letters keep the content hash of the item.

Revision ID: 0002
Revises: 0001
"""
import hashlib
import json

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

JsonColumn = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade() -> None:
    results = op.create_table(
        'results',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('item_id', sa.String(length=200), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('tier', sa.String(length=20), nullable=False),
        sa.Column('dedup_key', sa.String(length=100), nullable=False),
        sa.Column('is_current', sa.Boolean(), nullable=False),
        sa.Column('review_status', sa.String(length=40), nullable=True),
        sa.Column('result', JsonColumn, nullable=False),
        sa.Column('model', sa.String(length=200), nullable=True),
        sa.Column('model_version', sa.String(length=100), nullable=True),
        sa.Column('batch_size', sa.Integer(), nullable=True),
        sa.Column('batch_seconds', sa.Float(), nullable=True),
        sa.Column('attempt', sa.Integer(), nullable=True),
        sa.Column('message_id', sa.String(length=64), nullable=True),
        sa.Column('producer', sa.String(length=200), nullable=True),
        sa.Column('worker', sa.String(length=200), nullable=True),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('processed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('kind', 'item_id', 'dedup_key', name='uq_results_item_dedup'),
        sa.UniqueConstraint('kind', 'item_id', 'version', name='uq_results_item_version'),
    )
    op.create_index('ix_results_current', 'results', ['kind', 'is_current'])
    op.create_index('ix_results_review', 'results', ['kind', 'review_status'])

    # Existing document results become version 1 (their input was not kept: the hash is of the result).
    old = sa.table('document_results', sa.column('entities', JsonColumn),
                   sa.column('processed_at', sa.DateTime(timezone=True)), *(sa.column(name) for name in (
                       'document_id', 'language', 'language_score', 'language_model', 'text_chars', 'model',
                       'model_version', 'batch_size', 'batch_seconds', 'attempt', 'message_id', 'producer',
                       'worker')))
    rows = []
    for row in op.get_bind().execute(sa.select(old)).mappings():
        result = {key: row[key] for key in ('language', 'language_score', 'language_model', 'entities', 'text_chars')}
        content_hash = 'legacy:' + hashlib.sha256(json.dumps(result, sort_keys=True, default=str).encode()).hexdigest()[:57]
        rows.append({'kind': 'documents', 'item_id': row['document_id'], 'version': 1, 'content_hash': content_hash,
                     'tier': 'compact', 'dedup_key': f'compact:{content_hash}', 'is_current': True,
                     'review_status': None, 'result': result,
                     **{key: row[key] for key in ('model', 'model_version', 'batch_size', 'batch_seconds',
                                                  'attempt', 'message_id', 'producer', 'worker', 'processed_at')}})
    if rows:
        op.bulk_insert(results, rows)
    op.drop_table('document_results')

    with op.batch_alter_table('rejections') as batch:
        batch.add_column(sa.Column('source', sa.String(length=20), nullable=False, server_default='worker'))
    with op.batch_alter_table('dead_letters') as batch:
        batch.add_column(sa.Column('content_hash', sa.String(length=64), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("0002 is not reversible: versions of results cannot be folded back into one row")
