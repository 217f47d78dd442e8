"""The relational store: documents, versions, chunks, FAQ entries, query log, keys — SQLAlchemy ORM.

    engine = open_engine("sqlite:///kb/policyqa.sqlite3")
    with Session(engine) as s:
        s.scalars(select(DocumentRow)).all()

SQLite is the embedded default (WAL mode, so the server keeps reading while an ingest writes); PostgreSQL
(`postgresql+psycopg://…`) is the shared store of several replicas. Vectors and BM25 tokens are stored beside
their chunk so that any process can build an index generation without re-embedding or re-tokenizing anything.
A schema change is a new model field here plus a revision in `knowledge_base/migrations/versions/`.
"""
from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    event,
)
from sqlalchemy import inspect as inspect_object
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from .migrations import upgrade


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


@event.listens_for(Session, "before_flush")
def _no_nul_characters(session: Session, _context, _instances) -> None:
    """PostgreSQL's text cannot hold NUL (U+0000), SQLite's can: one rule for both, no NUL reaches the store. (A
    question typed with one was answered on PostgreSQL but its query-log row failed; FAQ fields are cleaned earlier.)"""
    for obj in (*session.new, *session.dirty):
        if not isinstance(obj, Base):
            continue
        for attr in inspect_object(obj).mapper.column_attrs:
            value = getattr(obj, attr.key)
            if isinstance(value, str) and "\x00" in value:
                setattr(obj, attr.key, value.replace("\x00", ""))


class WorkRow(Base):
    """A work (one regulation or plan) whose versions share a normalized title."""

    __tablename__ = "works"
    work_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    normalized_title: Mapped[str] = mapped_column(String(400), unique=True, index=True)
    title: Mapped[str] = mapped_column(String(400))


class DocumentRow(Base):
    """One version of a work."""

    __tablename__ = "documents"
    doc_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    work_id: Mapped[str] = mapped_column(ForeignKey("works.work_id"), index=True)
    title: Mapped[str] = mapped_column(String(400), index=True)
    doc_number: Mapped[str | None] = mapped_column(String(200))
    index_number: Mapped[str | None] = mapped_column(String(200))
    publisher: Mapped[str | None] = mapped_column(String(200), index=True)
    written_date: Mapped[date | None] = mapped_column(Date)
    published_date: Mapped[date | None] = mapped_column(Date)
    version_date: Mapped[date | None] = mapped_column(Date)
    validity_text: Mapped[str | None] = mapped_column(String(50))
    topic: Mapped[str | None] = mapped_column(String(200))
    region: Mapped[str | None] = mapped_column(String(50), index=True)
    disclosure: Mapped[str] = mapped_column(String(20))
    doc_type: Mapped[str] = mapped_column(String(20))
    revision_notes: Mapped[list] = mapped_column(JSON, default=list)
    source_path: Mapped[str] = mapped_column(String(1000), index=True)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    validity: Mapped[str] = mapped_column(String(20))
    superseded_by: Mapped[str | None] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)
    sections: Mapped[list] = mapped_column(JSON, default=list)  # [{"path": [...], "anchor": str, "text": str}]
    ingested_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ChunkRow(Base):
    __tablename__ = "chunks"
    # The integer row id doubles as the FAISS / BM25 position key.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    chunk_id: Mapped[str] = mapped_column(String(80), unique=True)
    doc_id: Mapped[str] = mapped_column(ForeignKey("documents.doc_id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    section_path: Mapped[str] = mapped_column(String(1000))
    anchor: Mapped[str] = mapped_column(String(80))
    text: Mapped[str] = mapped_column(Text)
    embed_text: Mapped[str] = mapped_column(Text)
    tokens: Mapped[str] = mapped_column(Text)  # jieba tokens joined by spaces, so BM25 rebuilds never re-tokenize
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, L2-normalized


class FaqRow(Base):
    __tablename__ = "faqs"
    faq_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    variants: Mapped[list] = mapped_column(JSON, default=list)
    source_titles: Mapped[list] = mapped_column(JSON, default=list)
    source_articles: Mapped[list] = mapped_column(JSON, default=list)
    topic: Mapped[str | None] = mapped_column(String(200))
    publisher: Mapped[str | None] = mapped_column(String(200))
    short_answer: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), index=True, default="draft")
    # The 处室/单位 that curates the entry (issue 11): its editors and reviewers act on it; None: any department.
    department: Mapped[str | None] = mapped_column(String(200), index=True)
    author: Mapped[str | None] = mapped_column(String(200))
    # The staff key that wrote the entry: the four-eyes rule compares keys, not names (two people may share one).
    # None for entries written on the command line, and before issue 11 (then the names are compared).
    author_key_id: Mapped[int | None] = mapped_column(Integer)
    reviewer: Mapped[str | None] = mapped_column(String(200))
    reviewer_key_id: Mapped[int | None] = mapped_column(Integer)  # the key that reviewed (names may be shared)
    confidentiality_checked_by: Mapped[str | None] = mapped_column(String(200))
    confidentiality_checked_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # Embeddings of the question followed by each variant, float32 rows; recomputed when the text changes.
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    embedded_text_hash: Mapped[str | None] = mapped_column(String(64))


