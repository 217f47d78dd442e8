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

from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, File, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from knowledge_base.faqs import FaqError, FaqRecord
from knowledge_base.models import ChannelName, FaqEntry, FaqStatus

from ..analytics import FeedbackError, QuestionFilter
from ..auth import ApiError, ApiKeyInfo, Role, parse_role
from ..curation import SheetImport
from .errors import errors_for
from .deps import AnalyticsDep, CurationDep, CurrentStaff, FaqId, FeedbackDep, KeyId, KeysDep, StaffDep
from .schemas import ENTRY_ERRORS, STAFF_ERRORS, GroupOut, IsoDate, group_out, iso_time
from .validation import ApiRequest

router = APIRouter(responses=errors_for(422))

MAX_SHEET_BYTES = 5 * 1024 * 1024
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
    department: str | None = None
    status: str
    author: str | None
    author_key_id: int | None = None  # the key that wrote it: the four-eyes rule compares keys
    reviewer: str | None
    reviewer_key_id: int | None = None  # the key that reviewed it: two keys may carry one name
    confidentiality_checked_by: str | None
    confidentiality_checked_at: str | None
    created_at: str | None = None
    updated_at: str | None = None


def faq_out(entry: FaqEntry, record: FaqRecord | None = None) -> FaqOut:
    """FaqOut's fields read off the entry, plus the record's timestamps."""
    out = FaqOut.model_validate(entry, from_attributes=True)
    if record:
        out.created_at, out.updated_at = iso_time(record.created_at), iso_time(record.updated_at)
    return out


def record_out(record: FaqRecord) -> FaqOut:
    return faq_out(record.entry, record)


class FaqListOut(BaseModel):
    faqs: list[FaqOut]
    total: int


class AuditEntryOut(BaseModel):
    actor: str = Field(..., description="the name of the key (or CLI user) that made the change")
    actor_key_id: int | None = Field(None, description="the key that made it (None on the command line): names may repeat")
    action: str
    at: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditOut(BaseModel):
    faq_id: str
    audit: list[AuditEntryOut]


class SheetRowErrorOut(BaseModel):
    row: int
    error: str


class ContentWarningOut(BaseModel):
    faq_id: str
    category: str
    label: str
    pattern: str


class ImportOut(BaseModel):
    imported: int
    updated: int
    unchanged: int
    errors: list[SheetRowErrorOut]
    warnings: list[ContentWarningOut] = Field(default_factory=list,
                                              description="entries imported whose text contains a blocked word")


def import_out(result: SheetImport) -> ImportOut:
    return ImportOut(imported=result.imported, updated=result.updated, unchanged=result.unchanged,
                     errors=[SheetRowErrorOut(row=e.row, error=e.error) for e in result.errors],
                     warnings=[ContentWarningOut(faq_id=w.where, category=w.category, label=w.label, pattern=w.pattern)
                               for w in result.warnings])


class FaqContent(ApiRequest):
    """Editable content; in PATCH only the fields sent are changed."""

    question: str | None = Field(None, description="问题")
    answer: str | None = Field(None, description="答案")
    variants: list[str] | None = Field(None, description="相似问法")
    source_titles: list[str] | None = Field(None, description="来源文件")
    source_articles: list[str] | None = Field(None, description="条款")
    topic: str | None = Field(None, description="主题")
    publisher: str | None = Field(None, description="发布机构")
    short_answer: str | None = Field(None, description="新媒体简短答复")
    department: str | None = Field(None, max_length=200, description="主管部门 (处室/单位); omitted on a new entry: the key's")


class FaqCreate(FaqContent):
    faq_id: str | None = Field(None, description="编号; omitted: the next FAQ-NNN")
    question: str = Field(..., description="问题")


class ReviewRequest(ApiRequest):
    confidentiality_checked: StrictBool = Field(False, description="保密审查已完成 (required to approve)")
    approve: StrictBool = Field(True, description="false sends the entry back to draft")
    comment: str | None = Field(None, max_length=1000)


class PublishRequest(ApiRequest):
    confidentiality_checked: StrictBool = Field(False, description="review with the 保密审查 first, if not yet reviewed")


