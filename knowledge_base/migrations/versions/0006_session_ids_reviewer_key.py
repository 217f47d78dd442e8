"""issued session ids and the faq reviewer key (issue 23): the server issues conversation ids (a client-chosen one
would join someone else's conversation), and an FAQ entry records the key that reviewed it, not only its name.

Revision ID: 0006_session_ids_reviewer_key
Revises: 0005_drop_judge_towers
Create Date: 2026-12-07 10:43:38.558451
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_session_ids_reviewer_key'
down_revision = '0005_drop_judge_towers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    # Each step only when missing: a store re-run from an older revision (or opened by a development build) may have it.
    if 'conversation_sessions' not in set(inspector.get_table_names()):
        op.create_table('conversation_sessions',
        sa.Column('session_id', sa.String(length=100), nullable=False),
        sa.Column('issued_at', sa.DateTime(), nullable=False),
        sa.Column('last_seen', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('session_id')
        )
        with op.batch_alter_table('conversation_sessions', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_conversation_sessions_last_seen'), ['last_seen'], unique=False)
    if 'reviewer_key_id' not in {c['name'] for c in inspector.get_columns('faqs')}:
        with op.batch_alter_table('faqs', schema=None) as batch_op:
            batch_op.add_column(sa.Column('reviewer_key_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('faqs', schema=None) as batch_op:
        batch_op.drop_column('reviewer_key_id')

    with op.batch_alter_table('conversation_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversation_sessions_last_seen'))

    op.drop_table('conversation_sessions')
