"""drop the judge's query towers (issue 24): the switched-off query tower left the product, and with it the table
that held its tensors (about 85 MB a tower). A judge that had one is of a format this code refuses (retrain it).

Revision ID: 0005_drop_judge_towers
Revises: 0004_judge_query_towers
Create Date: 2026-12-09 10:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_drop_judge_towers'
down_revision = '0004_judge_query_towers'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if 'judge_towers' in set(sa.inspect(op.get_bind()).get_table_names()):
        op.drop_table('judge_towers')


def downgrade() -> None:
    op.create_table('judge_towers',
    sa.Column('tower_id', sa.String(length=64), nullable=False),
    sa.Column('base_model', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('weights', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('tower_id')
    )
