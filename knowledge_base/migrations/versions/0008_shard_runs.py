"""shard runs (issue 22): `policyqa ingest DIR --shard 2/4` stages what it embedded and records its shard;
`policyqa kb publish` stores the staged versions and switches the index generation once every shard is in.

Revision ID: 0008_shard_runs
Revises: 0007_fine_tuned_encoders
Create Date: 2026-12-07 12:35:08.113289
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_shard_runs'
down_revision = '0007_fine_tuned_encoders'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if 'shard_runs' in set(sa.inspect(op.get_bind()).get_table_names()):
        return  # a store opened by a development build may have them already
    op.create_table('shard_runs',
    sa.Column('run', sa.String(length=200), nullable=False),
    sa.Column('shard', sa.Integer(), nullable=False),
    sa.Column('shards', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('host', sa.String(length=200), nullable=True),
    sa.Column('files', sa.Integer(), nullable=False),
    sa.Column('staged', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('model_id', sa.String(length=300), nullable=True),
    sa.Column('model_spec', sa.String(length=1000), nullable=True),
    sa.Column('model_backend', sa.String(length=20), nullable=True),
    sa.Column('dim', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('run', 'shard')
    )
    with op.batch_alter_table('shard_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_shard_runs_status'), ['status'], unique=False)

    op.create_table('staged_versions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run', sa.String(length=200), nullable=False),
    sa.Column('shard', sa.Integer(), nullable=False),
    sa.Column('rel_path', sa.String(length=1000), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('doc_id', sa.String(length=40), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.Column('chunks', sa.JSON(), nullable=False),
    sa.Column('vectors', sa.LargeBinary(), nullable=False),
    sa.Column('staged_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('staged_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staged_versions_content_hash'), ['content_hash'], unique=False)
        batch_op.create_index(batch_op.f('ix_staged_versions_run'), ['run'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('staged_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staged_versions_run'))
        batch_op.drop_index(batch_op.f('ix_staged_versions_content_hash'))

    op.drop_table('staged_versions')
    with op.batch_alter_table('shard_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_shard_runs_status'))

    op.drop_table('shard_runs')
