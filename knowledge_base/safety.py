"""Content safety (issue 11): the staff-managed list of blocked words and patterns, and the screen each question
passes before anything else is done with it.

    screen = ContentScreen(kb)
    screen.run("你们这帮狗 官").category            # "abuse": refused with a fixed reply, never retrieved
    Blocklist(BlocklistService(kb).list()).find_all(document_text)   # the terms a document contains (ingest warnings)
    BlocklistService(kb).add(TermInput("办假证", category="fraud"), Actor("系统管理员", key_id=1))

Matching is done on the text as `screening_text` folds it: traditional → simplified and full-width → half-width
(`knowledge_base.text.fold`), lower case, and every character that is not a letter or a digit removed, so
"狗 官", "狗.官", "狗　官", "狗＊官" and the traditional spelling all match 狗官. A word matches as a substring of
that text; a pattern (regular expression, the `regex` module, case-insensitive) is searched in it under a time limit,
so a careless pattern cannot stall answering. Staff write words and patterns as they like; both are validated:
a pattern must compile, and neither may match the empty text or an ordinary policy question (`PROBE_QUESTIONS`),
which would refuse every citizen.

The list lives in the database (`blocked_terms`); every change writes an audit row (`blocked_term_audit`) in the same
transaction, and the highest audit id is the list's revision: each server polls it and reloads on a change. An empty
knowledge base is seeded once with `DEFAULT_TERMS` (audited as `seed`); a list staff emptied stays empty.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import regex
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from .db import BlockedTermAuditRow, BlockedTermRow, BlockedTermSeedRow, utcnow
from .models import Actor
from .store import KnowledgeBase
from .text import fold

log = logging.getLogger(__name__)

# id → the label staff and analytics see.
CATEGORIES: dict[str, str] = {
    "abuse": "辱骂",
    "political": "涉政敏感",
    "fraud": "诈骗",
    "violence": "暴力恐怖",
    "other": "其他",
}

# A small default, chosen so that none of it occurs in the bundled corpus or the sample FAQ sheet, nor in ordinary
# questions: whole words, not fragments (台独 would block 平台独立, 去死 would block 去死亡登记处).
DEFAULT_TERMS: tuple[tuple[str, bool, str, str], ...] = (
    ("傻逼", False, "abuse", "辱骂"),
    ("煞笔", False, "abuse", "辱骂（谐音）"),
    ("草泥马", False, "abuse", "辱骂（谐音）"),
    ("狗官", False, "abuse", "辱骂公职人员"),
    ("操你妈", False, "abuse", "辱骂"),
    ("王八蛋", False, "abuse", "辱骂"),
    ("法轮功", False, "political", "邪教组织"),
    ("法轮大法", False, "political", "邪教组织"),
    ("全能神", False, "political", "邪教组织"),
    ("台湾独立", False, "political", "分裂国家"),
    ("办假证", False, "fraud", "伪造证件"),
    ("刷单返利", False, "fraud", "常见诈骗话术"),
    (r"代办.{0,6}包过", True, "fraud", "“代办……包过”类中介诈骗话术"),
)

# Ordinary questions a term must never match (it would refuse everyone): a check on what staff type.
PROBE_QUESTIONS = (
    "失业保险金能领多长时间",
    "住房公积金怎么提取",
    "老楼加装电梯要几户同意",
    "春节放假几天",
    "生育津贴怎么申请",
    "去哪里开具死亡证明",
    "平台独立运营的企业如何缴纳社保",
)
MAX_PATTERN = 200
MAX_NOTE = 500
MIN_WORD = 2  # a single character blocks far too much (死, 骗 …)
# A regular expression is given this long per text; the seeded ones take microseconds on a 200-character question.
REGEX_TIMEOUT_SECONDS = 0.05

_NOT_WORD = regex.compile(r"[^\p{L}\p{N}]+")


class SafetyError(Exception):
    """A blocked-word request that cannot be done; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.status = status


def screening_text(text: str) -> str:
    """What words and patterns are matched against: folded, lower case, letters and digits only."""
    return _NOT_WORD.sub("", fold(text or "").lower())


