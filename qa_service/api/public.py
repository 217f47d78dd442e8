"""Public routes (no account): ask, search, documents, health. Thin: validate, call one engine function,
shape the fixed JSON contract (issue 3). Only 主动公开 documents and published FAQ entries are served.

    POST /v1/ask {"question": "失业保险金能领多久？", "channel": "hotline"}  → answer, citations, script, session_id
    POST /v1/ask {"question": "那满10年呢？", "session_id": "<the session_id answered before>"}  → a follow-up
    GET  /v1/search?q=失业保险金&k=5                                       → {"results": [citation…]}

Content safety (issue 11) screens /v1/ask and /v1/search alike: a blocked question gets the fixed reply with
`"blocked": {"category", "label"}` (ask, logged with its category) or no results and the same `blocked` object
(search, which operators use for 精确查找: nothing is retrieved for a blocked text, and search is not logged).
    GET  /v1/documents?title=放假办法  ·  GET /v1/documents/{doc_id}  ·  GET /healthz

Bad input gets 422 with a message in Chinese and English; an empty knowledge base 503 (app-level handler).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictBool, field_validator

from knowledge_base.models import MAX_QUESTION_CHARS, Answer, ChannelName, StoredDocument
from knowledge_base.safety import CATEGORIES
from knowledge_base.settings import Settings
from knowledge_base.store import KnowledgeBaseError

from ..channels import blocked_text
from ..compose import display_date, document_url
from ..engine import DocumentCatalog, QuestionError
from .deps import EngineDep, KbDep, MetricsDep, SessionsDep, SettingsDep
from .errors import errors_for
from .schemas import (PUBLIC_ERRORS, CitationOut, HealthOut, PassageOut, SuggestionOut, citation_json, passage_json,
                      suggestion_json)
from .validation import ApiRequest

router = APIRouter(tags=["public"], responses=PUBLIC_ERRORS)


# ---------------------------------------------------------------------- request / response models
class AskFilters(ApiRequest):
    publisher: str | None = Field(None, max_length=200, description="发布机构 (substring), e.g. 济南市司法局")
    region: str | None = Field(None, max_length=50, description="地区, e.g. 济南 / 淄博 / 台州 / 山东")
    include_superseded: StrictBool | None = Field(False, description="also cite superseded versions (历史版本)")


class HistoryTurn(ApiRequest):
    """One earlier turn a stateless client sends back (issue 10)."""

    question: str = Field(..., min_length=1, max_length=MAX_QUESTION_CHARS)
    answer: str = Field("", max_length=4000)


class AskRequest(ApiRequest):
    question: str = Field(..., min_length=1, description=f"the citizen's question, 1–{MAX_QUESTION_CHARS} characters")
    channel: str = Field("web", description="web | hotline | newmedia")
    top_k: int = Field(5, description="citations wanted, 1–20")
    filters: AskFilters | None = None
    session_id: str | None = Field(None, max_length=100, description="the `session_id` of an earlier answer: follow-ups are completed from that conversation's last turns (an id the server did not issue, or one silent for POLICYQA_SESSION_MAX_AGE, starts a new conversation)")
    history: list[HistoryTurn] | None = Field(
        None, max_length=10, description="a stateless client's earlier turns [{question, answer}], oldest first (at most 10)"
    )

    @field_validator("question")
    @classmethod
    def _question(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("问题不能为空 / the question must not be empty")
        if len(v.strip()) > MAX_QUESTION_CHARS:
            raise ValueError(f"问题不能超过{MAX_QUESTION_CHARS}个字 / the question must be at most {MAX_QUESTION_CHARS} characters")
        return v.strip()

    @field_validator("channel")
    @classmethod
    def _channel(cls, v: str) -> str:
        return ChannelName.parse(v).value

    @field_validator("top_k")
    @classmethod
    def _top_k(cls, v: int) -> int:
        if not 1 <= v <= 20:
            raise ValueError("top_k 须在1到20之间 / top_k must be between 1 and 20")
        return v


class AskResponse(BaseModel):
    query_id: str
    session_id: str = Field(..., description="this conversation's id, issued by the server: send it with the next question")
    answered: bool
    answer: str
    confidence: float
    channel: str
    faq_id: str | None
    status: Literal["answer", "suggest", "none"] = Field(
        description="answer: a grounded answer (`answered`); suggest: no confident answer, `suggestions` may help; "
                    "none: nothing relevant found")
    citations: list[CitationOut]  # what the answer quotes or layers
    suggestions: list[SuggestionOut] = []  # status suggest: up to 3 articles, best first
    related: list[PassageOut] = []  # other candidates, not sources of the answer (hotline: always the ranked ones)
    related_questions: list[str]
    script: dict[str, Any] | None = None
    understood_question: str | None = None  # a follow-up as completed from the conversation (您是问：…)
    choices: list[str] = []  # clarifying choices: ask one of these again
    blocked: dict[str, str] | None = None  # content safety refused it: {"category": "abuse", "label": "辱骂"}


class SearchResponse(BaseModel):
    results: list[CitationOut]
    blocked: dict[str, str] | None = None  # content safety: nothing was searched for this text
    message: str | None = None  # the fixed reply, when blocked


class DocumentOut(BaseModel):
    doc_id: str
    work_id: str
    title: str
    doc_number: str | None
    index_number: str | None
    publisher: str | None
    region: str | None
    topic: str | None
    doc_type: str
    written_date: str | None
    published_date: str | None
    version_date: str | None
    validity: str
    validity_text: str | None
    superseded_by: str | None
    url: str


class VersionOut(BaseModel):
    doc_id: str
    title: str
    date: str | None
    validity: str
    superseded_by: str | None
    url: str


class DocumentWithVersions(DocumentOut):
    versions: list[VersionOut]


class DocumentList(BaseModel):
    documents: list[DocumentWithVersions]


class SectionOut(BaseModel):
    path: list[str]
    section: str
    anchor: str | None
    text: str


class DocumentDetail(DocumentOut):
    revision_notes: list[str]
    text: str
    sections: list[SectionOut]
    versions: list[VersionOut]


def public_catalog(kb: KbDep) -> DocumentCatalog:
    """Public documents; 503 (app-level handler) while the knowledge base is empty."""
    if kb.state().generation == 0:
        raise KnowledgeBaseError(f"the knowledge base in {kb.directory} is empty: run `policyqa ingest` first")
    return DocumentCatalog(kb)


CatalogDep = Annotated[DocumentCatalog, Depends(public_catalog)]
DocId = Annotated[str, Path(min_length=1, max_length=40, description="a document version's id")]


# ---------------------------------------------------------------------- routes
def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": code, "message": message})


@router.post("/v1/ask", response_model=AskResponse, response_model_exclude_unset=True)
def ask(body: AskRequest, engine: EngineDep, sessions: SessionsDep, metrics: MetricsDep, response: Response):
    """Answer a citizen's question for one channel, with citations (or an honest refusal), in the conversation of
    `session_id` when the server issued it (else a new one: the response's `session_id`)."""
    timings: dict[str, float] = {}
    session_id = sessions.session_for(body.session_id)
    try:
        answer = engine.ask(
            body.question,
            channel=body.channel,
            top_k=body.top_k,
            filters=body.filters.model_dump() if body.filters else None,
            session_id=session_id,
            timings=timings,
            history=[t.model_dump() for t in body.history] if body.history else None,
        )
    except QuestionError as e:
        return _error(422, "invalid_request", str(e))
    response.headers["Server-Timing"] = server_timing(timings)
    metrics.observe_answer(answer, timings)
    return {**answer_json(answer), "session_id": session_id}


@router.get("/v1/search", response_model=SearchResponse, response_model_exclude_unset=True)
def search(
    engine: EngineDep,
    response: Response,
    q: str = Query(..., min_length=1, max_length=MAX_QUESTION_CHARS, description="what to look for"),
    k: int = Query(10, ge=1, le=50, description="results wanted"),
    publisher: str | None = Query(None, max_length=200),
    region: str | None = Query(None, max_length=50),
    include_superseded: bool = Query(False),
):
    """The operator's 精确查找: the best matching passages, no composed answer."""
    if not q.strip():
        return _error(422, "invalid_request", "查询内容不能为空 / the query must not be empty")
    timings: dict[str, float] = {}
    blocked = engine.screen.run(q)
    if blocked is not None:
        return {"results": [], "blocked": {"category": blocked.category, "label": blocked.label},
                "message": blocked_text(engine.settings)}
    try:
        results = engine.search(
            q, k=k, filters={"publisher": publisher, "region": region, "include_superseded": include_superseded},
            timings=timings,
        )
    except QuestionError as e:
        return _error(422, "invalid_request", str(e))
    response.headers["Server-Timing"] = server_timing(timings)
    return {"results": [citation_json(c) for c in results]}


@router.get("/v1/documents", response_model=DocumentList)
def list_documents(
    catalog: CatalogDep,
    settings: SettingsDep,
    title: str | None = Query(None, max_length=200, description="part of the title"),
    limit: int = Query(50, ge=1, le=200),
):
    """Public documents' metadata, each with its versions (历次修订)."""
    return {
        "documents": [
            {**document_json(settings, d, versions), "versions": [version_json(settings, v, versions) for v in versions]}
            for d, versions in catalog.find(title, limit=limit)
        ]
    }


@router.get("/v1/documents/{doc_id}", response_model=DocumentDetail, responses=errors_for(404))
def get_document(doc_id: DocId, catalog: CatalogDep, settings: SettingsDep):
    """One public document: metadata, full text with section anchors, version history."""
    found = catalog.get(doc_id)
    if found is None:
        return _error(404, "not_found", f"未找到该文件 / no public document {doc_id}")
    doc, sections, versions = found
    return {
        **document_json(settings, doc, versions),
        "revision_notes": list(doc.meta.revision_notes),
        "text": doc.text,
        "sections": [
            {"path": list(s.get("path") or []), "section": " > ".join(s.get("path") or []), "anchor": s.get("anchor"),
             "text": s.get("text", "")}
            for s in sections
        ],
        "versions": [version_json(settings, v, versions) for v in versions],
    }


@router.get("/healthz", response_model=HealthOut)
def healthz(engine: EngineDep):
    """Serving status with document, chunk and FAQ counts (503 while the knowledge base is empty)."""
    return engine.health()


# ---------------------------------------------------------------------- JSON at the edge
def answer_json(a: Answer) -> dict:
    out = {
        "query_id": a.query_id,
        "answered": a.answered,
        "answer": a.answer,
        "confidence": a.confidence,
        "channel": a.channel,
        "faq_id": a.faq_id,
        "status": getattr(a.status, "value", a.status),
        "citations": [citation_json(c) for c in a.citations],
        "suggestions": [suggestion_json(c) for c in a.suggestions],
        "related": [passage_json(c) for c in a.related],
        "related_questions": list(a.related_questions),
    }
    # Issue 10, present only when they apply (a single question's contract is unchanged):
    if a.understood_question:
        out["understood_question"] = a.understood_question  # the follow-up as completed (widget: 您是问：…)
    if a.choices:
        out["choices"] = list(a.choices)  # ask back: each is a question to send again
    if a.blocked:  # issue 11: content safety refused it (the answer is the fixed reply)
        out["blocked"] = {"category": a.blocked, "label": CATEGORIES.get(a.blocked, a.blocked)}
    if a.channel == ChannelName.HOTLINE.value:
        out["script"] = a.script.to_json() if a.script is not None else None
    return out


def public_successor(d: StoredDocument, public_versions: list[StoredDocument]) -> str | None:
    """`superseded_by` as citizens may see it: only the id of another public version (a knowledge base built before
    chains were public-only may still point at a withheld one)."""
    return d.superseded_by if any(v.doc_id == d.superseded_by for v in public_versions) else None


def document_json(settings: Settings, d: StoredDocument, public_versions: list[StoredDocument]) -> dict:
    m = d.meta
    return {
        "doc_id": d.doc_id,
        "work_id": d.work_id,
        "title": m.title,
        "doc_number": m.doc_number,
        "index_number": m.index_number,
        "publisher": m.publisher,
        "region": m.region,
        "topic": m.topic,
        "doc_type": m.doc_type.value,
        "written_date": m.written_date.isoformat() if m.written_date else None,
        "published_date": m.published_date.isoformat() if m.published_date else None,
        "version_date": m.version_date.isoformat() if m.version_date else None,
        "validity": d.validity.value,
        "validity_text": m.validity_text,
        "superseded_by": public_successor(d, public_versions),
        "url": document_url(settings, d.doc_id, None),
    }


def version_json(settings: Settings, v: StoredDocument, public_versions: list[StoredDocument]) -> dict:
    return {
        "doc_id": v.doc_id,
        "title": v.meta.title,
        "date": (v.meta.version_date and v.meta.version_date.isoformat()) or display_date(v),
        "validity": v.validity.value,
        "superseded_by": public_successor(v, public_versions),
        "url": document_url(settings, v.doc_id, None),
    }


def server_timing(timings: dict[str, float]) -> str:
    """Per-stage milliseconds in the standard Server-Timing header, for the HTTP latency benchmark."""
    return ", ".join(f"{name};dur={ms:.2f}" for name, ms in timings.items())
