"""What a knowledge base holds, for `policyqa kb stats`: counts and breakdowns by validity, disclosure, region.

    b = kb_breakdown(kb)
    b.documents, b.works_with_versions, b.validity["in_force"], b.regions.most_common(3)
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select

from .db import DocumentRow
from .store import KnowledgeBase


@dataclass(frozen=True)
class KbBreakdown:
    works: int
    works_with_versions: int  # works with more than one version
    documents: int
    chunks: int
    faqs: int
    faqs_published: int
    validity: Counter
    disclosure: Counter
    regions: Counter  # None: documents without a region
    generation: int
    model_id: str | None
    model_backend: str | None
    dim: int | None


def kb_breakdown(kb: KnowledgeBase) -> KbBreakdown:
    counts = kb.counts()

    def by(column) -> Counter:
        with kb.session() as s:
            return Counter(dict(s.execute(select(column, func.count()).group_by(column)).all()))

    with kb.session() as s:
        per_work = s.execute(select(DocumentRow.work_id, func.count()).group_by(DocumentRow.work_id)).all()
    state = kb.state()
    return KbBreakdown(
        works=counts["works"],
        works_with_versions=sum(1 for _, n in per_work if n > 1),
        documents=counts["documents"],
        chunks=counts["chunks"],
        faqs=counts["faqs"],
        faqs_published=counts["faqs_published"],
        validity=by(DocumentRow.validity),
        disclosure=by(DocumentRow.disclosure),
        regions=by(DocumentRow.region),
        generation=state.generation,
        model_id=state.model_id,
        model_backend=state.model_backend,
        dim=state.dim,
    )