class FaqAuditRow(Base):
    __tablename__ = "faq_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    faq_id: Mapped[str] = mapped_column(String(80), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    actor_key_id: Mapped[int | None] = mapped_column(Integer)  # the staff key, when the change came through one
    action: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)


class QueryLogRow(Base):
    __tablename__ = "query_log"
    query_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    question: Mapped[str] = mapped_column(Text)
    normalized: Mapped[str] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(20), index=True)
    answered: Mapped[bool] = mapped_column(Boolean)
    top_doc_id: Mapped[str | None] = mapped_column(String(40))
    faq_id: Mapped[str | None] = mapped_column(String(80))
    confidence: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    session_id: Mapped[str | None] = mapped_column(String(100), index=True)
    citations: Mapped[list] = mapped_column(JSON, default=list)  # [{"doc_id","title","section","anchor"}] for promote-to-FAQ
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)  # query vector, for grouping near-duplicates
    # Conversations (issue 10): `question` is what was retrieved (a follow-up completed from the conversation),
    # `asked` the follow-up as typed; a follow-up counts with the topic its conversation opened (`followup_of`, the
    # query id of the question that opened it, when that one was logged), not as a new frequent question.
    asked: Mapped[str | None] = mapped_column(Text)
    turn: Mapped[int | None] = mapped_column(Integer)  # 1-based position in the conversation
    follow_up: Mapped[bool | None] = mapped_column(Boolean)
    followup_of: Mapped[str | None] = mapped_column(String(40), index=True)
    # The blocked-word category (abuse, political, fraud …) when content safety refused the question unanswered.
    blocked_category: Mapped[str | None] = mapped_column(String(20), index=True)


class FeedbackRow(Base):
    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    query_id: Mapped[str] = mapped_column(ForeignKey("query_log.query_id"), index=True)
    helpful: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    department: Mapped[str | None] = mapped_column(String(200))  # 处室/单位; None: not limited to one
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class KbStateRow(Base):
    """One row: which index generation is current, and which encoder built it."""

    __tablename__ = "kb_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    faq_generation: Mapped[int] = mapped_column(Integer, default=0)
    model_id: Mapped[str | None] = mapped_column(String(300))  # the encoder's identity
    model_spec: Mapped[str | None] = mapped_column(String(1000))  # what to load it by (POLICYQA_EMBEDDING_MODEL)
    model_backend: Mapped[str | None] = mapped_column(String(20))
    dim: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class EncoderRow(Base):
    """An encoder fine-tuned on this knowledge base (`policyqa model train-encoder`, issue 21): the tensors it changed
    on top of its base model (safetensors bytes, about 86 MB: the transformer layers; the word embeddings stay the
    base model's), so every replica sharing the database rebuilds the same model. `kb_state.model_spec` names it as
    `kb-encoder:<encoder_id>` while it is the one the chunks were embedded with."""

    __tablename__ = "encoders"
    encoder_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    base_spec: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    info: Mapped[dict] = mapped_column(JSON)  # training sizes per source, config, selection figures
    tensors: Mapped[bytes] = mapped_column(LargeBinary)