AnalyticsKind = Literal["top", "unanswered", "unhelpful"]


class PromoteRequest(ApiRequest):
    """The listing the group id came from, so the same group is found; all optional."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    kind: AnalyticsKind = "top"
    days: int | None = Field(30, ge=1, le=3660)
    channel: ChannelName | None = None
    since: IsoDate | None = Field(None, alias="from")
    until: IsoDate | None = Field(None, alias="to")
    department: str | None = Field(None, max_length=200)
    faq_id: str | None = Field(None, max_length=80, description="编号 for the new draft; omitted: the next FAQ-NNN")

    @model_validator(mode="after")
    def _window(self) -> "PromoteRequest":
        _check_window(self.since, self.until)
        return self

    def question_filter(self) -> QuestionFilter:
        return _question_filter(self.kind, self.days, self.channel, self.since, self.until, limit=0,
                                department=self.department)


class FeedbackRequest(ApiRequest):
    query_id: str = Field(..., min_length=1, max_length=40)
    helpful: StrictBool
    comment: str | None = Field(None, max_length=1000)


class KeyCreate(ApiRequest):
    name: str = Field(..., min_length=1, max_length=200, description="the person or system the key is for (recorded as actor)")
    role: str = Field(..., description="operator | editor | reviewer | admin")
    department: str | None = Field(None, max_length=200, description="处室/单位 the key acts for; omitted: every department")




class AnalyticsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    kind: str
    days: int | None
    channel: str | None
    from_: str | None = Field(None, alias="from")
    to: str | None
    groups: list[GroupOut]


class PromoteOut(BaseModel):
    faq: FaqOut
    group: GroupOut


class FeedbackOut(BaseModel):
    query_id: str
    helpful: bool
    recorded: bool


class MeOut(BaseModel):
    name: str
    role: str
    role_label: str
    key_id: int
    department: str | None = None


class KeyOut(BaseModel):
    id: int
    name: str
    role: str
    created_at: str | None
    revoked: bool
    department: str | None = None


class NewKeyOut(KeyOut):
    key: str = Field(..., description="the key itself, shown only in this response")


class KeyListOut(BaseModel):
    keys: list[KeyOut]


# ---------------------------------------------------------------------------------------------- FAQ entries
@router.post("/v1/faqs/import", tags=["curation"], response_model=ImportOut, responses={**STAFF_ERRORS, **errors_for(413)})
async def import_faqs(
    curation: CurationDep,
    staff: StaffDep(Role.EDITOR),
    file: UploadFile = File(..., description="FAQ sheet (.csv or .xlsx) in the layout of sample_faq.csv"),
):
    data = await file.read(MAX_SHEET_BYTES + 1)
    if len(data) > MAX_SHEET_BYTES:
        raise ApiError(413, "too_large", f"文件超过{MAX_SHEET_BYTES // 1024 // 1024}MB / the file is larger than {MAX_SHEET_BYTES // 1024 // 1024} MB")
    result = curation.import_sheet(data, file.filename or "upload.csv", actor=staff.actor)
    if result.unreadable:
        out = import_out(result)
        return JSONResponse(
            {"error": "invalid_sheet", "message": f"无法读取表格 / cannot read the sheet: {out.errors[0].error}",
             **out.model_dump()},
            status_code=422,
        )
    return import_out(result)


@router.get("/v1/faqs/export", tags=["curation"], response_class=Response, responses=STAFF_ERRORS)
def export_faqs(
    curation: CurationDep,
    staff: StaffDep(Role.OPERATOR),
    status: FaqStatus | None = Query(None, description="only entries of this status"),
):
    name = f"faq-{status.value if status else 'all'}-{date.today().isoformat()}.xlsx"
    return Response(
        curation.export_xlsx(status),
        media_type=XLSX,
        headers={"Content-Disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(name)}"},
    )


@router.get("/v1/faqs", tags=["curation"], response_model=FaqListOut, responses=STAFF_ERRORS)
def list_faqs(
    curation: CurationDep,
    staff: StaffDep(Role.OPERATOR),
    status: FaqStatus | None = Query(None, description="draft | in_review | published | retired"),
    q: str | None = Query(None, max_length=100, description="text in 编号, 问题 or 主题"),
    department: str | None = Query(None, max_length=200, description="only this 主管部门's entries"),
):
    records = curation.records(status, q, department)
    return FaqListOut(faqs=[record_out(r) for r in records], total=len(records))


@router.post("/v1/faqs", status_code=201, tags=["curation"], response_model=FaqOut, responses=errors_for(401, 403, 409))
def create_faq(body: FaqCreate, curation: CurationDep, staff: StaffDep(Role.EDITOR)):
    return record_out(curation.create(body.model_dump(exclude={"faq_id"}), body.faq_id, actor=staff.actor))


@router.get("/v1/faqs/{faq_id}", tags=["curation"], response_model=FaqOut, responses=ENTRY_ERRORS)
def get_faq(faq_id: FaqId, curation: CurationDep, staff: StaffDep(Role.OPERATOR)):
    return record_out(curation.record(faq_id))


@router.get("/v1/faqs/{faq_id}/audit", tags=["curation"], response_model=AuditOut, responses=ENTRY_ERRORS)
def faq_audit(faq_id: FaqId, curation: CurationDep, staff: StaffDep(Role.OPERATOR)):
    return AuditOut(faq_id=faq_id, audit=curation.audit(faq_id))


@router.patch("/v1/faqs/{faq_id}", tags=["curation"], response_model=FaqOut, responses=ENTRY_ERRORS)
def edit_faq(faq_id: FaqId, body: FaqContent, curation: CurationDep, staff: StaffDep(Role.EDITOR)):
    return record_out(curation.update(faq_id, body.model_dump(exclude_unset=True), actor=staff.actor))


@router.post("/v1/faqs/{faq_id}/submit", tags=["curation"], response_model=FaqOut, responses=ENTRY_ERRORS)
def submit_faq(faq_id: FaqId, curation: CurationDep, staff: StaffDep(Role.EDITOR)):
    return record_out(curation.submit(faq_id, actor=staff.actor))


@router.post("/v1/faqs/{faq_id}/review", tags=["curation"], response_model=FaqOut, responses=ENTRY_ERRORS)
def review_faq(faq_id: FaqId, body: ReviewRequest, curation: CurationDep, staff: StaffDep(Role.REVIEWER)):
    return record_out(curation.review(faq_id, actor=staff.actor, confidentiality_checked=body.confidentiality_checked,
                                      approve=body.approve, comment=body.comment))


@router.post("/v1/faqs/{faq_id}/publish", tags=["curation"], response_model=FaqOut, responses=ENTRY_ERRORS)
def publish_faq(faq_id: FaqId, curation: CurationDep, staff: StaffDep(Role.REVIEWER), body: PublishRequest | None = None):
    """Publish a reviewed entry. With `{"confidentiality_checked": true}` an entry not yet reviewed is reviewed
    (保密审查 recorded as this reviewer) and published in one step; both are audited."""
    checked = body is not None and body.confidentiality_checked
    return record_out(curation.publish(faq_id, actor=staff.actor, confidentiality_checked=checked))


@router.post("/v1/faqs/{faq_id}/retire", tags=["curation"], response_model=FaqOut, responses=ENTRY_ERRORS)
def retire_faq(faq_id: FaqId, curation: CurationDep, staff: StaffDep(Role.REVIEWER)):
    return record_out(curation.retire(faq_id, actor=staff.actor))


@router.post("/v1/faqs/{faq_id}/reopen", tags=["curation"], response_model=FaqOut, responses=ENTRY_ERRORS)
def reopen_faq(faq_id: FaqId, curation: CurationDep, staff: StaffDep(Role.EDITOR)):
    return record_out(curation.reopen(faq_id, actor=staff.actor))


# ---------------------------------------------------------------------------------------------- analytics
def _check_window(since: date | None, until: date | None) -> None:
    if since and until and since > until:
        raise ApiError(422, "invalid_request", "开始日期晚于结束日期 / 'from' is after 'to'")


def _question_filter(kind: str, days: int | None, channel: ChannelName | None, since: date | None, until: date | None,
                     limit: int, department: str | None = None) -> QuestionFilter:
    return QuestionFilter(kind=kind, days=days, channel=channel.value if channel else None, since=since, until=until,
                          limit=limit, department=department or None)


@router.get("/v1/analytics/questions", tags=["analytics"], response_model=AnalyticsOut, response_model_by_alias=True, responses=STAFF_ERRORS)
def question_analytics(
    analytics: AnalyticsDep,
    staff: StaffDep(Role.OPERATOR),
    kind: AnalyticsKind = Query("top", description="top | unanswered | unhelpful"),
    days: int | None = Query(30, ge=1, le=3660, description="the last N days (ignored when `from` is given)"),
    channel: ChannelName | None = Query(None, description="web | hotline | newmedia"),
    since: IsoDate | None = Query(None, alias="from", description="first day, YYYY-MM-DD (China Standard Time)"),
    until: IsoDate | None = Query(None, alias="to", description="last day, inclusive"),
    department: str | None = Query(None, max_length=200, description="answered from this department's documents or FAQ entries"),
    limit: int = Query(50, ge=1, le=500),
):
    _check_window(since, until)
    groups = analytics.run(_question_filter(kind, days, channel, since, until, limit, department))
    return AnalyticsOut(
        kind=kind,
        days=None if since else days,
        channel=channel.value if channel else None,
        from_=since.isoformat() if since else None,
        to=until.isoformat() if until else None,
        groups=[group_out(g) for g in groups],
    )


@router.post("/v1/analytics/groups/{group_id}/promote", status_code=201, tags=["analytics"], response_model=PromoteOut, responses=ENTRY_ERRORS)
def promote_group(
    group_id: Annotated[str, Path(min_length=1, max_length=80)],
    curation: CurationDep,
    staff: StaffDep(Role.EDITOR),
    body: PromoteRequest | None = None,
):
    body = body or PromoteRequest()
    promoted = curation.promote(group_id, body.question_filter(), actor=staff.actor, faq_id=body.faq_id)
    return PromoteOut(faq=record_out(promoted.record), group=group_out(promoted.group))


# ---------------------------------------------------------------------------------------------- feedback (public)
@router.post("/v1/feedback", status_code=201, tags=["public"], response_model=FeedbackOut, responses=errors_for(404, 429))
def feedback(body: FeedbackRequest, service: FeedbackDep):
    service.record(body.query_id, body.helpful, body.comment)
    return FeedbackOut(query_id=body.query_id, helpful=body.helpful, recorded=True)


# ---------------------------------------------------------------------------------------------- identity and keys
@router.get("/v1/me", tags=["auth"], response_model=MeOut, responses=STAFF_ERRORS)
def me(staff: CurrentStaff):
    return MeOut(name=staff.name, role=staff.role.value, role_label=staff.role.label, key_id=staff.key_id,
                 department=staff.department)


@router.post("/v1/keys", status_code=201, tags=["auth"], response_model=NewKeyOut, responses={**STAFF_ERRORS, **errors_for(409)})
def create_key(body: KeyCreate, keys: KeysDep, staff: StaffDep(Role.ADMIN)):
    new = keys.create(body.name, parse_role(body.role), body.department)
    return NewKeyOut(**_key_out(new.info).model_dump(), key=new.token)


@router.get("/v1/keys", tags=["auth"], response_model=KeyListOut, responses=STAFF_ERRORS)
def list_keys(keys: KeysDep, staff: StaffDep(Role.ADMIN)):
    return KeyListOut(keys=[_key_out(k) for k in keys.list()])


@router.post("/v1/keys/{key_id}/revoke", tags=["auth"], response_model=KeyOut, responses=ENTRY_ERRORS)
def revoke_key(key_id: KeyId, keys: KeysDep, staff: StaffDep(Role.ADMIN)):
    return _key_out(keys.revoke(key_id))


def _key_out(info: ApiKeyInfo) -> KeyOut:
    return KeyOut(id=info.key_id, name=info.name, role=info.role.value, created_at=iso_time(info.created_at), revoked=info.revoked,
                  department=info.department)

