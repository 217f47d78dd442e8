"""Read-only queries behind the staff dashboard and the weekly report: asks and feedback over time, FAQ
entries published and retired, documents added. Times are naive UTC, as stored.

    activity = Activity(kb)
    for at, channel, answered in activity.asks(start, end, channel="web", department=None): ...
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterator

from sqlalchemy import func, select

from .db import ApiKeyRow, DocumentRow, FaqAuditRow, FaqRow, FeedbackRow, QueryLogRow, WorkOrderRow
from .query_log import answered_by_department
from .store import KnowledgeBase


@dataclass
class FaqChange:
    faq_id: str
    question: str
    action: str  # publish | retire
    actor: str
    at: datetime


@dataclass
class DocumentChange:
    doc_id: str
    title: str
    publisher: str | None
    version_date: date | None
    validity: str
    new_version: bool  # the work had an earlier version
    ingested_at: datetime


class Activity:
    def __init__(self, kb: KnowledgeBase):
        self.kb = kb

    @staticmethod
    def _between(stmt, column, start: datetime | None, end: datetime | None):
        if start is not None:
            stmt = stmt.where(column >= start)
        if end is not None:
            stmt = stmt.where(column < end)
        return stmt

    def _chat_window(self, stmt, start, end, channel, department):
        q = QueryLogRow
        stmt = self._between(stmt.where(q.blocked_category.is_(None)), q.at, start, end)  # blocked: counted apart
        if channel:
            stmt = stmt.where(q.channel == channel)
        if department:
            stmt = stmt.where(answered_by_department(department))
        return stmt

    def asks(self, start: datetime | None, end: datetime | None, channel: str | None = None,
             department: str | None = None) -> Iterator[tuple[datetime, str, bool]]:
        """(time, channel, answered) of every logged chat question in the window."""
        stmt = self._chat_window(select(QueryLogRow.at, QueryLogRow.channel, QueryLogRow.answered), start, end, channel, department)
        with self.kb.session() as s:
            yield from s.execute(stmt.execution_options(yield_per=5000))

    def feedback(self, start: datetime | None, end: datetime | None, channel: str | None = None,
                 department: str | None = None) -> Iterator[tuple[datetime, bool]]:
        """(time of the rated answer, helpful) for every rating of an answer asked in the window."""
        stmt = select(QueryLogRow.at, FeedbackRow.helpful).join(FeedbackRow, FeedbackRow.query_id == QueryLogRow.query_id)
        stmt = self._chat_window(stmt, start, end, channel, department)
        with self.kb.session() as s:
            yield from s.execute(stmt)

    def blocked(self, start: datetime | None, end: datetime | None, channel: str | None = None) -> Iterator[tuple[datetime, str]]:
        """(time, category) of every question content safety refused in the window."""
        q = QueryLogRow
        stmt = self._between(select(q.at, q.blocked_category).where(q.blocked_category.is_not(None)), q.at, start, end)
        if channel:
            stmt = stmt.where(q.channel == channel)
        with self.kb.session() as s:
            yield from s.execute(stmt)

    def tickets(self, start: datetime | None, end: datetime | None, department: str | None = None) -> Iterator[tuple[datetime, bool]]:
        """(受理时间, answered by the knowledge base) of every imported ticket in the window."""
        w = WorkOrderRow
        stmt = self._between(select(w.received_at, w.kb_answered), w.received_at, start, end)
        if department:
            stmt = stmt.where(w.department == department)
        with self.kb.session() as s:
            yield from s.execute(stmt)

    def departments(self) -> list[str]:
        """The departments staff keys belong to, 主管部门 of FAQ entries, 承办单位 of the tickets, then publishers of
        the documents that answered chat questions."""
        with self.kb.session() as s:
            own = [d for (d,) in s.execute(
                select(ApiKeyRow.department).where(ApiKeyRow.department.is_not(None)).group_by(ApiKeyRow.department)) if d]
            own += [d for (d,) in s.execute(
                select(FaqRow.department).where(FaqRow.department.is_not(None))
                .group_by(FaqRow.department).order_by(func.count().desc())) if d]
            ticket_units = [d for (d,) in s.execute(
                select(WorkOrderRow.department).where(WorkOrderRow.department.is_not(None))
                .group_by(WorkOrderRow.department).order_by(func.count().desc())) if d]
            publishers = [p for (p,) in s.execute(
                select(DocumentRow.publisher).join(QueryLogRow, QueryLogRow.top_doc_id == DocumentRow.doc_id)
                .where(DocumentRow.publisher.is_not(None)).group_by(DocumentRow.publisher)
                .order_by(func.count().desc()).limit(50)) if p]
        return list(dict.fromkeys(own + ticket_units + publishers))

    def faq_changes(self, start: datetime | None, end: datetime | None) -> list[FaqChange]:
        """FAQ entries published or retired in the window, in order."""
        a = FaqAuditRow
        stmt = select(a.faq_id, FaqRow.question, a.action, a.actor, a.at).join(FaqRow, FaqRow.faq_id == a.faq_id, isouter=True)
        stmt = stmt.where(a.action.in_(("publish", "retire")))
        if start is not None:
            stmt = stmt.where(a.at >= start)
        if end is not None:
            stmt = stmt.where(a.at < end)
        with self.kb.session() as s:
            return [FaqChange(f, q or "", act, actor, at) for f, q, act, actor, at in s.execute(stmt.order_by(a.at, a.id))]

    def document_changes(self, start: datetime | None, end: datetime | None) -> list[DocumentChange]:
        """Documents (versions) ingested in the window; `new_version` when their work has an older version."""
        d = DocumentRow
        stmt = select(d.doc_id, d.work_id, d.title, d.publisher, d.version_date, d.validity, d.ingested_at)
        if start is not None:
            stmt = stmt.where(d.ingested_at >= start)
        if end is not None:
            stmt = stmt.where(d.ingested_at < end)
        with self.kb.session() as s:
            rows = s.execute(stmt.order_by(d.ingested_at, d.title)).all()
            works = list({r.work_id for r in rows})
            oldest: dict[str, date | None] = {}
            for i in range(0, len(works), 500):
                stmt = select(d.work_id, func.min(d.version_date)).where(d.work_id.in_(works[i : i + 500])).group_by(d.work_id)
                oldest.update(dict(s.execute(stmt).all()))
        return [
            DocumentChange(r.doc_id, r.title, r.publisher, r.version_date, r.validity,
                           new_version=bool(r.version_date and oldest.get(r.work_id) and oldest[r.work_id] < r.version_date),
                           ingested_at=r.ingested_at)
            for r in rows
        ]