# ------------------------------------------------------------------------------------------ sharded ingest (issue 22)
class ShardRunRow(Base):
    """One shard of a sharded ingest (`policyqa ingest DIR --shard 2/4 --run NAME`): `policyqa kb publish` switches
    the index generation only when every shard of a run is `done`. A killed shard stays `running`."""

    __tablename__ = "shard_runs"
    run: Mapped[str] = mapped_column(String(200), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1-based
    shards: Mapped[int] = mapped_column(Integer)  # how many shards the run has
    status: Mapped[str] = mapped_column(String(20), index=True)  # running | done | failed | published
    host: Mapped[str | None] = mapped_column(String(200))
    files: Mapped[int] = mapped_column(Integer, default=0)  # files of this shard (FAQ sheets included)
    staged: Mapped[int] = mapped_column(Integer, default=0)  # document versions staged by the last attempt
    failed: Mapped[int] = mapped_column(Integer, default=0)  # files that failed in the last attempt
    error: Mapped[str | None] = mapped_column(Text)  # the first of those failures
    model_id: Mapped[str | None] = mapped_column(String(300))  # the encoder the staged vectors came from
    model_spec: Mapped[str | None] = mapped_column(String(1000))
    model_backend: Mapped[str | None] = mapped_column(String(20))
    dim: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class StagedVersionRow(Base):
    """A document version a shard parsed, chunked and embedded, waiting for `policyqa kb publish`: never served
    (nothing that answers reads this table) until publish stores it as documents and chunks."""

    __tablename__ = "staged_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run: Mapped[str] = mapped_column(String(200), index=True)
    shard: Mapped[int] = mapped_column(Integer)
    rel_path: Mapped[str] = mapped_column(String(1000))  # relative to the ingested directory: the publish order
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    doc_id: Mapped[str] = mapped_column(String(40))
    document: Mapped[dict] = mapped_column(JSON)  # the ParsedDocument: meta, text, sections
    chunks: Mapped[list] = mapped_column(JSON)  # [{chunk_id, doc_id, ordinal, section_path, anchor, text, embed_text, tokens}]
    vectors: Mapped[bytes] = mapped_column(LargeBinary)  # float32 rows, one per chunk
    staged_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# ------------------------------------------------------------------------------------------ 12345 work orders
class WorkOrderRow(Base):
    """One 12345 hotline ticket imported from the hotline system's export; text masked before it is stored."""

    __tablename__ = "work_orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # 工单编号, or a hash of 受理时间 + 诉求内容 when the sheet has none: re-importing a file adds nothing.
    ticket_no: Mapped[str] = mapped_column(String(120), unique=True)
    received_at: Mapped[datetime] = mapped_column(DateTime, index=True)  # naive UTC, like the query log
    content: Mapped[str] = mapped_column(Text)  # 诉求内容, masked
    question: Mapped[str] = mapped_column(Text)  # the ask inside it, masked ("失业保险金最长可以领多久")
    normalized: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(200))  # 诉求类型
    department: Mapped[str | None] = mapped_column(String(200), index=True)  # 承办单位
    result: Mapped[str | None] = mapped_column(Text)  # 办理结果, masked
    kb_answered: Mapped[bool] = mapped_column(Boolean, default=False)  # the knowledge base answers the ask
    top_doc_id: Mapped[str | None] = mapped_column(String(40))
    source_file: Mapped[str | None] = mapped_column(String(400))
    imported_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    imported_by: Mapped[str | None] = mapped_column(String(200))
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)  # query vector of `normalized`


