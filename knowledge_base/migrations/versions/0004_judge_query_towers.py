"""judge query towers (issue 13): the tensors of the judge's fine-tuned query tower, stored beside the judge so
every replica serves the same tower.

Revision ID: 0004_judge_query_towers
Revises: 0003_safety_departments
Create Date: 2026-12-02 01:39:31.136230
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_judge_query_towers'
down_revision = '0003_safety_departments'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if 'judge_towers' in set(sa.inspect(op.get_bind()).get_table_names()):
        return  # a store opened by a development build may have it already
    op.create_table('judge_towers',
    sa.Column('tower_id', sa.String(length=64), nullable=False),
    sa.Column('base_model', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('weights', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('tower_id')
    )


def downgrade() -> None:
    op.drop_table('judge_towers')
