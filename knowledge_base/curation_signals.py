"""What staff curation and citizens' feedback teach the answer judge (read by qa_service.training.judge).

    entries = curated_faqs(kb)          # published entries and promoted drafts that name their source articles
    rejected = unhelpful_answers(kb)    # [(question, doc_id, anchor)]: answers a citizen rated 没帮助
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from .db import FeedbackRow, QueryLogRow
from .faqs import FaqService
from .models import FaqEntry, FaqStatus


@dataclass(frozen=True)
class RejectedAnswer:
    question: str
    doc_id: str
    anchor: str | None


def curated_faqs(kb) -> list[FaqEntry]:
    """FAQ entries whose question (and 相似问法) staff linked to source articles: published ones, and drafts or entries
    in review (a "promote to FAQ" from the analytics page pre-fills the best citations, which staff then correct)."""
    out = []
    for entry in FaqService(kb).list():
        if entry.status == FaqStatus.RETIRED or not entry.source_titles:
            continue
        out.append(entry)
    return out


def unhelpful_answers(kb) -> list[RejectedAnswer]:
    """Answered questions a citizen rated 没帮助, with the passage that was quoted first (a negative for the judge)."""
    with kb.session() as s:
        rows = s.execute(
            select(QueryLogRow.question, QueryLogRow.top_doc_id, QueryLogRow.citations)
            .join(FeedbackRow, FeedbackRow.query_id == QueryLogRow.query_id)
            .where(FeedbackRow.helpful.is_(False), QueryLogRow.answered.is_(True), QueryLogRow.top_doc_id.is_not(None))
        ).all()
    out = []
    for question, doc_id, citations in rows:
        first = next((c for c in citations or [] if c.get("doc_id") == doc_id), {})
        out.append(RejectedAnswer(question, doc_id, first.get("anchor")))
    return out
