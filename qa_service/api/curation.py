"""Routes: staff curation (FAQ lifecycle, import/export, analytics, API keys) and citizens' feedback.

    POST /v1/faqs/import (multipart file)      → {"imported", "updated", "unchanged", "errors": [{"row", "error"}]}
    GET  /v1/faqs?status=draft&q=公积金          GET/PATCH /v1/faqs/{id}     POST /v1/faqs (new draft)
    POST /v1/faqs/{id}/submit · /review {"confidentiality_checked": true} · /publish · /retire · /reopen
    GET  /v1/faqs/export (XLSX)                 GET /v1/faqs/{id}/audit
    GET  /v1/analytics/questions?kind=top|unanswered|unhelpful&days=N&channel=…&from=YYYY-MM-DD&to=…
    POST /v1/analytics/groups/{id}/promote      → a new FAQ draft from a question group
    POST /v1/feedback {"query_id", "helpful", "comment"?}   (public, rate-limited)
    GET  /v1/me · POST /v1/keys · GET /v1/keys · POST /v1/keys/{id}/revoke

Who may do what (roles are hierarchical, see qa_service/auth.py): operator reads FAQ entries and
analytics; editor imports, creates, edits, submits and promotes; reviewer reviews (保密审查), publishes and
retires; admin manages keys. The FAQ service itself refuses an author reviewing or publishing their own entry.
"""
from __future__ import annotations

import logging
from datetime import date, datetime
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from knowledge_base.faqs import FaqError, FaqRecord, FaqService
from knowledge_base.models import FaqEntry, FaqStatus
from knowledge_base.store import KnowledgeBaseError

from ..analytics import KINDS, FeedbackError, FeedbackService, QuestionAnalytics, QuestionFilter, QuestionGroup
from ..auth import ApiError, KeyService, Role, StaffIdentity, current_staff, parse_role, require_role

log = logging.getLogger(__name__)
router = APIRouter()

MAX_SHEET_BYTES = 5 * 1024 * 1024
CHANNELS = ("web", "hotline", "newmedia")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# ---------------------------------------------------------------------------------------------- error handling
def register_error_handlers(app) -> None:
    """Every curation error is `{"error": code, "message": "中文 / English"}` with its status."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.code, "message": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(FaqError)
    async def _faq_error(request: Request, exc: FaqError) -> JSONResponse:
        code = {403: "forbidden", 404: "not_found", 409: "conflict", 422: "invalid_request"}.get(exc.status, "faq_error")
        return JSONResponse({"error": code, "message": str(exc)}, status_code=exc.status)

    @app.exception_handler(FeedbackError)
    async def _feedback_error(request: Request, exc: FeedbackError) -> JSONResponse:
        code = {404: "not_found", 422: "invalid_request"}.get(exc.status, "feedback_error")
        return JSONResponse({"error": code, "message": str(exc)}, status_code=exc.status)


# ---------------------------------------------------------------------------------------------- services
def _services(request: Request):
    return request.app.state.services


def faq_service(request: Request) -> FaqService:
    return _services(request).faqs


def _cached(request: Request, name: str, factory):
    services = _services(request)
    value = getattr(services, name, None)
    if value is None:
        value = factory(services.kb)
        setattr(services, name, value)
    return value


def analytics_service(request: Request) -> QuestionAnalytics:
    return _cached(request, "analytics", QuestionAnalytics)


def feedback_service(request: Request) -> FeedbackService:
    return _cached(request, "feedback", FeedbackService)


def key_service(request: Request) -> KeyService:
    return _cached(request, "keys", KeyService)


def _faq_embedder(request: Request):
    """The serving encoder's `embed_queries`, so a published entry's vectors are stored once; None when the
    engine cannot start (empty knowledge base): the entry is then embedded when a server loads it."""
    try:
        return _services(request).engine.embedder.embed_queries
    except KnowledgeBaseError:
        return None
    except Exception:  # publishing must not fail because the encoder could not load
        log.exception("no encoder for FAQ vectors; the server will embed the entry when it reloads")
        return None


# ---------------------------------------------------------------------------------------------- models
class FaqOut(BaseModel):
    faq_id: str
    question: str
    answer: str
    variants: list[str]
    source_titles: list[str]
    source_articles: list[str]
    topic: str | None
    publisher: str | None
    short_answer: str | None
    status: str
    author: str | None
    reviewer: str | None
    confidentiality_checked_by: str | None
    confidentiality_checked_at: str | None
    created_at: str | None = None
    updated_at: str | None = None


def faq_out(entry: FaqEntry, record: FaqRecord | None = None) -> dict:
    """FaqOut's fields read off the entry, plus the record's timestamps."""
    out = FaqOut.model_validate(entry, from_attributes=True)
    if record:
        out.created_at, out.updated_at = _iso(record.created_at), _iso(record.updated_at)
    return out.model_dump()


class FaqContent(BaseModel):
    """Editable content; in PATCH only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    question: str | None = Field(None, description="问题")
    answer: str | None = Field(None, description="答案")
    variants: list[str] | None = Field(None, description="相似问法")
    source_titles: list[str] | None = Field(None, description="来源文件")
    source_articles: list[str] | None = Field(None, description="条款")
    topic: str | None = Field(None, description="主题")
    publisher: str | None = Field(None, description="发布机构")
    short_answer: str | None = Field(None, description="新媒体简短答复")


