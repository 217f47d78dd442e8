"""query log follow-ups: a follow-up turn is logged with its text as typed, its turn, and the query that opened
its topic (issue 10: analytics count follow-ups with their topic, not as new frequent questions).

Revision ID: 0002_query_log_follow_ups
Revises: 0001_baseline
Create Date: 2026-12-02 00:35:16.147084
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_query_log_follow_ups'
down_revision = '0001_baseline'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only what is missing: a store opened by a development build between the follow-up columns and migrations
    # already has some of them.
    inspector = sa.inspect(op.get_bind())
    present = {c["name"] for c in inspector.get_columns("query_log")}
    indexes = {i["name"] for i in inspector.get_indexes("query_log")}
    columns = [sa.Column('asked', sa.Text(), nullable=True), sa.Column('turn', sa.Integer(), nullable=True),
               sa.Column('follow_up', sa.Boolean(), nullable=True), sa.Column('followup_of', sa.String(length=40), nullable=True)]
    with op.batch_alter_table('query_log', schema=None) as batch_op:
        for column in columns:
            if column.name not in present:
                batch_op.add_column(column)
        if 'ix_query_log_followup_of' not in indexes:
            batch_op.create_index(batch_op.f('ix_query_log_followup_of'), ['followup_of'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('query_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_query_log_followup_of'))
        batch_op.drop_column('followup_of')
        batch_op.drop_column('follow_up')
        batch_op.drop_column('turn')
        batch_op.drop_column('asked')
