"""Domain types shared by every stage: ingest produces them, the knowledge base stores them,
the answering service composes them, the HTTP layer converts them to JSON at the edge.

    doc = ParsedDocument(meta=DocumentMeta(title="失业保险条例", source_path="x.md"), text="…", sections=[…])
    chunk = Chunk(chunk_id="…", doc_id="…", ordinal=0, section_path="第四章 失业保险待遇 > 第十七条", …)
    answer = Answer(query_id="…", answered=True, answer="根据《失业保险条例》第十七条：……", …)
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date


class Disclosure(str, enum.Enum):
    """公开属性. Only PUBLIC documents are ever shown on public channels."""

    PUBLIC = "主动公开"
    ON_REQUEST = "依申请公开"
    WITHHELD = "不予公开"


class Validity(str, enum.Enum):
    IN_FORCE = "in_force"
    SUPERSEDED = "superseded"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


# The longest question any channel accepts (the web widget, the 12345 console, new media, the CLI, FAQ entries).
MAX_QUESTION_CHARS = 500


class ChannelName(str, enum.Enum):
    """Where an answer is shown; each has its own rendering (qa_service/channels.py)."""

    WEB = "web"  # the website chat widget
    HOTLINE = "hotline"  # the 12345 operators' console: a script to read out
    NEWMEDIA = "newmedia"  # 新媒体 (WeChat and similar): plain text, at most 300 characters

    @classmethod
    def parse(cls, value: "str | ChannelName") -> "ChannelName":
        """The channel named `value`; ValueError with the allowed names otherwise."""
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(c.value for c in cls)
            raise ValueError(f"未知渠道，可选 {'/'.join(c.value for c in cls)} / unknown channel {value!r}, expected one of {names}") from None


class DocType(str, enum.Enum):
    REGULATION = "regulation"  # 法律、行政法规、地方性法规: 章/节/条 structure
    PLAN = "plan"  # 政务公开实施方案 and other 公文: 一、/（一）/1. outline
    OTHER = "other"


class FaqStatus(str, enum.Enum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"
    RETIRED = "retired"


@dataclass
class DocumentMeta:
    """Metadata of one document version, as extracted (and possibly overridden by a sidecar)."""

    title: str
    source_path: str = ""
    doc_number: str | None = None  # 发文字号 / 文号, e.g. 淄政办字〔2025〕17号 or 国务院令第258号
    index_number: str | None = None  # 索引号
    publisher: str | None = None  # 发布机构 / 发文机关
    written_date: date | None = None  # 成文日期
    published_date: date | None = None  # 发布日期
    version_date: date | None = None  # the version this text represents (file name date for regulations)
    validity_text: str | None = None  # 有效性 as printed (有效 / 失效 / 废止 / empty)
    topic: str | None = None  # 主题分类 / 组配分类
    region: str | None = None  # 济南 / 淄博 / 台州 / 山东 / 浙江 / 全国
    disclosure: Disclosure = Disclosure.PUBLIC
    doc_type: DocType = DocType.OTHER
    revision_notes: list[str] = field(default_factory=list)  # promulgation / revision lines (历次修订)


@dataclass
class Section:
    """One structural block of a document in reading order: an article, an outline item, a paragraph."""

    path: list[str]  # e.g. ["第四章 失业保险待遇", "第十七条"] or ["二、重点任务", "（二）", "3."]
    text: str  # the block's own text, headings included as printed
    anchor: str  # stable HTML anchor id for the document viewer, e.g. "s-12"


@dataclass
class ParsedDocument:
    """Output of load → clean → extract metadata → structure: the input of chunking."""

    meta: DocumentMeta
    text: str  # the cleaned full text
    sections: list[Section]


@dataclass
class Chunk:
    chunk_id: str
    doc_id: str
    ordinal: int
    section_path: str  # " > ".join(Section.path)
    anchor: str
    text: str  # what is quoted to users
    embed_text: str  # what is embedded and indexed: title + section + text


@dataclass
class StoredDocument:
    """A document version as the knowledge base holds it."""

    doc_id: str
    work_id: str
    meta: DocumentMeta
    validity: Validity
    content_hash: str
    superseded_by: str | None = None  # doc_id of the in-force version
    text: str = ""


@dataclass
class FaqEntry:
    faq_id: str  # 编号, e.g. FAQ-004
    question: str
    answer: str
    variants: list[str] = field(default_factory=list)  # 相似问法
    source_titles: list[str] = field(default_factory=list)  # 来源文件
    source_articles: list[str] = field(default_factory=list)  # 条款
    topic: str | None = None  # 主题
    publisher: str | None = None  # 发布机构
    short_answer: str | None = None  # for new media
    department: str | None = None  # 主管部门: the 处室/单位 whose editors and reviewers curate it (issue 11)
    status: FaqStatus = FaqStatus.DRAFT
    author: str | None = None
    author_key_id: int | None = None  # the staff key that wrote it (the four-eyes rule compares keys)
    reviewer: str | None = None
    reviewer_key_id: int | None = None  # the staff key that reviewed it (and did the 保密审查)
    confidentiality_checked_by: str | None = None
    confidentiality_checked_at: str | None = None


@dataclass(frozen=True)
class Actor:
    """Who makes a curation change: the name recorded in audit rows, the staff key it came through, and the
    处室/单位 it may act for.

        Actor("王编辑", key_id=7, department="市人社局")   # an editor of one department, through key 7
        Actor("王编辑")                                     # the command line: no key, every department

    `department=None` acts on every department's entries (admins, keys not tied to one, the command line)."""

    name: str
    key_id: int | None = None
    department: str | None = None

    def may_act_on(self, department: str | None) -> bool:
        return self.department is None or self.department == department


