"""baseline: the schema as it was before migrations.

Knowledge bases built before migrations existed have some or all of these tables (tables were only ever added,
never altered, before this revision), so each table is created only when it is missing; a store upgraded from here
has exactly the schema of one created new.

Revision ID: 0001_baseline
Revises: 
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa


revision = '0001_baseline'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if 'api_keys' not in existing:
        op.create_table('api_keys',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('key_hash', sa.String(length=128), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('revoked', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key_hash')
        )
    if 'conversation_turns' not in existing:
        op.create_table('conversation_turns',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('session_id', sa.String(length=100), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('question', sa.Text(), nullable=False),
        sa.Column('understood', sa.Text(), nullable=False),
        sa.Column('answer', sa.Text(), nullable=False),
        sa.Column('query_id', sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('conversation_turns', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_conversation_turns_at'), ['at'], unique=False)
            batch_op.create_index(batch_op.f('ix_conversation_turns_session_id'), ['session_id'], unique=False)

    if 'faq_audit' not in existing:
        op.create_table('faq_audit',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('faq_id', sa.String(length=80), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('before', sa.JSON(), nullable=True),
        sa.Column('after', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('faq_audit', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_faq_audit_faq_id'), ['faq_id'], unique=False)

    if 'faqs' not in existing:
        op.create_table('faqs',
        sa.Column('faq_id', sa.String(length=80), nullable=False),
        sa.Column('question', sa.Text(), nullable=False),
        sa.Column('answer', sa.Text(), nullable=False),
        sa.Column('variants', sa.JSON(), nullable=False),
        sa.Column('source_titles', sa.JSON(), nullable=False),
        sa.Column('source_articles', sa.JSON(), nullable=False),
        sa.Column('topic', sa.String(length=200), nullable=True),
        sa.Column('publisher', sa.String(length=200), nullable=True),
        sa.Column('short_answer', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('author', sa.String(length=200), nullable=True),
        sa.Column('reviewer', sa.String(length=200), nullable=True),
        sa.Column('confidentiality_checked_by', sa.String(length=200), nullable=True),
        sa.Column('confidentiality_checked_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('embedding', sa.LargeBinary(), nullable=True),
        sa.Column('embedded_text_hash', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('faq_id')
        )
        with op.batch_alter_table('faqs', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_faqs_status'), ['status'], unique=False)

    if 'judge' not in existing:
        op.create_table('judge',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('judge_id', sa.String(length=64), nullable=False),
        sa.Column('data_hash', sa.String(length=64), nullable=False),
        sa.Column('trained_at', sa.DateTime(), nullable=False),
        sa.Column('ranker', sa.Text(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id')
        )
    if 'kb_state' not in existing:
        op.create_table('kb_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.Column('faq_generation', sa.Integer(), nullable=False),
        sa.Column('model_id', sa.String(length=300), nullable=True),
        sa.Column('model_spec', sa.String(length=1000), nullable=True),
        sa.Column('model_backend', sa.String(length=20), nullable=True),
        sa.Column('dim', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id')
        )
    if 'query_log' not in existing:
        op.create_table('query_log',
        sa.Column('query_id', sa.String(length=40), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('question', sa.Text(), nullable=False),
        sa.Column('normalized', sa.Text(), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('answered', sa.Boolean(), nullable=False),
        sa.Column('top_doc_id', sa.String(length=40), nullable=True),
        sa.Column('faq_id', sa.String(length=80), nullable=True),
        sa.Column('confidence', sa.Float(), nullable=False),
        sa.Column('latency_ms', sa.Float(), nullable=False),
        sa.Column('session_id', sa.String(length=100), nullable=True),
        sa.Column('citations', sa.JSON(), nullable=False),
        sa.Column('embedding', sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint('query_id')
        )
        with op.batch_alter_table('query_log', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_query_log_at'), ['at'], unique=False)
            batch_op.create_index(batch_op.f('ix_query_log_channel'), ['channel'], unique=False)
            batch_op.create_index(batch_op.f('ix_query_log_session_id'), ['session_id'], unique=False)

    if 'work_order_mapping' not in existing:
        op.create_table('work_order_mapping',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('mapping', sa.JSON(), nullable=False),
        sa.Column('updated_by', sa.String(length=200), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id')
        )
    if 'work_orders' not in existing:
        op.create_table('work_orders',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('ticket_no', sa.String(length=120), nullable=False),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('question', sa.Text(), nullable=False),
        sa.Column('normalized', sa.Text(), nullable=False),
        sa.Column('category', sa.String(length=200), nullable=True),
        sa.Column('department', sa.String(length=200), nullable=True),
        sa.Column('result', sa.Text(), nullable=True),
        sa.Column('kb_answered', sa.Boolean(), nullable=False),
        sa.Column('top_doc_id', sa.String(length=40), nullable=True),
        sa.Column('source_file', sa.String(length=400), nullable=True),
        sa.Column('imported_at', sa.DateTime(), nullable=False),
        sa.Column('imported_by', sa.String(length=200), nullable=True),
        sa.Column('embedding', sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('ticket_no')
        )
        with op.batch_alter_table('work_orders', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_work_orders_department'), ['department'], unique=False)
            batch_op.create_index(batch_op.f('ix_work_orders_received_at'), ['received_at'], unique=False)

    if 'works' not in existing:
        op.create_table('works',
        sa.Column('work_id', sa.String(length=40), nullable=False),
        sa.Column('normalized_title', sa.String(length=400), nullable=False),
        sa.Column('title', sa.String(length=400), nullable=False),
        sa.PrimaryKeyConstraint('work_id')
        )
        with op.batch_alter_table('works', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_works_normalized_title'), ['normalized_title'], unique=True)

    if 'documents' not in existing:
        op.create_table('documents',
        sa.Column('doc_id', sa.String(length=40), nullable=False),
        sa.Column('work_id', sa.String(length=40), nullable=False),
        sa.Column('title', sa.String(length=400), nullable=False),
        sa.Column('doc_number', sa.String(length=200), nullable=True),
        sa.Column('index_number', sa.String(length=200), nullable=True),
        sa.Column('publisher', sa.String(length=200), nullable=True),
        sa.Column('written_date', sa.Date(), nullable=True),
        sa.Column('published_date', sa.Date(), nullable=True),
        sa.Column('version_date', sa.Date(), nullable=True),
        sa.Column('validity_text', sa.String(length=50), nullable=True),
        sa.Column('topic', sa.String(length=200), nullable=True),
        sa.Column('region', sa.String(length=50), nullable=True),
        sa.Column('disclosure', sa.String(length=20), nullable=False),
        sa.Column('doc_type', sa.String(length=20), nullable=False),
        sa.Column('revision_notes', sa.JSON(), nullable=False),
        sa.Column('source_path', sa.String(length=1000), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('validity', sa.String(length=20), nullable=False),
        sa.Column('superseded_by', sa.String(length=40), nullable=True),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('sections', sa.JSON(), nullable=False),
        sa.Column('ingested_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['work_id'], ['works.work_id'], ),
        sa.PrimaryKeyConstraint('doc_id')
        )
        with op.batch_alter_table('documents', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_documents_content_hash'), ['content_hash'], unique=False)
            batch_op.create_index(batch_op.f('ix_documents_publisher'), ['publisher'], unique=False)
            batch_op.create_index(batch_op.f('ix_documents_region'), ['region'], unique=False)
            batch_op.create_index(batch_op.f('ix_documents_source_path'), ['source_path'], unique=False)
            batch_op.create_index(batch_op.f('ix_documents_title'), ['title'], unique=False)
            batch_op.create_index(batch_op.f('ix_documents_work_id'), ['work_id'], unique=False)

    if 'feedback' not in existing:
        op.create_table('feedback',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('query_id', sa.String(length=40), nullable=False),
        sa.Column('helpful', sa.Boolean(), nullable=False),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['query_id'], ['query_log.query_id'], ),
        sa.PrimaryKeyConstraint('id')
        )
        with op.batch_alter_table('feedback', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_feedback_query_id'), ['query_id'], unique=False)

    if 'chunks' not in existing:
        op.create_table('chunks',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('chunk_id', sa.String(length=80), nullable=False),
        sa.Column('doc_id', sa.String(length=40), nullable=False),
        sa.Column('ordinal', sa.Integer(), nullable=False),
        sa.Column('section_path', sa.String(length=1000), nullable=False),
        sa.Column('anchor', sa.String(length=80), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('embed_text', sa.Text(), nullable=False),
        sa.Column('tokens', sa.Text(), nullable=False),
        sa.Column('embedding', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['doc_id'], ['documents.doc_id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('chunk_id')
        )
        with op.batch_alter_table('chunks', schema=None) as batch_op:
            batch_op.create_index(batch_op.f('ix_chunks_doc_id'), ['doc_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('chunks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chunks_doc_id'))

    op.drop_table('chunks')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feedback_query_id'))

    op.drop_table('feedback')
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_documents_work_id'))
        batch_op.drop_index(batch_op.f('ix_documents_title'))
        batch_op.drop_index(batch_op.f('ix_documents_source_path'))
        batch_op.drop_index(batch_op.f('ix_documents_region'))
        batch_op.drop_index(batch_op.f('ix_documents_publisher'))
        batch_op.drop_index(batch_op.f('ix_documents_content_hash'))

    op.drop_table('documents')
    with op.batch_alter_table('works', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_works_normalized_title'))

    op.drop_table('works')
    with op.batch_alter_table('work_orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_work_orders_received_at'))
        batch_op.drop_index(batch_op.f('ix_work_orders_department'))

    op.drop_table('work_orders')
    op.drop_table('work_order_mapping')
    with op.batch_alter_table('query_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_query_log_session_id'))
        batch_op.drop_index(batch_op.f('ix_query_log_channel'))
        batch_op.drop_index(batch_op.f('ix_query_log_at'))

    op.drop_table('query_log')
    op.drop_table('kb_state')
    op.drop_table('judge')
    with op.batch_alter_table('faqs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_faqs_status'))

    op.drop_table('faqs')
    with op.batch_alter_table('faq_audit', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_faq_audit_faq_id'))

    op.drop_table('faq_audit')
    with op.batch_alter_table('conversation_turns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversation_turns_session_id'))
        batch_op.drop_index(batch_op.f('ix_conversation_turns_at'))

    op.drop_table('conversation_turns')
    op.drop_table('api_keys')