class WorkOrderMappingRow(Base):
    """The column mapping staff last used for their hotline system's export (one row)."""

    __tablename__ = "work_order_mapping"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mapping: Mapped[dict] = mapped_column(JSON, default=dict)  # field -> column header
    updated_by: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


def printable_url(url: str) -> str:
    """A store URL as it may be printed or logged: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL at all: say so rather than echo it (it may hold a password)
        return "(not a database URL)"


def create_store_engine(url: str) -> Engine:
    """The engine for a store URL, as every process uses it, without touching the schema. A bare postgresql:// URL
    means psycopg 3 (the driver policyqa installs), not SQLAlchemy's default psycopg2."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        # pre_ping: a replica outlives database restarts and fail-overs; a dead pooled connection is replaced.
        return create_engine(parsed, pool_pre_ping=True)
    engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return engine


def open_engine(url: str) -> Engine:
    """Create the engine and bring the schema to this code's revision (knowledge_base.migrations: new stores get
    the tables, older ones are migrated in place, one at HEAD costs one small query)."""
    engine = create_store_engine(url)
    upgrade(engine, Base.metadata)
    return engine


class JudgeRow(Base):
    """The learned answer judge trained on this knowledge base (`policyqa model train-judge`), one row: its identity,
    the hash of the data it was trained on, and the model itself (small text), so every replica sharing the
    database serves the same judge."""

    __tablename__ = "judge"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    judge_id: Mapped[str] = mapped_column(String(64))
    data_hash: Mapped[str] = mapped_column(String(64))
    trained_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ranker: Mapped[str] = mapped_column(Text)  # LightGBM's text model
    body: Mapped[str] = mapped_column(Text)  # judge.json: answerability, threshold, config, training info


class ConversationTurnRow(Base):
    """One turn of a citizen's conversation (issue 10), so that every server instance sees a session's last turns.
    Bounded by count and age in `knowledge_base.sessions.SessionRepository`."""

    __tablename__ = "conversation_turns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(100), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    question: Mapped[str] = mapped_column(Text)  # as asked
    understood: Mapped[str] = mapped_column(Text)  # as completed from the conversation (what was retrieved)
    answer: Mapped[str] = mapped_column(Text)
    query_id: Mapped[str | None] = mapped_column(String(40))


class ConversationSessionRow(Base):
    """A session id the server issued (issue 23): a client may continue only a conversation it was given the id of;
    an id never issued, or silent longer than POLICYQA_SESSION_MAX_AGE, starts a new one."""

    __tablename__ = "conversation_sessions"
    session_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    issued_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


# ------------------------------------------------------------------------------------------ content safety (issue 11)
class BlockedTermRow(Base):
    """A word or regular expression that marks a question as not to be answered (辱骂, 涉政敏感, 诈骗 …)."""

    __tablename__ = "blocked_terms"
    __table_args__ = {"sqlite_autoincrement": True}  # ids are never reused: the audit names terms by id
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pattern: Mapped[str] = mapped_column(String(200))
    is_regex: Mapped[bool] = mapped_column(Boolean, default=False)
    category: Mapped[str] = mapped_column(String(20), index=True)
    note: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class BlockedTermAuditRow(Base):
    """Every change to the blocked-word list: who, when, what before and after. Its highest id is the list's
    revision, which each server polls to pick up a change."""

    __tablename__ = "blocked_term_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    term_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    actor_key_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))  # seed | create | edit | delete
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)


class BlockedTermSeedRow(Base):
    """One row once the default blocked-word list was seeded: its fixed primary key makes seeding happen once even
    when several servers start together on one database (the second insert conflicts), without writing an explicit
    id into a table whose ids a sequence hands out (PostgreSQL's sequence would not advance)."""

    __tablename__ = "blocked_term_seed"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
