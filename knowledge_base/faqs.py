"""FAQ entries: storage, lifecycle (draft → in_review → published → retired) and audit log.

    svc = FaqService(kb)
    svc.import_entries(entries, actor="王编辑")        # -> ImportResult(imported=10, updated=0)
    svc.review("FAQ-004", actor="李审核", confidentiality_checked=True); svc.publish("FAQ-004", actor="李审核")

Every write runs in one transaction with its audit row and bumps `kb_state.faq_generation`,
so running servers pick the change up within `reload_interval` without a restart.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from .db import FaqAuditRow, FaqRow, utcnow
from .models import FaqEntry, FaqStatus
from .store import KnowledgeBase


class FaqError(Exception):
    """A request the FAQ lifecycle does not allow; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


@dataclass
class ImportResult:
    imported: int = 0
    updated: int = 0


CONTENT_FIELDS = ("question", "answer", "variants", "source_titles", "source_articles", "topic", "publisher", "short_answer")


def entry_from_row(row: FaqRow) -> FaqEntry:
    return FaqEntry(
        faq_id=row.faq_id,
        question=row.question,
        answer=row.answer,
        variants=list(row.variants or []),
        source_titles=list(row.source_titles or []),
        source_articles=list(row.source_articles or []),
        topic=row.topic,
        publisher=row.publisher,
        short_answer=row.short_answer,
        status=FaqStatus(row.status),
        author=row.author,
        reviewer=row.reviewer,
        confidentiality_checked_by=row.confidentiality_checked_by,
        confidentiality_checked_at=row.confidentiality_checked_at.isoformat() if row.confidentiality_checked_at else None,
    )


def _snapshot(row: FaqRow) -> dict:
    d = dataclasses.asdict(entry_from_row(row))
    d["status"] = row.status
    return d


def match_texts(entry: FaqEntry | FaqRow) -> list[str]:
    """What an FAQ entry is matched by: its question and each 相似问法."""
    return [entry.question, *[v for v in (entry.variants or []) if v.strip()]]