@dataclass
class Citation:
    rank: int
    kind: str  # "document" | "faq"
    doc_id: str | None
    title: str
    source_titles: list[str]
    doc_number: str | None
    publisher: str | None
    published_date: str | None
    validity: Validity
    section: str
    quote: str
    url: str
    score: float
    anchor: str | None = None
    faq_id: str | None = None
    highlight: str | None = None  # a suggestion's sentence closest to the question (the channels mark it)


class AnswerStatus(str, enum.Enum):
    """What the ranking supports (issue 21): a grounded answer, articles that may help, or nothing relevant."""

    ANSWER = "answer"  # the judge is confident the first article answers: quote it
    SUGGEST = "suggest"  # not confident, but relevant rules exist: up to 3 articles, best first (参考条款)
    NONE = "none"  # nothing relevant: the refusal and the hotline


@dataclass
class Answer:
    query_id: str
    answered: bool
    answer: str
    confidence: float
    channel: str
    faq_id: str | None
    citations: list[Citation]
    related_questions: list[str] = field(default_factory=list)
    script: HotlineScript | None = None  # hotline channel only
    understood_question: str | None = None  # a follow-up completed from the conversation (您是问：…), issue 10
    choices: list[str] = field(default_factory=list)  # clarifying choices instead of a guess (您想了解的是：1. … 2. …)
    blocked: str | None = None  # content safety refused it: the blocked-word category (abuse, political, fraud …)
    status: AnswerStatus = AnswerStatus.ANSWER  # `answered` means status is ANSWER
    suggestions: list[Citation] = field(default_factory=list)  # status SUGGEST: up to 3 articles, with `highlight`
    related: list[Citation] = field(default_factory=list)  # other candidates, not sources of the answer (unnumbered)


@dataclass(frozen=True)
class HotlineScript:
    """What a 12345 operator reads out, in order. `notice` when the cited rule is not in force; `suggestion` (how to
    hand the call on) on a refusal."""

    opening: str
    answer: str
    key_points: list[str]
    sources: list[str]
    related_questions: list[str]
    closing: str
    notice: str | None = None
    suggestion: str | None = None

    def to_json(self) -> dict:
        """The HTTP contract's `script` object: `notice` and `suggestion` only when present."""
        out = {
            "opening": self.opening,
            "answer": self.answer,
            "key_points": list(self.key_points),
            "sources": list(self.sources),
            "related_questions": list(self.related_questions),
        }
        if self.suggestion is not None:
            out["suggestion"] = self.suggestion
        out["closing"] = self.closing
        if self.notice is not None:
            out["notice"] = self.notice
        return out
