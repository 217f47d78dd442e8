"""fine-tuned encoders (issue 21): the tensors an encoder trained on this knowledge base changed, so that every
replica sharing the database loads the same model.

Revision ID: 0007_fine_tuned_encoders
Revises: 0006_session_ids_reviewer_key
Create Date: 2026-12-07 12:50:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_fine_tuned_encoders'
down_revision = '0006_session_ids_reviewer_key'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if 'encoders' in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table('encoders',
    sa.Column('encoder_id', sa.String(length=64), nullable=False),
    sa.Column('base_spec', sa.String(length=1000), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('info', sa.JSON(), nullable=False),
    sa.Column('tensors', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('encoder_id')
    )


def downgrade() -> None:
    op.drop_table('encoders')