def _text_hash(texts: list[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()


class FaqService:
    def __init__(self, kb: KnowledgeBase):
        self.kb = kb

    # ------------------------------------------------------------ reads
    def get(self, faq_id: str) -> FaqEntry | None:
        with self.kb.session() as s:
            row = s.get(FaqRow, faq_id)
            return entry_from_row(row) if row else None

    def list(self, status: FaqStatus | None = None) -> list[FaqEntry]:
        with self.kb.session() as s:
            q = select(FaqRow).order_by(FaqRow.faq_id)
            if status is not None:
                q = q.where(FaqRow.status == status.value)
            return [entry_from_row(r) for r in s.scalars(q)]

    def audit(self, faq_id: str) -> list[dict]:
        with self.kb.session() as s:
            rows = s.scalars(select(FaqAuditRow).where(FaqAuditRow.faq_id == faq_id).order_by(FaqAuditRow.id))
            return [
                {"actor": r.actor, "action": r.action, "at": r.at.isoformat(), "before": r.before, "after": r.after}
                for r in rows
            ]

    def published_with_vectors(self) -> list[tuple[FaqEntry, np.ndarray | None]]:
        """Published entries and their match vectors (question + variants), for the FAQ matcher."""
        with self.kb.session() as s:
            rows = s.scalars(select(FaqRow).where(FaqRow.status == FaqStatus.PUBLISHED.value).order_by(FaqRow.faq_id))
            out = []
            for r in rows:
                vec = None
                if r.embedding is not None and r.embedded_text_hash == _text_hash(match_texts(r)):
                    vec = np.frombuffer(r.embedding, dtype=np.float32).reshape(len(match_texts(r)), -1)
                out.append((entry_from_row(r), vec))
            return out

    # ------------------------------------------------------------ writes
    def _write(self, s: Session, row: FaqRow, actor: str, action: str, before: dict | None) -> None:
        s.add(FaqAuditRow(faq_id=row.faq_id, actor=actor, action=action, before=before, after=_snapshot(row)))
        self.kb.bump_faq_generation(s)

    def import_entries(self, entries: list[FaqEntry], actor: str) -> ImportResult:
        """Upsert by 编号. Changed content of a published entry goes back to draft: it must be reviewed again."""
        result = ImportResult()
        with self.kb.session() as s:
            for e in entries:
                row = s.get(FaqRow, e.faq_id)
                if row is None:
                    row = FaqRow(faq_id=e.faq_id, status=FaqStatus.DRAFT.value, author=actor, created_at=utcnow())
                    for f in CONTENT_FIELDS:
                        setattr(row, f, getattr(e, f))
                    s.add(row)
                    s.flush()
                    self._write(s, row, actor, "import", None)
                    result.imported += 1
                    continue
                before = _snapshot(row)
                changed = any(getattr(row, f) != getattr(e, f) for f in CONTENT_FIELDS)
                if changed:
                    for f in CONTENT_FIELDS:
                        setattr(row, f, getattr(e, f))
                    if row.status in (FaqStatus.PUBLISHED.value, FaqStatus.IN_REVIEW.value):
                        row.status = FaqStatus.DRAFT.value
                        row.reviewer = row.confidentiality_checked_by = row.confidentiality_checked_at = None
                    self._write(s, row, actor, "import-update", before)
                result.updated += 1
            s.commit()
        return result

    def create(self, entry: FaqEntry, actor: str) -> FaqEntry:
        with self.kb.session() as s:
            if s.get(FaqRow, entry.faq_id) is not None:
                raise FaqError(f"FAQ {entry.faq_id} already exists / 编号已存在", 409)
            row = FaqRow(faq_id=entry.faq_id, status=FaqStatus.DRAFT.value, author=actor, created_at=utcnow())
            for f in CONTENT_FIELDS:
                setattr(row, f, getattr(entry, f))
            s.add(row)
            s.flush()
            self._write(s, row, actor, "create", None)
            s.commit()
            return entry_from_row(row)

    def update(self, faq_id: str, changes: dict, actor: str) -> FaqEntry:
        """Edit content. Editing a published or in-review entry returns it to draft for a new review."""
        with self.kb.session() as s:
            row = self._row(s, faq_id)
            if row.status == FaqStatus.RETIRED.value:
                raise FaqError(f"FAQ {faq_id} is retired / 已下线的条目不能编辑", 409)
            before = _snapshot(row)
            unknown = set(changes) - set(CONTENT_FIELDS)
            if unknown:
                raise FaqError(f"unknown fields / 未知字段: {', '.join(sorted(unknown))}", 422)
            for f, v in changes.items():
                setattr(row, f, v)
            if row.status != FaqStatus.DRAFT.value:
                row.status = FaqStatus.DRAFT.value
                row.reviewer = row.confidentiality_checked_by = row.confidentiality_checked_at = None
            self._write(s, row, actor, "edit", before)
            s.commit()
            return entry_from_row(row)

    def submit(self, faq_id: str, actor: str) -> FaqEntry:
        return self._transition(faq_id, actor, "submit", {FaqStatus.DRAFT}, FaqStatus.IN_REVIEW)

    def review(self, faq_id: str, actor: str, confidentiality_checked: bool) -> FaqEntry:
        """Record the review and the 保密审查. The reviewer must not be the author."""
        if not confidentiality_checked:
            raise FaqError("confidentiality check (保密审查) must be confirmed / 请先完成保密审查", 422)
        with self.kb.session() as s:
            row = self._row(s, faq_id)
            if row.status not in (FaqStatus.IN_REVIEW.value, FaqStatus.DRAFT.value):
                raise FaqError(f"FAQ {faq_id} is {row.status}; only drafts or entries in review can be reviewed / 当前状态不能审核", 409)
            self._require_not_author(row, actor)
            before = _snapshot(row)
            row.status = FaqStatus.IN_REVIEW.value
            row.reviewer = actor
            row.confidentiality_checked_by = actor
            row.confidentiality_checked_at = utcnow()
            self._write(s, row, actor, "review", before)
            s.commit()
            return entry_from_row(row)

    def publish(self, faq_id: str, actor: str, embed=None) -> FaqEntry:
        """Publish a reviewed entry; `embed(texts) -> vectors` computes its match vectors now."""
        with self.kb.session() as s:
            row = self._row(s, faq_id)
            if row.status != FaqStatus.IN_REVIEW.value or not row.confidentiality_checked_at:
                raise FaqError(
                    f"FAQ {faq_id} must be reviewed with the confidentiality check before publishing / 发布前须完成审核和保密审查", 409
                )
            self._require_not_author(row, actor)
            before = _snapshot(row)
            if embed is not None:
                self._embed_row(row, embed)
            row.status = FaqStatus.PUBLISHED.value
            self._write(s, row, actor, "publish", before)
            s.commit()
            return entry_from_row(row)

    def retire(self, faq_id: str, actor: str) -> FaqEntry:
        return self._transition(faq_id, actor, "retire", {FaqStatus.PUBLISHED, FaqStatus.IN_REVIEW, FaqStatus.DRAFT}, FaqStatus.RETIRED)

    def ensure_embeddings(self, embed) -> int:
        """Embed published entries whose vectors are missing or stale; returns how many were embedded."""
        n = 0
        with self.kb.session() as s:
            for row in s.scalars(select(FaqRow).where(FaqRow.status == FaqStatus.PUBLISHED.value)):
                if row.embedding is None or row.embedded_text_hash != _text_hash(match_texts(row)):
                    self._embed_row(row, embed)
                    n += 1
            s.commit()
        return n

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _embed_row(row: FaqRow, embed) -> None:
        texts = match_texts(row)
        row.embedding = np.ascontiguousarray(embed(texts), dtype=np.float32).tobytes()
        row.embedded_text_hash = _text_hash(texts)

    def _transition(self, faq_id: str, actor: str, action: str, allowed: set[FaqStatus], target: FaqStatus) -> FaqEntry:
        with self.kb.session() as s:
            row = self._row(s, faq_id)
            if FaqStatus(row.status) not in allowed:
                raise FaqError(f"FAQ {faq_id} is {row.status}; cannot {action} / 当前状态不能执行该操作", 409)
            before = _snapshot(row)
            row.status = target.value
            self._write(s, row, actor, action, before)
            s.commit()
            return entry_from_row(row)

    @staticmethod
    def _row(s: Session, faq_id: str) -> FaqRow:
        row = s.get(FaqRow, faq_id)
        if row is None:
            raise FaqError(f"no FAQ entry {faq_id} / 未找到该条目", 404)
        return row

    @staticmethod
    def _require_not_author(row: FaqRow, actor: str) -> None:
        if row.author and row.author == actor:
            raise FaqError("the author cannot review or publish their own entry / 作者不能审核或发布自己的条目", 403)
