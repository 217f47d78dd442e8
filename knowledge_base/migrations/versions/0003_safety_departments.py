"""content safety and departments (issue 11): the staff-managed blocked-word list with its audit, the category a
blocked question is logged with, departments on keys and FAQ entries, and key ids for the four-eyes rule.

Revision ID: 0003_safety_departments
Revises: 0002_query_log_follow_ups
Create Date: 2026-12-02 00:44:22.903561
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_safety_departments'
down_revision = '0002_query_log_follow_ups'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only what is missing (as the baseline): a store opened by a development build may have some of it already.
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())

    def missing(table: str, column: str) -> bool:
        return column not in {c["name"] for c in inspector.get_columns(table)}

    if 'blocked_term_audit' not in tables:
        op.create_table('blocked_term_audit',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('term_id', sa.Integer(), nullable=True),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('actor_key_id', sa.Integer(), nullable=True),
        sa.Column('action', sa.String(length=20), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('before', sa.JSON(), nullable=True),
        sa.Column('after', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('blocked_term_audit', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_blocked_term_audit_term_id'), ['term_id'], unique=False)
    if 'blocked_term_seed' not in tables:
        op.create_table('blocked_term_seed',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id')
        )
    if 'blocked_terms' not in tables:
        op.create_table('blocked_terms',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('pattern', sa.String(length=200), nullable=False),
        sa.Column('is_regex', sa.Boolean(), nullable=False),
        sa.Column('category', sa.String(length=20), nullable=False),
        sa.Column('note', sa.String(length=500), nullable=True),
        sa.Column('created_by', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sqlite_autoincrement=True
        )
        with op.batch_alter_table('blocked_terms', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_blocked_terms_category'), ['category'], unique=False)

    if missing('api_keys', 'department'):
        with op.batch_alter_table('api_keys', schema=None) as batch_op:
            batch_op.add_column(sa.Column('department', sa.String(length=200), nullable=True))
    if missing('faq_audit', 'actor_key_id'):
        with op.batch_alter_table('faq_audit', schema=None) as batch_op:
            batch_op.add_column(sa.Column('actor_key_id', sa.Integer(), nullable=True))
    if missing('faqs', 'department'):
        with op.batch_alter_table('faqs', schema=None) as batch_op:
            batch_op.add_column(sa.Column('department', sa.String(length=200), nullable=True))
            batch_op.create_index(batch_op.f('ix_faqs_department'), ['department'], unique=False)
    if missing('faqs', 'author_key_id'):
        with op.batch_alter_table('faqs', schema=None) as batch_op:
            batch_op.add_column(sa.Column('author_key_id', sa.Integer(), nullable=True))
    if missing('query_log', 'blocked_category'):
        with op.batch_alter_table('query_log', schema=None) as batch_op:
            batch_op.add_column(sa.Column('blocked_category', sa.String(length=20), nullable=True))
            batch_op.create_index(batch_op.f('ix_query_log_blocked_category'), ['blocked_category'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('query_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_query_log_blocked_category'))
        batch_op.drop_column('blocked_category')

    with op.batch_alter_table('faqs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_faqs_department'))
        batch_op.drop_column('author_key_id')
        batch_op.drop_column('department')

    with op.batch_alter_table('faq_audit', schema=None) as batch_op:
        batch_op.drop_column('actor_key_id')

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('department')

    with op.batch_alter_table('blocked_terms', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_blocked_terms_category'))

    op.drop_table('blocked_terms')
    op.drop_table('blocked_term_seed')
    with op.batch_alter_table('blocked_term_audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_blocked_term_audit_term_id'))

    op.drop_table('blocked_term_audit')