class FaqCreate(FaqContent):
    faq_id: str | None = Field(None, description="编号; omitted: the next FAQ-NNN")
    question: str = Field(..., description="问题")


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confidentiality_checked: StrictBool = Field(False, description="保密审查已完成 (required to approve)")
    approve: StrictBool = Field(True, description="false sends the entry back to draft")
    comment: str | None = Field(None, max_length=1000)


class PublishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confidentiality_checked: StrictBool = Field(False, description="review with the 保密审查 first, if not yet reviewed")


class PromoteRequest(BaseModel):
    """The listing the group id came from, so the same group is found; all optional."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    kind: str = "top"
    days: int | None = Field(30, ge=1, le=3660)
    channel: str | None = None
    since: date | None = Field(None, alias="from")
    until: date | None = Field(None, alias="to")
    faq_id: str | None = Field(None, description="编号 for the new draft; omitted: the next FAQ-NNN")


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query_id: str = Field(..., min_length=1, max_length=40)
    helpful: StrictBool
    comment: str | None = Field(None, max_length=1000)


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=200, description="the person or system the key is for (recorded as actor)")
    role: str = Field(..., description="operator | editor | reviewer | admin")


# ---------------------------------------------------------------------------------------------- FAQ entries
@router.post("/v1/faqs/import", tags=["curation"])
async def import_faqs(
    request: Request,
    file: UploadFile = File(..., description="FAQ sheet (.csv or .xlsx) in the layout of sample_faq.csv"),
    staff: StaffIdentity = Depends(require_role(Role.EDITOR)),
):
    from ingest.faq_sheet import read_faq_sheet

    data = await file.read(MAX_SHEET_BYTES + 1)
    if len(data) > MAX_SHEET_BYTES:
        raise ApiError(413, "too_large", f"文件超过{MAX_SHEET_BYTES // 1024 // 1024}MB / the file is larger than {MAX_SHEET_BYTES // 1024 // 1024} MB")
    sheet = read_faq_sheet(data, file.filename or "upload.csv")
    errors = [{"row": e.row, "error": e.error} for e in sheet.errors]
    if not sheet.entries and any(e.row <= 1 for e in sheet.errors):
        # The file itself (not a row) is unusable: unreadable, wrong type, or required columns missing.
        return JSONResponse(
            {"error": "invalid_sheet", "message": f"无法读取表格 / cannot read the sheet: {errors[0]['error']}",
             "imported": 0, "updated": 0, "unchanged": 0, "errors": errors},
            status_code=422,
        )
    result = faq_service(request).import_entries(sheet.entries, actor=staff.name)
    # Rows the sheet reader accepted but the FAQ service rejected (e.g. over-long text): named by 编号.
    errors += [{"row": 0, "error": f"编号 {faq_id}: {reason}"} for faq_id, reason in result.errors]
    return {"imported": result.imported, "updated": result.updated, "unchanged": result.unchanged, "errors": errors}


@router.get("/v1/faqs/export", tags=["curation"])
def export_faqs(
    request: Request,
    status: FaqStatus | None = Query(None, description="only entries of this status"),
    staff: StaffIdentity = Depends(require_role(Role.OPERATOR)),
):
    from ingest.faq_sheet import write_faq_xlsx

    entries = [r.entry for r in faq_service(request).records(status)]
    name = f"faq-{status.value if status else 'all'}-{date.today().isoformat()}.xlsx"
    return Response(
        write_faq_xlsx(entries),
        media_type=XLSX,
        headers={"Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"},
    )


@router.get("/v1/faqs", tags=["curation"])
def list_faqs(
    request: Request,
    status: FaqStatus | None = Query(None, description="draft | in_review | published | retired"),
    q: str | None = Query(None, max_length=100, description="text in 编号, 问题 or 主题"),
    staff: StaffIdentity = Depends(require_role(Role.OPERATOR)),
):
    records = faq_service(request).records(status, q)
    return {"faqs": [faq_out(r.entry, r) for r in records], "total": len(records)}


@router.post("/v1/faqs", status_code=201, tags=["curation"])
def create_faq(request: Request, body: FaqCreate, staff: StaffIdentity = Depends(require_role(Role.EDITOR))):
    svc = faq_service(request)
    content = body.model_dump(exclude={"faq_id"})
    entry = FaqEntry(faq_id=body.faq_id or svc.next_id(), **{k: (v if v is not None else _empty(k)) for k, v in content.items()})
    created = svc.create(entry, actor=staff.name)
    return faq_out(created, svc.record(created.faq_id))


@router.get("/v1/faqs/{faq_id}", tags=["curation"])
def get_faq(request: Request, faq_id: str, staff: StaffIdentity = Depends(require_role(Role.OPERATOR))):
    record = faq_service(request).record(faq_id)
    if record is None:
        raise ApiError(404, "not_found", f"未找到该条目 / no FAQ entry {faq_id}")
    return faq_out(record.entry, record)


@router.get("/v1/faqs/{faq_id}/audit", tags=["curation"])
def faq_audit(request: Request, faq_id: str, staff: StaffIdentity = Depends(require_role(Role.OPERATOR))):
    svc = faq_service(request)
    if svc.get(faq_id) is None:
        raise ApiError(404, "not_found", f"未找到该条目 / no FAQ entry {faq_id}")
    return {"faq_id": faq_id, "audit": svc.audit(faq_id)}


@router.patch("/v1/faqs/{faq_id}", tags=["curation"])
def edit_faq(request: Request, faq_id: str, body: FaqContent, staff: StaffIdentity = Depends(require_role(Role.EDITOR))):
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise ApiError(422, "invalid_request", "没有要修改的字段 / nothing to change")
    svc = faq_service(request)
    entry = svc.update(faq_id, changes, actor=staff.name)
    return faq_out(entry, svc.record(faq_id))


@router.post("/v1/faqs/{faq_id}/submit", tags=["curation"])
def submit_faq(request: Request, faq_id: str, staff: StaffIdentity = Depends(require_role(Role.EDITOR))):
    svc = faq_service(request)
    return faq_out(svc.submit(faq_id, actor=staff.name), svc.record(faq_id))


@router.post("/v1/faqs/{faq_id}/review", tags=["curation"])
def review_faq(
    request: Request, faq_id: str, body: ReviewRequest, staff: StaffIdentity = Depends(require_role(Role.REVIEWER))
):
    svc = faq_service(request)
    entry = svc.review(faq_id, actor=staff.name, confidentiality_checked=body.confidentiality_checked,
                       approve=body.approve, comment=body.comment)
    return faq_out(entry, svc.record(faq_id))


@router.post("/v1/faqs/{faq_id}/publish", tags=["curation"])
def publish_faq(
    request: Request,
    faq_id: str,
    body: PublishRequest | None = None,
    staff: StaffIdentity = Depends(require_role(Role.REVIEWER)),
):
    """Publish a reviewed entry. With `{"confidentiality_checked": true}` an entry not yet reviewed is reviewed
    (保密审查 recorded as this reviewer) and published in one step; both are audited."""
    svc = faq_service(request)
    current = svc.get(faq_id)
    if current is None:
        raise ApiError(404, "not_found", f"未找到该条目 / no FAQ entry {faq_id}")
    reviewed = current.status == FaqStatus.IN_REVIEW and current.confidentiality_checked_at
    if not reviewed and body is not None and body.confidentiality_checked and current.status in (FaqStatus.DRAFT, FaqStatus.IN_REVIEW):
        current = svc.review(faq_id, actor=staff.name, confidentiality_checked=True)
    # Check the rules before loading the encoder, so a refused publish is answered at once.
    embed = _faq_embedder(request) if current.status == FaqStatus.IN_REVIEW and current.author != staff.name else None
    return faq_out(svc.publish(faq_id, actor=staff.name, embed=embed), svc.record(faq_id))


@router.post("/v1/faqs/{faq_id}/retire", tags=["curation"])
def retire_faq(request: Request, faq_id: str, staff: StaffIdentity = Depends(require_role(Role.REVIEWER))):
    svc = faq_service(request)
    return faq_out(svc.retire(faq_id, actor=staff.name), svc.record(faq_id))


@router.post("/v1/faqs/{faq_id}/reopen", tags=["curation"])
def reopen_faq(request: Request, faq_id: str, staff: StaffIdentity = Depends(require_role(Role.EDITOR))):
    svc = faq_service(request)
    return faq_out(svc.reopen(faq_id, actor=staff.name), svc.record(faq_id))


# ---------------------------------------------------------------------------------------------- analytics
def group_out(g: QuestionGroup) -> dict:
    return {
        "id": g.group_id,
        "representative": g.representative,
        "count": g.count,
        "examples": g.examples,
        "answered_rate": g.answered_rate,
        "asked": g.asked,
        "channels": g.channels,
        "faq_ids": g.faq_ids,
        "last_asked": _iso(g.last_asked),
    }


def _filter(kind: str, days: int | None, channel: str | None, since: date | None, until: date | None, limit: int = 50) -> QuestionFilter:
    if kind not in KINDS:
        raise ApiError(422, "invalid_request", f"kind 须为 {'/'.join(KINDS)} / kind must be one of {', '.join(KINDS)}")
    if channel is not None and channel not in CHANNELS:
        raise ApiError(422, "invalid_request", f"未知渠道 / unknown channel {channel!r}: one of {', '.join(CHANNELS)}")
    if since and until and since > until:
        raise ApiError(422, "invalid_request", "开始日期晚于结束日期 / 'from' is after 'to'")
    return QuestionFilter(kind=kind, days=days, channel=channel, since=since, until=until, limit=limit)


@router.get("/v1/analytics/questions", tags=["analytics"])
def question_analytics(
    request: Request,
    kind: str = Query("top", description="top | unanswered | unhelpful"),
    days: int | None = Query(30, ge=1, le=3660, description="the last N days (ignored when `from` is given)"),
    channel: str | None = Query(None, description="web | hotline | newmedia"),
    since: date | None = Query(None, alias="from", description="first day, YYYY-MM-DD (China Standard Time)"),
    until: date | None = Query(None, alias="to", description="last day, inclusive"),
    limit: int = Query(50, ge=1, le=500),
    staff: StaffIdentity = Depends(require_role(Role.OPERATOR)),
):
    flt = _filter(kind, days, channel, since, until, limit)
    groups = analytics_service(request).run(flt)
    return {
        "kind": kind,
        "days": None if since else days,
        "channel": channel,
        "from": since.isoformat() if since else None,
        "to": until.isoformat() if until else None,
        "groups": [group_out(g) for g in groups],
    }


@router.post("/v1/analytics/groups/{group_id}/promote", status_code=201, tags=["analytics"])
def promote_group(
    request: Request,
    group_id: str,
    body: PromoteRequest | None = None,
    staff: StaffIdentity = Depends(require_role(Role.EDITOR)),
):
    body = body or PromoteRequest()
    flt = _filter(body.kind, body.days, body.channel, body.since, body.until, limit=0)
    analytics = analytics_service(request)
    group = analytics.find_group(group_id, flt)
    if group is None:
        raise ApiError(404, "not_found", f"未找到该问题分组（请刷新列表）/ no question group {group_id}; list the groups again")
    svc = faq_service(request)
    existing = svc.with_question(group.representative)
    if existing:
        raise ApiError(
            409, "conflict",
            f"已有相同问题的条目 {existing[0].faq_id}（{existing[0].status.value}）/ entry {existing[0].faq_id} already asks this question",
        )
    draft = analytics.draft_from_group(group, faq_id=body.faq_id or svc.next_id(), faq_lookup=svc.get)
    created = svc.create(draft, actor=staff.name, action="promote", note=f"由问题分组 {group.group_id} 生成（{group.count} 次提问）")
    return {"faq": faq_out(created, svc.record(created.faq_id)), "group": group_out(group)}


# ---------------------------------------------------------------------------------------------- feedback (public)
@router.post("/v1/feedback", status_code=201, tags=["public"])
def feedback(request: Request, body: FeedbackRequest):
    feedback_service(request).record(body.query_id, body.helpful, body.comment)
    return {"query_id": body.query_id, "helpful": body.helpful, "recorded": True}


# ---------------------------------------------------------------------------------------------- identity and keys
@router.get("/v1/me", tags=["auth"])
def me(staff: StaffIdentity = Depends(current_staff)):
    return {"name": staff.name, "role": staff.role.value, "role_label": staff.role.label, "key_id": staff.key_id}


@router.post("/v1/keys", status_code=201, tags=["auth"])
def create_key(request: Request, body: KeyCreate, staff: StaffIdentity = Depends(require_role(Role.ADMIN))):
    new = key_service(request).create(body.name, parse_role(body.role))
    return {**_key_out(new.info), "key": new.token}


@router.get("/v1/keys", tags=["auth"])
def list_keys(request: Request, staff: StaffIdentity = Depends(require_role(Role.ADMIN))):
    return {"keys": [_key_out(k) for k in key_service(request).list()]}


@router.post("/v1/keys/{key_id}/revoke", tags=["auth"])
def revoke_key(request: Request, key_id: int, staff: StaffIdentity = Depends(require_role(Role.ADMIN))):
    return _key_out(key_service(request).revoke(key_id))


def _key_out(info) -> dict:
    return {"id": info.key_id, "name": info.name, "role": info.role.value, "created_at": _iso(info.created_at), "revoked": info.revoked}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None


def _empty(field: str):
    return [] if field in ("variants", "source_titles", "source_articles") else ("" if field in ("question", "answer") else None)
