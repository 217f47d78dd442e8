"""The FAQ curation workflow over the FAQ store and the question analytics: what the curation routes and staff
pages call, one method per action, each returning the entry with its timestamps (a `FaqRecord`).

    curation = CurationService(faqs=FaqService(kb), analytics=QuestionAnalytics(kb), embedder=lambda: None)
    curation.publish("FAQ-004", actor="李审核", confidentiality_checked=True)   # review + publish in one step
    curation.promote("g-1a2b3c", QuestionFilter(kind="top", days=30), actor="王编辑")
    curation.import_sheet(data, "faq.xlsx", actor="王编辑")

The rules themselves (reviewer ≠ author, 保密审查 before publishing, valid content) are the FAQ store's
(knowledge_base/faqs.py); this layer sequences them and names what the caller asked for when it is missing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ingest.faq_sheet import read_faq_sheet, write_faq_xlsx
from knowledge_base.faqs import FaqRecord, FaqService, ImportResult, is_same_person
from knowledge_base.models import Actor, FaqEntry, FaqStatus
from knowledge_base.safety import Blocklist, ContentWarning

from .analytics import QuestionAnalytics, QuestionFilter, QuestionGroup
from .auth import ApiError

Embed = Callable[[list[str]], object]
LIST_FIELDS = ("variants", "source_titles", "source_articles")
TEXT_FIELDS = ("question", "answer")


@dataclass(frozen=True)
class SheetRowError:
    row: int  # 0: a row the sheet reader accepted but the FAQ store rejected (named by 编号 in `error`)
    error: str


@dataclass(frozen=True)
class SheetImport:
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[SheetRowError] = field(default_factory=list)
    unreadable: bool = False  # the file itself (not a row) is unusable
    # Entries whose answer contains a blocked word (content safety): imported as they are, for staff to look at.
    warnings: list[ContentWarning] = field(default_factory=list)


@dataclass(frozen=True)
class Promotion:
    record: FaqRecord
    group: QuestionGroup


def _not_found(faq_id: str) -> ApiError:
    return ApiError(404, "not_found", f"未找到该条目 / no FAQ entry {faq_id}")


class CurationService:
    def __init__(self, faqs: FaqService, analytics: QuestionAnalytics, embedder: Callable[[], Embed | None],
                 blocklist: Callable[[], Blocklist] | None = None):
        self.faqs = faqs
        self.analytics = analytics
        self._embedder = embedder  # the serving encoder's embed_queries, or None when it cannot start
        self._blocklist = blocklist  # the current blocked-word list, for import warnings

    # ------------------------------------------------------------------ reads
    def record(self, faq_id: str) -> FaqRecord:
        record = self.faqs.record(faq_id)
        if record is None:
            raise _not_found(faq_id)
        return record

    def records(self, status: FaqStatus | None = None, search: str | None = None,
                department: str | None = None) -> list[FaqRecord]:
        return self.faqs.records(status, search, department)

    def audit(self, faq_id: str) -> list[dict]:
        self.record(faq_id)
        return self.faqs.audit(faq_id)

    def export_xlsx(self, status: FaqStatus | None = None) -> bytes:
        return write_faq_xlsx([r.entry for r in self.faqs.records(status)])

    # ------------------------------------------------------------------ writes
    def create(self, content: dict, faq_id: str | None, actor: Actor | str) -> FaqRecord:
        values = {k: (v if v is not None else _empty(k)) for k, v in content.items()}
        created = self.faqs.create(FaqEntry(faq_id=faq_id or self.faqs.next_id(), **values), actor=actor)
        return self.record(created.faq_id)

    def update(self, faq_id: str, changes: dict, actor: Actor | str) -> FaqRecord:
        if not changes:
            raise ApiError(422, "invalid_request", "没有要修改的字段 / nothing to change")
        self.faqs.update(faq_id, changes, actor=actor)
        return self.record(faq_id)

    def submit(self, faq_id: str, actor: Actor | str) -> FaqRecord:
        self.faqs.submit(faq_id, actor=actor)
        return self.record(faq_id)

    def review(self, faq_id: str, actor: Actor | str, confidentiality_checked: bool, approve: bool = True,
               comment: str | None = None) -> FaqRecord:
        self.faqs.review(faq_id, actor=actor, confidentiality_checked=confidentiality_checked, approve=approve, comment=comment)
        return self.record(faq_id)

    def publish(self, faq_id: str, actor: Actor | str, confidentiality_checked: bool = False) -> FaqRecord:
        """Publish a reviewed entry. With `confidentiality_checked` an entry not yet reviewed is first reviewed
        (保密审查 recorded as this reviewer); both steps are audited."""
        current = self.faqs.get(faq_id)
        if current is None:
            raise _not_found(faq_id)
        reviewed = current.status == FaqStatus.IN_REVIEW and current.confidentiality_checked_at
        if not reviewed and confidentiality_checked and current.status in (FaqStatus.DRAFT, FaqStatus.IN_REVIEW):
            current = self.faqs.review(faq_id, actor=actor, confidentiality_checked=True)
        # Check the rules before loading the encoder, so a refused publish is answered at once.
        who = Actor(actor) if isinstance(actor, str) else actor
        may_publish = current.status == FaqStatus.IN_REVIEW and not is_same_person(current.author, current.author_key_id, who)
        self.faqs.publish(faq_id, actor=actor, embed=self._embedder() if may_publish else None)
        return self.record(faq_id)

    def retire(self, faq_id: str, actor: Actor | str) -> FaqRecord:
        self.faqs.retire(faq_id, actor=actor)
        return self.record(faq_id)

    def reopen(self, faq_id: str, actor: Actor | str) -> FaqRecord:
        self.faqs.reopen(faq_id, actor=actor)
        return self.record(faq_id)

    def import_sheet(self, data: bytes, filename: str, actor: Actor | str) -> SheetImport:
        sheet = read_faq_sheet(data, filename)
        errors = [SheetRowError(e.row, e.error) for e in sheet.errors]
        if not sheet.entries and any(e.row <= 1 for e in sheet.errors):
            return SheetImport(errors=errors, unreadable=True)
        result: ImportResult = self.faqs.import_entries(sheet.entries, actor=actor)
        errors += [SheetRowError(0, f"编号 {faq_id}: {reason}") for faq_id, reason in result.errors]
        rejected = {faq_id for faq_id, _ in result.errors}
        blocklist = self._blocklist() if self._blocklist else None
        warnings = [w for e in sheet.entries if blocklist is not None and e.faq_id not in rejected
                    for w in blocklist.warnings(e.faq_id, e.question, e.answer, e.short_answer)]
        return SheetImport(result.imported, result.updated, result.unchanged, errors, warnings=warnings)

    def promote(self, group_id: str, flt: QuestionFilter, actor: Actor | str, faq_id: str | None = None) -> Promotion:
        """A new FAQ draft from a group of logged questions (409 when an entry already asks its question)."""
        group = self.analytics.find_group(group_id, flt)
        if group is None:
            raise ApiError(404, "not_found", f"未找到该问题分组（请刷新列表）/ no question group {group_id}; list the groups again")
        existing = self.faqs.with_question(group.representative)
        if existing:
            first = existing[0]
            raise ApiError(
                409, "conflict",
                f"已有相同问题的条目 {first.faq_id}（{first.status.value}）/ entry {first.faq_id} already asks this question",
            )
        draft = self.analytics.draft_from_group(group, faq_id=faq_id or self.faqs.next_id(), faq_lookup=self.faqs.get)
        created = self.faqs.create(draft, actor=actor, action="promote",
                                   note=f"由问题分组 {group.group_id} 生成（{group.count} 次提问）")
        return Promotion(self.record(created.faq_id), group)


def _empty(name: str):
    return [] if name in LIST_FIELDS else ("" if name in TEXT_FIELDS else None)
