"""The query log: one row per answered or refused question, for analytics, feedback and promote-to-FAQ.

    log = QueryLogRepository(kb)
    log.add(QueryLogEntry(query_id="…", question="我的手机13812345678，失业金怎么领", normalized="…", channel="web", …))
    log.get(query_id).question   # "我的手机1381234****，失业金怎么领"
    log.delete_older_than(180)    # the retention rule (个人信息保护法: keep no longer than needed)
    log.conversation("visit-42")  # a session's turns, oldest first (follow-ups with `asked` and `followup_of`)

Personal information (ID-card, phone, bank-card numbers, e-mail, plates) is masked here, before anything is
written: the answer was composed from the text as typed, the log never holds it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select

from .db import DocumentRow, FaqRow, FeedbackRow, QueryLogRow, utcnow
from .privacy import mask_personal_info
from .store import KnowledgeBase


@dataclass(frozen=True)
class LoggedCitation:
    doc_id: str | None
    title: str
    section: str
    anchor: str | None


@dataclass(frozen=True)
class QueryLogEntry:
    query_id: str
    question: str
    normalized: str
    channel: str
    answered: bool
    confidence: float
    latency_ms: float
    top_doc_id: str | None = None
    faq_id: str | None = None
    session_id: str | None = None
    citations: list[LoggedCitation] = field(default_factory=list)
    embedding: bytes | None = None  # the query vector (float32), for grouping near-duplicates
    at: datetime | None = None  # set by the store when None
    # Conversations: a follow-up is logged completed (`question`) and as typed (`asked`), with the query id of the
    # question that opened its topic, so analytics count it with that topic and staff can read the conversation.
    asked: str | None = None
    turn: int | None = None
    follow_up: bool = False
    followup_of: str | None = None
    blocked_category: str | None = None  # content safety refused it (abuse, political, fraud …)


def answered_by_department(department: str):
    """A where-clause on the query log: questions answered from `department`'s documents (their 发布机构) or from
    one of its FAQ entries (主管部门) — what an analytics filter by department selects."""
    q = QueryLogRow
    return or_(
        q.top_doc_id.in_(select(DocumentRow.doc_id).where(DocumentRow.publisher == department)),
        q.faq_id.in_(select(FaqRow.faq_id).where(FaqRow.department == department)),
    )


class QueryLogRepository:
    def __init__(self, kb: KnowledgeBase):
        self.kb = kb

    def add(self, entry: QueryLogEntry) -> None:
        """Store one question, masked."""
        row = QueryLogRow(
            query_id=entry.query_id,
            question=mask_personal_info(entry.question),
            normalized=mask_personal_info(entry.normalized),
            channel=entry.channel,
            answered=entry.answered,
            top_doc_id=entry.top_doc_id,
            faq_id=entry.faq_id,
            confidence=float(entry.confidence),
            latency_ms=float(entry.latency_ms),
            session_id=entry.session_id,
            citations=[{"doc_id": c.doc_id, "title": c.title, "section": c.section, "anchor": c.anchor} for c in entry.citations],
            embedding=entry.embedding,
            asked=mask_personal_info(entry.asked),
            turn=entry.turn,
            follow_up=entry.follow_up,
            followup_of=entry.followup_of,
            blocked_category=entry.blocked_category,
        )
        if entry.at is not None:
            row.at = entry.at
        with self.kb.session() as s:
            s.add(row)
            s.commit()

    def get(self, query_id: str) -> QueryLogEntry | None:
        with self.kb.session() as s:
            row = s.get(QueryLogRow, query_id)
            return _entry(row) if row is not None else None

    def conversation(self, session_id: str, limit: int = 200) -> list[QueryLogEntry]:
        """A session's logged turns, oldest first (masked, as stored)."""
        with self.kb.session() as s:
            rows = s.scalars(select(QueryLogRow).where(QueryLogRow.session_id == session_id)
                             .order_by(QueryLogRow.at, QueryLogRow.turn).limit(limit)).all()
            return [_entry(r) for r in rows]

    def delete_older_than(self, days: int, now: datetime | None = None) -> int:
        """Delete questions (and their feedback) asked more than `days` days ago; returns how many questions."""
        if days <= 0:
            raise ValueError("days must be positive")
        cutoff = (now or utcnow()) - timedelta(days=days)
        old = select(QueryLogRow.query_id).where(QueryLogRow.at < cutoff)
        with self.kb.session() as s:
            s.execute(delete(FeedbackRow).where(FeedbackRow.query_id.in_(old)))
            n = s.execute(delete(QueryLogRow).where(QueryLogRow.at < cutoff)).rowcount
            s.commit()
            return int(n or 0)


def _entry(row: QueryLogRow) -> QueryLogEntry:
    return QueryLogEntry(
        query_id=row.query_id,
        question=row.question,
        normalized=row.normalized,
        channel=row.channel,
        answered=bool(row.answered),
        confidence=row.confidence,
        latency_ms=row.latency_ms,
        top_doc_id=row.top_doc_id,
        faq_id=row.faq_id,
        session_id=row.session_id,
        citations=[LoggedCitation(c.get("doc_id"), c.get("title", ""), c.get("section", ""), c.get("anchor")) for c in row.citations or []],
        embedding=row.embedding,
        at=row.at,
        asked=row.asked,
        turn=row.turn,
        follow_up=bool(row.follow_up),
        followup_of=row.followup_of,
        blocked_category=row.blocked_category,
    )
