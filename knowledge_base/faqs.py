"""FAQ entries: storage, lifecycle (draft → in_review → published → retired) and audit log.

    svc = FaqService(kb)
    svc.import_entries(entries, actor="王编辑")        # -> ImportResult(imported=10, updated=0, unchanged=0)
    svc.review("FAQ-004", actor="李审核", confidentiality_checked=True); svc.publish("FAQ-004", actor="李审核")

Rules the lifecycle enforces whoever calls it (HTTP, CLI, ingest):
- only `published` entries are ever handed to the answering engine (`published_with_vectors`);
- review records the 保密审查 (who, when) and must be done by someone other than the author; publishing
  needs that review and, again, someone other than the author;
- changing the content of an entry in review or published sends it back to draft: what is served is
  always exactly what a reviewer approved;
- every change writes an audit row (who, which key, when, action, full before/after snapshot) in the same
  transaction;
- the four-eyes rule compares staff keys (`author_key_id`, the audit rows' `actor_key_id`), not names: two
  people may share a name; names are compared only for entries written without a key (command line, older rows);
- an actor tied to a 处室/单位 (`Actor.department`) acts only on that department's entries: 403 otherwise.

Every write bumps `kb_state.faq_generation`, so running servers pick the change up within
`reload_interval` without a restart and without re-embedding anything but the changed entry.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .db import FaqAuditRow, FaqRow, utcnow
from .models import MAX_QUESTION_CHARS, Actor, FaqEntry, FaqStatus
from .store import KnowledgeBase, match_texts_of


class FaqError(Exception):
    """A request the FAQ lifecycle does not allow; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.status = status


@dataclass
class ImportResult:
    imported: int = 0  # new 编号, stored as drafts
    updated: int = 0  # 编号 already present (upserted, never duplicated)
    unchanged: int = 0  # of `updated`: same content, nothing written
    errors: list[tuple[str, str]] = field(default_factory=list)  # (编号, reason) rejected by validation


@dataclass
class FaqRecord:
    """An entry with its bookkeeping times, for listings."""

    entry: FaqEntry
    created_at: datetime | None
    updated_at: datetime | None


CONTENT_FIELDS = ("question", "answer", "variants", "source_titles", "source_articles", "topic", "publisher", "short_answer",
                  "department")
LIST_FIELDS = ("variants", "source_titles", "source_articles")
# Audit actions that change what an entry says: whoever did the last of them may not review the result.
CONTENT_ACTIONS = ("create", "import", "import-update", "edit", "promote")

# 编号 appears in URLs and spreadsheets: letters, digits, CJK, '-', '_', '.'; no spaces or slashes.
FAQ_ID_RE = re.compile(r"^[\w][\w.\-]{0,79}$")
MAX_QUESTION = MAX_QUESTION_CHARS  # what /v1/ask accepts
MAX_ANSWER = 5000
MAX_SHORT_ANSWER = 300  # the new-media rendering's whole budget
MAX_VARIANTS = 50
MAX_DEPARTMENT = 200


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
        department=row.department,
        status=FaqStatus(row.status),
        author=row.author,
        author_key_id=row.author_key_id,
        reviewer=row.reviewer,
        reviewer_key_id=row.reviewer_key_id,
        confidentiality_checked_by=row.confidentiality_checked_by,
        confidentiality_checked_at=row.confidentiality_checked_at.isoformat() if row.confidentiality_checked_at else None,
    )


def _snapshot(row: FaqRow) -> dict:
    d = dataclasses.asdict(entry_from_row(row))
    d["status"] = row.status
    return d


def match_texts(entry: FaqEntry | FaqRow) -> list[str]:
    """What an FAQ entry is matched by: its question and each 相似问法."""
    return match_texts_of(entry.question, entry.variants)