@dataclass(frozen=True)
class BlockedTerm:
    term_id: int
    pattern: str  # as staff typed it
    is_regex: bool
    category: str
    note: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def label(self) -> str:
        return CATEGORIES.get(self.category, self.category)


@dataclass(frozen=True)
class TermInput:
    """A word or pattern as staff submit it."""

    pattern: str
    is_regex: bool = False
    category: str = "abuse"
    note: str | None = None


@dataclass(frozen=True)
class ScreenResult:
    """Why a text is blocked: the first term that matched."""

    category: str
    term_id: int
    pattern: str

    @property
    def label(self) -> str:
        return CATEGORIES.get(self.category, self.category)


@dataclass(frozen=True)
class ContentWarning:
    """A document or FAQ entry that contains a blocked word: reported at ingest or import, never changed."""

    where: str  # the document's title or path, or the FAQ entry's 编号
    category: str
    pattern: str

    @property
    def label(self) -> str:
        return CATEGORIES.get(self.category, self.category)

    def __str__(self) -> str:
        return f"{self.where}: 含{self.label}词语“{self.pattern}” / contains a blocked {self.category} term"


def compile_term(pattern: str, is_regex: bool):
    """The compiled matcher of one term (a `regex` pattern), or SafetyError (422) saying what is wrong with it."""
    pattern = (pattern or "").strip()
    if not pattern:
        raise SafetyError("词语或规则不能为空 / the word or pattern must not be empty")
    if len(pattern) > MAX_PATTERN:
        raise SafetyError(f"词语或规则不能超过{MAX_PATTERN}字 / at most {MAX_PATTERN} characters")
    if is_regex:
        try:
            compiled = regex.compile(fold(pattern), regex.IGNORECASE | regex.V0)
        except regex.error as e:
            raise SafetyError(f"正则表达式有误：{e} / invalid regular expression: {e}") from None
    else:
        word = screening_text(pattern)
        if len(word) < MIN_WORD:
            raise SafetyError(
                f"词语去掉空格和标点后至少{MIN_WORD}个字 / a word needs at least {MIN_WORD} letters or digits "
                "besides spaces and punctuation"
            )
        compiled = regex.compile(regex.escape(word))
    for probe in ("", *PROBE_QUESTIONS):
        if _search(compiled, screening_text(probe)):
            shown = f"普通问题「{probe}」" if probe else "空白内容"
            raise SafetyError(f"该规则会拦截{shown}，请写得更具体 / the pattern matches {'an ordinary question' if probe else 'empty text'}")
    return compiled


def _search(compiled, text: str):
    try:
        return compiled.search(text, timeout=REGEX_TIMEOUT_SECONDS)
    except TimeoutError:
        log.warning("blocked-word pattern %r timed out on a %d-character text; not matched", compiled.pattern, len(text))
        return None


class Blocklist:
    """The terms compiled once: every word in one alternation, each pattern on its own."""

    def __init__(self, terms: list[BlockedTerm]):
        self.terms = list(terms)
        self._words: dict[str, BlockedTerm] = {}
        self._patterns: list[tuple[object, BlockedTerm]] = []
        for t in self.terms:
            try:
                compiled = compile_term(t.pattern, t.is_regex) if t.is_regex else None
            except SafetyError as e:  # stored before a stricter check, or edited in the database: skip, say so
                log.warning("blocked-word pattern %s %r is not used: %s", t.term_id, t.pattern, e)
                continue
            if compiled is not None:
                self._patterns.append((compiled, t))
            else:
                self._words.setdefault(screening_text(t.pattern), t)
        longest_first = sorted(self._words, key=len, reverse=True)
        self._alternation = regex.compile("|".join(regex.escape(w) for w in longest_first)) if longest_first else None

    def __len__(self) -> int:
        return len(self.terms)

    def match(self, text: str) -> ScreenResult | None:
        """The first term `text` contains, or None."""
        found = self._matches(screening_text(text), first=True)
        return found[0] if found else None

    def find_all(self, text: str) -> list[ScreenResult]:
        """Every term `text` contains, once each (for the warnings of an ingest or an FAQ import)."""
        return self._matches(screening_text(text), first=False)

    def warnings(self, where: str, *texts: str | None) -> list[ContentWarning]:
        """A warning for each term the texts contain (a document's text; an FAQ entry's answer and short answer)."""
        found = self.find_all("\n".join(t for t in texts if t))
        return [ContentWarning(where, r.category, r.pattern) for r in found]

    def _matches(self, text: str, first: bool) -> list[ScreenResult]:
        out: dict[int, ScreenResult] = {}
        if not text:
            return []
        if self._alternation is not None:
            for m in self._alternation.finditer(text):
                t = self._words[m.group(0)]
                out.setdefault(t.term_id, ScreenResult(t.category, t.term_id, t.pattern))
                if first:
                    return list(out.values())
        for compiled, t in self._patterns:
            if _search(compiled, text):
                out.setdefault(t.term_id, ScreenResult(t.category, t.term_id, t.pattern))
                if first:
                    break
        return list(out.values())


