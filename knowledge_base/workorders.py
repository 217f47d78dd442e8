"""The 12345 work-order store: imported hotline tickets (masked text, the ask inside, its query vector) and
the column mapping staff last used. SQL for tickets lives here only.

    store = WorkOrderStore(kb)
    added, duplicates = store.add([WorkOrder(ticket_no="RX2024…", received_at=…, content="…", question="…", …)])
    tickets = store.window(start, end, department="济南市医疗保障局")
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import func, select

from .db import WorkOrderMappingRow, WorkOrderRow, utcnow
from .store import KnowledgeBase


@dataclass
class WorkOrder:
    """One ticket as stored: every text field already masked."""

    ticket_no: str
    received_at: datetime  # naive UTC
    content: str
    question: str
    normalized: str
    category: str | None = None
    department: str | None = None
    result: str | None = None
    kb_answered: bool = False
    top_doc_id: str | None = None
    source_file: str | None = None
    imported_by: str | None = None
    vector: np.ndarray | None = None
    id: int | None = None


def _from_row(row: WorkOrderRow, with_vector: bool = True) -> WorkOrder:
    vector = None
    if with_vector and row.embedding:
        vector = np.frombuffer(row.embedding, dtype=np.float32)
    return WorkOrder(
        id=row.id, ticket_no=row.ticket_no, received_at=row.received_at, content=row.content, question=row.question,
        normalized=row.normalized, category=row.category, department=row.department, result=row.result,
        kb_answered=row.kb_answered, top_doc_id=row.top_doc_id, source_file=row.source_file,
        imported_by=row.imported_by, vector=vector,
    )


class WorkOrderStore:
    def __init__(self, kb: KnowledgeBase):
        self.kb = kb

    def known(self, ticket_nos: list[str]) -> set[str]:
        """The ticket numbers already stored, of those given."""
        found: set[str] = set()
        with self.kb.session() as s:
            for i in range(0, len(ticket_nos), 500):
                found.update(s.scalars(select(WorkOrderRow.ticket_no).where(WorkOrderRow.ticket_no.in_(ticket_nos[i : i + 500]))))
        return found

    def add(self, orders: list[WorkOrder]) -> tuple[int, list[str]]:
        """Store the tickets not stored yet, in one transaction; returns (added, ticket numbers skipped)."""
        known = self.known([o.ticket_no for o in orders])
        skipped, added, seen = [], 0, set()
        with self.kb.session() as s:
            for o in orders:
                if o.ticket_no in known or o.ticket_no in seen:
                    skipped.append(o.ticket_no)
                    continue
                seen.add(o.ticket_no)
                s.add(WorkOrderRow(
                    ticket_no=o.ticket_no, received_at=o.received_at, content=o.content, question=o.question,
                    normalized=o.normalized, category=o.category, department=o.department, result=o.result,
                    kb_answered=o.kb_answered, top_doc_id=o.top_doc_id, source_file=o.source_file,
                    imported_by=o.imported_by, imported_at=utcnow(),
                    embedding=None if o.vector is None else np.ascontiguousarray(o.vector, dtype=np.float32).tobytes(),
                ))
                added += 1
            s.commit()
        return added, skipped

    def window(self, start: datetime | None, end: datetime | None, department: str | None = None,
               with_vectors: bool = True) -> list[WorkOrder]:
        """Tickets received in [start, end), oldest first."""
        stmt = select(WorkOrderRow)
        if start is not None:
            stmt = stmt.where(WorkOrderRow.received_at >= start)
        if end is not None:
            stmt = stmt.where(WorkOrderRow.received_at < end)
        if department:
            stmt = stmt.where(WorkOrderRow.department == department)
        with self.kb.session() as s:
            return [_from_row(r, with_vectors) for r in s.scalars(stmt.order_by(WorkOrderRow.received_at, WorkOrderRow.id))]

    def count(self) -> int:
        with self.kb.session() as s:
            return int(s.scalar(select(func.count()).select_from(WorkOrderRow)) or 0)

    def departments(self) -> list[str]:
        with self.kb.session() as s:
            rows = s.execute(
                select(WorkOrderRow.department, func.count()).where(WorkOrderRow.department.is_not(None))
                .group_by(WorkOrderRow.department).order_by(func.count().desc())
            ).all()
        return [d for d, _ in rows if d]

    # ------------------------------------------------------------------ column mapping
    def mapping(self) -> dict[str, str] | None:
        with self.kb.session() as s:
            row = s.get(WorkOrderMappingRow, 1)
            return dict(row.mapping) if row is not None and row.mapping else None

    def save_mapping(self, mapping: dict[str, str], actor: str | None) -> None:
        with self.kb.session() as s:
            row = s.get(WorkOrderMappingRow, 1)
            if row is None:
                row = WorkOrderMappingRow(id=1)
                s.add(row)
            row.mapping, row.updated_by, row.updated_at = dict(mapping), actor, utcnow()
            s.commit()