def _text_hash(texts: list[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()


# C0 control characters other than tab, line feed and carriage return, and DEL: never meaningful in an answer, and a
# spreadsheet (XLSX) cannot hold them, so one stored \u0007 would break every export.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_control_characters(text: str) -> str:
    return CONTROL_CHARACTERS.sub("", text)


def clean_content(values: dict) -> dict:
    """Strip text and control characters, drop empty and repeated list items, turn empty optional text into None;
    raise on bad values."""
    out: dict = {}
    for f, v in values.items():
        if f not in CONTENT_FIELDS:
            raise FaqError(f"unknown field / 未知字段: {f}", 422)
        if f in LIST_FIELDS:
            if v is None:
                v = []
            if isinstance(v, str):
                v = [v]
            if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
                raise FaqError(f"{f} must be a list of strings / {f} 应为文本列表", 422)
            v = [strip_control_characters(x).strip() for x in v if x]
            v = list(dict.fromkeys(x for x in v if x))
        else:
            if v is not None and not isinstance(v, str):
                raise FaqError(f"{f} must be text / {f} 应为文本", 422)
            v = strip_control_characters(v or "").strip()
            if f not in ("question", "answer"):
                v = v or None
        out[f] = v
    if "question" in out:
        if not out["question"]:
            raise FaqError("问题不能为空 / the question must not be empty", 422)
        if len(out["question"]) > MAX_QUESTION:
            raise FaqError(f"问题不能超过{MAX_QUESTION}字 / the question is longer than {MAX_QUESTION} characters", 422)
    if "answer" in out and len(out["answer"]) > MAX_ANSWER:
        raise FaqError(f"答案不能超过{MAX_ANSWER}字 / the answer is longer than {MAX_ANSWER} characters", 422)
    if out.get("short_answer") and len(out["short_answer"]) > MAX_SHORT_ANSWER:
        raise FaqError(f"简短答复不能超过{MAX_SHORT_ANSWER}字 / the short answer is longer than {MAX_SHORT_ANSWER} characters", 422)
    if out.get("department") and len(out["department"]) > MAX_DEPARTMENT:
        raise FaqError(f"主管部门不能超过{MAX_DEPARTMENT}字 / the department is longer than {MAX_DEPARTMENT} characters", 422)
    if "variants" in out:
        if len(out["variants"]) > MAX_VARIANTS:
            raise FaqError(f"相似问法最多{MAX_VARIANTS}条 / at most {MAX_VARIANTS} variants", 422)
        if any(len(v) > MAX_QUESTION for v in out["variants"]):
            raise FaqError(f"相似问法每条不能超过{MAX_QUESTION}字 / a variant is longer than {MAX_QUESTION} characters", 422)
    return out


def check_faq_id(faq_id: str) -> str:
    faq_id = (faq_id or "").strip()
    if not FAQ_ID_RE.match(faq_id):
        raise FaqError(
            f"编号只能包含字母、数字、汉字和 - _ .，且不超过80字 / invalid 编号 {faq_id!r}: letters, digits, CJK, '-', '_', '.' (≤ 80)", 422
        )
    return faq_id


class FaqService:
    def __init__(self, kb: KnowledgeBase):
        self.kb = kb

    # ------------------------------------------------------------ reads
    def get(self, faq_id: str) -> FaqEntry | None:
        with self.kb.session() as s:
            row = s.get(FaqRow, faq_id)
            return entry_from_row(row) if row else None

    def record(self, faq_id: str) -> FaqRecord | None:
        with self.kb.session() as s:
            row = s.get(FaqRow, faq_id)
            return FaqRecord(entry_from_row(row), row.created_at, row.updated_at) if row else None

    def list(self, status: FaqStatus | None = None) -> list[FaqEntry]:
        return [r.entry for r in self.records(status)]

    def records(self, status: FaqStatus | None = None, search: str | None = None,
                department: str | None = None) -> list[FaqRecord]:
        """Entries by 编号, optionally of one status, of one 主管部门, and containing `search` in 编号, 问题 or 主题."""
        with self.kb.session() as s:
            q = select(FaqRow).order_by(FaqRow.faq_id)
            if status is not None:
                q = q.where(FaqRow.status == FaqStatus(status).value)
            if department:
                q = q.where(FaqRow.department == department)
            if search and search.strip():
                term = search.strip()
                q = q.where(or_(FaqRow.faq_id.contains(term), FaqRow.question.contains(term), FaqRow.topic.contains(term)))
            return [FaqRecord(entry_from_row(r), r.created_at, r.updated_at) for r in s.scalars(q)]

    def audit(self, faq_id: str) -> list[dict]:
        with self.kb.session() as s:
            rows = s.scalars(select(FaqAuditRow).where(FaqAuditRow.faq_id == faq_id).order_by(FaqAuditRow.id))
            return [
                {"actor": r.actor, "actor_key_id": r.actor_key_id, "action": r.action, "at": r.at.isoformat(), "before": r.before, "after": r.after}
                for r in rows
            ]

    def with_question(self, question: str) -> list[FaqEntry]:
        """Entries (not retired) whose 问题 or a 相似问法 is exactly `question`."""
        question = (question or "").strip()
        with self.kb.session() as s:
            rows = s.scalars(select(FaqRow).where(FaqRow.status != FaqStatus.RETIRED.value).order_by(FaqRow.faq_id))
            return [entry_from_row(r) for r in rows if question and (r.question == question or question in (r.variants or []))]

    def next_id(self, prefix: str = "FAQ-") -> str:
        """The next free 编号 of the form FAQ-NNN (one past the highest number in use)."""
        pattern = re.compile(re.escape(prefix) + r"(\d+)$")
        with self.kb.session() as s:
            ids = list(s.scalars(select(FaqRow.faq_id).where(FaqRow.faq_id.startswith(prefix))))
        numbers = [int(m.group(1)) for i in ids if (m := pattern.match(i))]
        return f"{prefix}{(max(numbers, default=0) + 1):03d}"

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
    def _write(self, s: Session, row: FaqRow, actor: Actor, action: str, before: dict | None, note: str | None = None) -> None:
        after = _snapshot(row)
        if note:
            after["note"] = note  # e.g. a reviewer's reason for sending an entry back, or the analytics group
        s.add(FaqAuditRow(faq_id=row.faq_id, actor=actor.name, actor_key_id=actor.key_id, action=action, at=utcnow(),
                          before=before, after=after))
        self.kb.bump_faq_generation(s)

    def import_entries(self, entries: list[FaqEntry], actor: Actor | str) -> ImportResult:
        """Upsert by 编号: new ones become drafts; changed content of an entry in review, published or retired
        goes back to draft (it must be reviewed again); identical rows write nothing. Entries that fail
        validation, or belong to a department the actor may not act for, are reported in `errors` and skipped;
        the others are imported. A row without a 主管部门 belongs to the actor's department."""
        actor = _check_actor(actor)
        result = ImportResult()
        with self.kb.session() as s:
            for e in entries:
                try:
                    faq_id = check_faq_id(e.faq_id)
                    content = clean_content({f: getattr(e, f) for f in CONTENT_FIELDS})
                    if not content["answer"]:
                        raise FaqError("答案不能为空 / the answer must not be empty", 422)
                    row = s.get(FaqRow, faq_id)
                    if row is not None:
                        _require_department(actor, row.department)
                    # A sheet without 主管部门 keeps an entry where it is; a new one joins the importer's department.
                    content["department"] = content["department"] or (row.department if row is not None else actor.department)
                    _require_department(actor, content["department"])
                except FaqError as err:
                    result.errors.append((e.faq_id, str(err)))
                    continue
                if row is None:
                    row = _new_row(faq_id, actor)
                    for f, v in content.items():
                        setattr(row, f, v)
                    s.add(row)
                    s.flush()
                    self._write(s, row, actor, "import", None)
                    result.imported += 1
                    continue
                result.updated += 1
                if all(_same(getattr(row, f), v) for f, v in content.items()):
                    result.unchanged += 1
                    continue
                before = _snapshot(row)
                for f, v in content.items():
                    setattr(row, f, v)
                _back_to_draft(row)
                self._write(s, row, actor, "import-update", before)
            s.commit()
        return result

    def create(self, entry: FaqEntry, actor: Actor | str, action: str = "create", note: str | None = None) -> FaqEntry:
        """A new draft authored by `actor`, in the actor's department unless it names one (which the actor must
        be allowed to act for). The answer may still be empty (e.g. promoted from analytics); it must be filled
        in before the entry can be submitted or reviewed."""
        actor = _check_actor(actor)
        faq_id = check_faq_id(entry.faq_id)
        content = clean_content({f: getattr(entry, f) for f in CONTENT_FIELDS})
        content["department"] = content["department"] or actor.department
        _require_department(actor, content["department"])
        with self.kb.session() as s:
            if s.get(FaqRow, faq_id) is not None:
                raise FaqError(f"编号已存在 / FAQ {faq_id} already exists", 409)
            row = _new_row(faq_id, actor)
            for f, v in content.items():
                setattr(row, f, v)
            s.add(row)
            s.flush()
            self._write(s, row, actor, action, None, note)
            s.commit()
            return entry_from_row(row)

    def update(self, faq_id: str, changes: dict, actor: Actor | str) -> FaqEntry:
        """Edit content. Editing an entry in review or published returns it to draft for a new review;
        an edit that changes nothing writes nothing."""
        actor = _check_actor(actor)
        changes = clean_content(changes)
        with self.kb.session() as s:
            row = self._row(s, faq_id, actor)
            if "department" in changes:
                _require_department(actor, changes["department"])
            if row.status == FaqStatus.RETIRED.value:
                raise FaqError(f"已下线的条目不能编辑，请先恢复为草稿 / FAQ {faq_id} is retired; reopen it first", 409)
            if all(_same(getattr(row, f), v) for f, v in changes.items()):
                return entry_from_row(row)
            before = _snapshot(row)
            for f, v in changes.items():
                setattr(row, f, v)
            _back_to_draft(row)
            self._write(s, row, actor, "edit", before)
            s.commit()
            return entry_from_row(row)

    def submit(self, faq_id: str, actor: Actor | str) -> FaqEntry:
        """Draft → in review (送审)."""
        return self._transition(faq_id, actor, "submit", {FaqStatus.DRAFT}, FaqStatus.IN_REVIEW, needs_answer=True)

    def review(
        self, faq_id: str, actor: Actor | str, confidentiality_checked: bool, approve: bool = True, comment: str | None = None
    ) -> FaqEntry:
        """Record the review and the 保密审查 (who, when). The reviewer must be neither the author nor the last
        person who changed the content. `approve=False` sends the entry back to draft with `comment`."""
        actor = _check_actor(actor)
        comment = (comment or "").strip() or None
        if approve and not confidentiality_checked:
            raise FaqError("请先确认已完成保密审查 / the confidentiality check (保密审查) must be confirmed", 422)
        with self.kb.session() as s:
            row = self._row(s, faq_id, actor)
            if row.status not in (FaqStatus.IN_REVIEW.value, FaqStatus.DRAFT.value):
                raise FaqError(
                    f"当前状态（{row.status}）不能审核 / FAQ {faq_id} is {row.status}; only drafts and entries in review can be reviewed", 409
                )
            self._require_independent(s, row, actor, "审核 / review")
            before = _snapshot(row)
            if not approve:
                row.status = FaqStatus.DRAFT.value
                row.reviewer = row.reviewer_key_id = row.confidentiality_checked_by = row.confidentiality_checked_at = None
                self._write(s, row, actor, "reject", before, comment)
                s.commit()
                return entry_from_row(row)
            if not (row.answer or "").strip():
                raise FaqError("答案为空，不能审核 / the answer is empty", 422)
            row.status = FaqStatus.IN_REVIEW.value
            row.reviewer, row.reviewer_key_id = actor.name, actor.key_id
            row.confidentiality_checked_by = actor.name
            row.confidentiality_checked_at = utcnow()
            self._write(s, row, actor, "review", before, comment)
            s.commit()
            return entry_from_row(row)

    def publish(self, faq_id: str, actor: Actor | str, embed=None) -> FaqEntry:
        """Publish a reviewed entry; `embed(texts) -> vectors` computes its match vectors now, so servers
        only load them (without it, the server embeds the entry once when it reloads)."""
        actor = _check_actor(actor)
        with self.kb.session() as s:
            row = self._row(s, faq_id, actor)
            if row.status != FaqStatus.IN_REVIEW.value or not row.confidentiality_checked_at:
                raise FaqError(
                    f"发布前须完成审核和保密审查 / FAQ {faq_id} must be reviewed with the confidentiality check before publishing", 409
                )
            self._require_independent(s, row, actor, "发布 / publish")
            before = _snapshot(row)
            if embed is not None:
                self._embed_row(row, embed)
            row.status = FaqStatus.PUBLISHED.value
            self._write(s, row, actor, "publish", before)
            s.commit()
            return entry_from_row(row)

    def retire(self, faq_id: str, actor: Actor | str) -> FaqEntry:
        """Take an entry off every channel (下线); kept, with its history, and can be reopened."""
        return self._transition(faq_id, actor, "retire", {FaqStatus.PUBLISHED, FaqStatus.IN_REVIEW, FaqStatus.DRAFT}, FaqStatus.RETIRED)

    def reopen(self, faq_id: str, actor: Actor | str) -> FaqEntry:
        """Retired → draft, to be edited and reviewed again."""
        return self._transition(faq_id, actor, "reopen", {FaqStatus.RETIRED}, FaqStatus.DRAFT)

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

    def _transition(
        self, faq_id: str, actor: Actor | str, action: str, allowed: set[FaqStatus], target: FaqStatus, needs_answer: bool = False
    ) -> FaqEntry:
        actor = _check_actor(actor)
        with self.kb.session() as s:
            row = self._row(s, faq_id, actor)
            if FaqStatus(row.status) not in allowed:
                raise FaqError(f"当前状态（{row.status}）不能执行该操作 / FAQ {faq_id} is {row.status}; cannot {action}", 409)
            if needs_answer and not (row.answer or "").strip():
                raise FaqError("答案为空，请先填写答案 / the answer is empty; write it first", 422)
            before = _snapshot(row)
            row.status = target.value
            if target in (FaqStatus.DRAFT, FaqStatus.RETIRED):
                row.reviewer = row.reviewer_key_id = row.confidentiality_checked_by = row.confidentiality_checked_at = None
            self._write(s, row, actor, action, before)
            s.commit()
            return entry_from_row(row)

    @staticmethod
    def _row(s: Session, faq_id: str, actor: Actor | None = None) -> FaqRow:
        """The entry, which `actor` (when given) must be allowed to act on: 404 without it, 403 for another
        department's entry."""
        row = s.get(FaqRow, faq_id)
        if row is None:
            raise FaqError(f"未找到该条目 / no FAQ entry {faq_id}", 404)
        if actor is not None:
            _require_department(actor, row.department)
        return row

    @staticmethod
    def _require_independent(s: Session, row: FaqRow, actor: Actor, what: str) -> None:
        """Four eyes: neither the author nor whoever last changed the content may review or publish it."""
        if is_same_person(row.author, row.author_key_id, actor):
            raise FaqError(f"作者不能{what.split(' / ')[0]}自己的条目 / the author cannot {what.split(' / ')[1]} their own entry", 403)
        last_edit = s.execute(
            select(FaqAuditRow.actor, FaqAuditRow.actor_key_id)
            .where(FaqAuditRow.faq_id == row.faq_id, FaqAuditRow.action.in_(CONTENT_ACTIONS))
            .order_by(FaqAuditRow.id.desc())
            .limit(1)
        ).first()
        if last_edit is not None and is_same_person(last_edit.actor, last_edit.actor_key_id, actor):
            raise FaqError(
                f"最后修改内容的人不能{what.split(' / ')[0]}该条目 / whoever last changed the content cannot {what.split(' / ')[1]} it", 403
            )


def _back_to_draft(row: FaqRow) -> None:
    if row.status != FaqStatus.DRAFT.value:
        row.status = FaqStatus.DRAFT.value
        row.reviewer = row.reviewer_key_id = row.confidentiality_checked_by = row.confidentiality_checked_at = None


def _same(current, new) -> bool:
    if isinstance(new, list):
        return list(current or []) == new
    return (current or "") == (new or "")


def is_same_person(name: str | None, key_id: int | None, actor: Actor) -> bool:
    """Whether `actor` is who wrote something recorded as (name, key_id): by staff key when both sides came through
    one (two keys sharing a name are two people); by name only when one side has no key (the command line, rows
    written before keys were recorded), where the name is all there is."""
    if key_id is not None and actor.key_id is not None:
        return key_id == actor.key_id
    return bool(name) and name == actor.name


def _require_department(actor: Actor, department: str | None) -> None:
    if not actor.may_act_on(department):
        whose = f"“{department}”" if department else "未指定部门"
        raise FaqError(
            f"无权操作{whose}的条目：您的密钥属于“{actor.department}” / forbidden: the entry belongs to "
            f"{department or 'no department'}, the key to {actor.department}", 403
        )


def _new_row(faq_id: str, actor: Actor) -> FaqRow:
    return FaqRow(faq_id=faq_id, status=FaqStatus.DRAFT.value, author=actor.name, author_key_id=actor.key_id,
                  created_at=utcnow())


def _check_actor(actor: Actor | str) -> Actor:
    """An `Actor`; a plain name is the command line's (no key, every department)."""
    if isinstance(actor, str):
        actor = Actor(actor)
    name = (actor.name or "").strip()
    if not name:
        raise FaqError("操作人不能为空 / an actor is required", 422)
    return Actor(name, actor.key_id, actor.department)