class BlocklistService:
    """The list as stored: read, add, edit, delete (each audited), its revision, and the one-time seed."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb

    # ------------------------------------------------------------ reads
    def list(self) -> list[BlockedTerm]:
        self.ensure_seeded()
        with self.kb.session() as s:
            return [_term(r) for r in s.scalars(select(BlockedTermRow).order_by(BlockedTermRow.category, BlockedTermRow.id))]

    def get(self, term_id: int) -> BlockedTerm:
        with self.kb.session() as s:
            return _term(self._row(s, term_id))

    def revision(self) -> int:
        """The highest audit id: it moves with every change, so a server knows when to reload."""
        with self.kb.session() as s:
            return int(s.scalar(select(func.max(BlockedTermAuditRow.id))) or 0)

    def audit(self, limit: int = 200) -> list[dict]:
        with self.kb.session() as s:
            rows = s.scalars(select(BlockedTermAuditRow).order_by(BlockedTermAuditRow.id.desc()).limit(limit))
            return [
                {"id": r.id, "term_id": r.term_id, "actor": r.actor, "actor_key_id": r.actor_key_id, "action": r.action, "at": r.at,
                 "before": r.before, "after": r.after}
                for r in rows
            ]

    # ------------------------------------------------------------ writes
    def ensure_seeded(self) -> None:
        """Seed `DEFAULT_TERMS` into a knowledge base that never had a list. The seed marker's fixed key makes two
        servers starting at once seed once: the second insert conflicts and is rolled back."""
        if self.revision() > 0:
            return
        with self.kb.session() as s:
            try:
                s.add(BlockedTermSeedRow(id=1, at=utcnow()))
                s.flush()
                s.add(BlockedTermAuditRow(term_id=None, actor="system", action="seed", at=utcnow(),
                                          after={"terms": len(DEFAULT_TERMS)}))
                for pattern, is_regex, category, note in DEFAULT_TERMS:
                    s.add(BlockedTermRow(pattern=pattern, is_regex=is_regex, category=category, note=note, created_by="system"))
                s.commit()
            except IntegrityError:
                s.rollback()

    def add(self, term: TermInput, actor: Actor) -> BlockedTerm:
        values = _checked(term)
        self.ensure_seeded()
        with self.kb.session() as s:
            self._refuse_duplicate(s, values)
            row = BlockedTermRow(**values, created_by=actor.name, created_at=utcnow(), updated_at=utcnow())
            s.add(row)
            s.flush()
            self._audit(s, row.id, actor, "create", None, _snapshot(row))
            s.commit()
            return _term(row)

    def update(self, term_id: int, term: TermInput, actor: Actor) -> BlockedTerm:
        values = _checked(term)
        with self.kb.session() as s:
            row = self._row(s, term_id)
            before = _snapshot(row)
            if all(before[k] == v for k, v in values.items()):
                return _term(row)
            self._refuse_duplicate(s, values, except_id=term_id)
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_at = utcnow()
            self._audit(s, row.id, actor, "edit", before, _snapshot(row))
            s.commit()
            return _term(row)

    def delete(self, term_id: int, actor: Actor) -> BlockedTerm:
        with self.kb.session() as s:
            row = self._row(s, term_id)
            term = _term(row)
            self._audit(s, row.id, actor, "delete", _snapshot(row), None)
            s.delete(row)
            s.commit()
            return term

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _row(s, term_id: int) -> BlockedTermRow:
        row = s.get(BlockedTermRow, term_id)
        if row is None:
            raise SafetyError(f"未找到该词语 / no blocked word {term_id}", 404)
        return row

    @staticmethod
    def _refuse_duplicate(s, values: dict, except_id: int | None = None) -> None:
        same = select(BlockedTermRow.id).where(BlockedTermRow.pattern == values["pattern"],
                                               BlockedTermRow.is_regex == values["is_regex"])
        if except_id is not None:
            same = same.where(BlockedTermRow.id != except_id)
        existing = s.scalar(same.limit(1))
        if existing is not None:
            raise SafetyError(f"该词语已在列表中（#{existing}）/ already in the list as #{existing}", 409)

    @staticmethod
    def _audit(s, term_id: int, actor: Actor, action: str, before: dict | None, after: dict | None) -> None:
        s.add(BlockedTermAuditRow(term_id=term_id, actor=actor.name, actor_key_id=actor.key_id, action=action, at=utcnow(),
                                  before=before, after=after))


def _checked(term: TermInput) -> dict:
    pattern = (term.pattern or "").strip()
    compile_term(pattern, bool(term.is_regex))
    if term.category not in CATEGORIES:
        raise SafetyError(f"未知类别 / unknown category {term.category!r}; one of: {', '.join(CATEGORIES)}")
    note = (term.note or "").strip() or None
    if note and len(note) > MAX_NOTE:
        raise SafetyError(f"备注不能超过{MAX_NOTE}字 / the note is longer than {MAX_NOTE} characters")
    return {"pattern": pattern, "is_regex": bool(term.is_regex), "category": term.category, "note": note}


def _snapshot(row: BlockedTermRow) -> dict:
    return {"pattern": row.pattern, "is_regex": bool(row.is_regex), "category": row.category, "note": row.note}


def _term(row: BlockedTermRow) -> BlockedTerm:
    return BlockedTerm(row.id, row.pattern, bool(row.is_regex), row.category, row.note, row.created_by, row.created_at,
                       row.updated_at)


class ContentScreen:
    """The blocklist a server screens with, kept current: at most every `reload_interval` seconds it reads the
    list's revision and recompiles when it moved (a change made through this process is seen at once)."""

    def __init__(self, kb: KnowledgeBase, reload_interval: float = 5.0, clock=time.monotonic):
        self.service = BlocklistService(kb)
        self.reload_interval = reload_interval
        self.clock = clock
        self._lock = threading.Lock()
        self._revision = -1
        self._checked_at = float("-inf")
        self._blocklist = Blocklist([])

    @property
    def blocklist(self) -> Blocklist:
        self._refresh_if_due()
        return self._blocklist

    def run(self, text: str) -> ScreenResult | None:
        return self.blocklist.match(text)

    def refresh(self) -> None:
        with self._lock:
            self._reload()

    def _refresh_if_due(self) -> None:
        if self.clock() - self._checked_at < self.reload_interval:
            return
        if not self._lock.acquire(blocking=False):
            return  # another request is reloading: screen with the current list
        try:
            self._reload()
        except Exception:  # screening must go on with the last list when the database hiccups
            log.exception("could not reload the blocked-word list; still using revision %s", self._revision)
        finally:
            self._lock.release()

    def _reload(self) -> None:
        self._checked_at = self.clock()
        revision = self.service.revision()
        if revision == self._revision and revision > 0:
            return
        terms = self.service.list()  # seeds a new knowledge base
        self._blocklist = Blocklist(terms)
        self._revision = self.service.revision()
