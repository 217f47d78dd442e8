"""Routes: staff insight — the dashboard's figures, question groups with 12345 tickets, work-order import, the
weekly report.

    GET  /v1/analytics/dashboard?days=30&from=…&to=…&channel=web|hotline|newmedia|ticket&department=…
    GET  /v1/analytics/groups?kind=top|unanswered&…  (as /v1/analytics/questions, plus tickets and the suggestion)
    GET  /v1/analytics/groups/{id}/tickets?…          the tickets of one group (masked)
    GET  /v1/analytics/conversations/{session_id}     one conversation's turns (masked), follow-ups marked
    GET  /v1/analytics/report?from=…&to=…&format=xlsx|html
    GET  /v1/workorders/mapping · POST /v1/workorders/mapping {"mapping": {field: header}}
    POST /v1/workorders/import (multipart file, optional "mapping" JSON) → 202 {"id", "state", …}: a background job
    GET  /v1/workorders/jobs/{id} → {"state": queued|running|done|failed, "stage", "done", "total",
                                    "result": {"rows", "added", "duplicates", "errors", "mapping"} | null, "error"}

Operators read; editors import and change the column mapping. Dates are YYYY-MM-DD (anything else is a 422).
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from datetime import date, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from knowledge_base.activity import Activity
from knowledge_base.query_log import QueryLogRepository
from knowledge_base.safety import CATEGORIES
from knowledge_base.store import KnowledgeBaseError
from knowledge_base.workorders import WorkOrderStore

from ..analytics import KINDS, QuestionFilter
from ..auth import ApiError, Role
from ..dashboard import CHANNEL_LABELS, CHANNELS, DashboardService
from ..import_jobs import ImportJobs
from ..report import WeeklyReport, html_text, xlsx_bytes
from ..services import Services
from ..workorders import DEFAULT_COLUMNS, FIELD_LABELS, ImportReport, WorkOrderError, WorkOrderImporter, check_sheet
from .deps import AnalyticsDep, KbDep, ServicesDep, StaffDep
from .errors import ErrorOut, errors_for
from .schemas import STAFF_ERRORS, IsoDate, TicketGroupOut, ticket_group_out

log = logging.getLogger(__name__)
router = APIRouter(responses=STAFF_ERRORS)

MAX_TICKETS_LISTED = 200
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SessionId = Annotated[str, Path(min_length=1, max_length=100, description="a conversation's session id")]


# ---------------------------------------------------------------------------------------------- response models
class BlockedCountOut(BaseModel):
    category: str
    label: str
    count: int


class DashboardOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(..., alias="from")
    to: str
    channel: str | None
    department: str | None
    channels: dict[str, str]
    departments: list[str]
    days: list[str]
    asks: dict[str, list[int]] = Field(..., description="asks per day, by channel")
    answer_rate: list[float | None]
    refusal_rate: list[float | None]
    helpful: list[int]
    unhelpful: list[int]
    totals: dict[str, int | float]
    blocked: list[BlockedCountOut]
    top: list[TicketGroupOut]
    unanswered: list[TicketGroupOut]


class GroupListOut(BaseModel):
    kind: str
    groups: list[TicketGroupOut]


class TicketOut(BaseModel):
    ticket_no: str | None
    received_at: str | None
    question: str | None
    content: str | None
    category: str | None
    department: str | None
    result: str | None


class GroupTicketsOut(BaseModel):
    group: TicketGroupOut
    tickets: list[TicketOut]
    total: int


class SourceOut(BaseModel):
    title: str
    section: str


class TurnOut(BaseModel):
    query_id: str
    at: str | None
    channel: str
    turn: int | None
    asked: str
    understood: str | None
    follow_up: bool | None
    followup_of: str | None
    answered: bool
    confidence: float
    sources: list[SourceOut]


class ConversationOut(BaseModel):
    session_id: str
    turns: list[TurnOut]


class MappingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mapping: dict[str, str]


class MappingOut(BaseModel):
    mapping: dict[str, str]


class MappingInfoOut(MappingOut):
    defaults: dict[str, list[str]] = Field(..., description="the headers each field is looked for under, in order")
    labels: dict[str, str]
    tickets: int


class RowErrorOut(BaseModel):
    row: int
    error: str


class WorkOrderImportOut(BaseModel):
    rows: int
    added: int
    duplicates: int
    errors: list[RowErrorOut]
    mapping: dict[str, str]


REPORT_FILES = {200: {"content": {XLSX: {}, "text/html": {}}, "description": "the report as a file"}}


def _filter(kind: str, days: int | None, channel: str | None, since: date | None, until: date | None,
            department: str | None, limit: int = 50) -> QuestionFilter:
    if kind not in KINDS:
        raise ApiError(422, "invalid_request", f"kind 须为 {'/'.join(KINDS)} / kind must be one of {', '.join(KINDS)}")
    if channel is not None and channel not in CHANNELS:
        raise ApiError(422, "invalid_request", f"未知渠道 / unknown channel {channel!r}: one of {', '.join(CHANNELS)}")
    if since and until and since > until:
        raise ApiError(422, "invalid_request", "开始日期晚于结束日期 / 'from' is after 'to'")
    return QuestionFilter(kind=kind, days=days, channel=channel or None, department=department or None,
                          since=since, until=until, limit=limit)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


# ---------------------------------------------------------------------------------------------- dashboard
@router.get("/v1/analytics/dashboard", tags=["analytics"], response_model=DashboardOut)
def dashboard(
    kb: KbDep,
    analytics: AnalyticsDep,
    staff: StaffDep(Role.OPERATOR),
    days: int | None = Query(30, ge=1, le=366),
    channel: str | None = Query(None, description="web | hotline | newmedia | ticket"),
    department: str | None = Query(None, max_length=200,
                                   description="承办单位 of tickets; publisher of the answering document or 主管部门 of the answering FAQ"),
    since: IsoDate | None = Query(None, alias="from", description="first day, YYYY-MM-DD"),
    until: IsoDate | None = Query(None, alias="to", description="last day, YYYY-MM-DD, inclusive"),
):
    flt = _filter("top", days, channel, since, until, department)
    try:
        board = DashboardService(kb, analytics).run(flt)
    except ValueError as e:
        raise ApiError(422, "invalid_request", str(e)) from e
    return {
        "from": board.since.isoformat(), "to": board.until.isoformat(), "channel": channel, "department": department,
        "channels": {c: CHANNEL_LABELS[c] for c in CHANNELS},
        "departments": Activity(kb).departments(),
        "days": board.days, "asks": board.asks, "answer_rate": board.answer_rate, "refusal_rate": board.refusal_rate,
        "helpful": board.helpful, "unhelpful": board.unhelpful, "totals": board.totals,
        "blocked": [{"category": c, "label": CATEGORIES.get(c, c), "count": n} for c, n in board.blocked.items()],
        "top": [ticket_group_out(g) for g in board.top], "unanswered": [ticket_group_out(g) for g in board.unanswered],
    }


@router.get("/v1/analytics/groups", tags=["analytics"], response_model=GroupListOut)
def question_groups(
    analytics: AnalyticsDep,
    staff: StaffDep(Role.OPERATOR),
    kind: str = Query("top"),
    days: int | None = Query(30, ge=1, le=3660),
    channel: str | None = Query(None),
    department: str | None = Query(None, max_length=200),
    since: IsoDate | None = Query(None, alias="from"),
    until: IsoDate | None = Query(None, alias="to"),
    limit: int = Query(50, ge=1, le=500),
):
    flt = _filter(kind, days, channel, since, until, department, limit)
    return GroupListOut(kind=kind, groups=[ticket_group_out(g) for g in analytics.run(flt)])


@router.get("/v1/analytics/groups/{group_id}/tickets", tags=["analytics"], response_model=GroupTicketsOut,
            responses=errors_for(404))
def group_tickets(
    kb: KbDep,
    analytics: AnalyticsDep,
    staff: StaffDep(Role.OPERATOR),
    group_id: Annotated[str, Path(min_length=1, max_length=80)],
    kind: str = Query("top"),
    days: int | None = Query(30, ge=1, le=3660),
    channel: str | None = Query(None),
    department: str | None = Query(None, max_length=200),
    since: IsoDate | None = Query(None, alias="from"),
    until: IsoDate | None = Query(None, alias="to"),
):
    flt = _filter(kind, days, channel, since, until, department, limit=0)
    group = analytics.find_group(group_id, flt)
    if group is None:
        raise ApiError(404, "not_found", f"未找到该问题分组（请刷新列表）/ no question group {group_id}")
    wanted = set(group.ticket_ids)
    start, end = flt.window()
    tickets = [t for t in WorkOrderStore(kb).window(start, end, flt.department, with_vectors=False) if t.id in wanted]
    return GroupTicketsOut(
        group=ticket_group_out(group),
        tickets=[TicketOut(ticket_no=t.ticket_no, received_at=_iso(t.received_at), question=t.question, content=t.content,
                           category=t.category, department=t.department, result=t.result)
                 for t in tickets[:MAX_TICKETS_LISTED]],
        total=len(tickets),
    )


# ---------------------------------------------------------------------------------------------- conversations
@router.get("/v1/analytics/conversations/{session_id}", tags=["analytics"], response_model=ConversationOut,
            responses=errors_for(404))
def conversation_turns(session_id: SessionId, kb: KbDep, staff: StaffDep(Role.OPERATOR)):
    """One conversation's turns as logged (masked): each question as typed and as understood, the answer's outcome
    and first sources, and which topic a follow-up continued."""
    if not session_id.strip():
        raise ApiError(422, "invalid_request", "会话编号须为1到100个字符 / session_id must be 1-100 characters")
    turns = QueryLogRepository(kb).conversation(session_id)
    if not turns:
        raise ApiError(404, "not_found", f"未找到该会话 / no logged conversation {session_id!r}")
    return ConversationOut(session_id=session_id, turns=[
        TurnOut(query_id=t.query_id, at=_iso(t.at), channel=t.channel, turn=t.turn, asked=t.asked or t.question,
                understood=t.question if t.follow_up else None, follow_up=t.follow_up, followup_of=t.followup_of,
                answered=t.answered, confidence=round(t.confidence, 3),
                sources=[SourceOut(title=c.title, section=c.section) for c in t.citations[:3]])
        for t in turns
    ])


# ---------------------------------------------------------------------------------------------- report
@router.get("/v1/analytics/report", tags=["analytics"], response_class=Response, responses=REPORT_FILES)
def weekly_report(
    kb: KbDep,
    staff: StaffDep(Role.OPERATOR),
    # Inside Annotated: FastAPI keeps IsoDate's check only there for a required parameter.
    since: Annotated[IsoDate, Query(alias="from", description="first day, YYYY-MM-DD")],
    until: Annotated[IsoDate, Query(alias="to", description="last day, YYYY-MM-DD, inclusive")],
    format: str = Query("xlsx", description="xlsx | html"),
):
    if format not in ("xlsx", "html"):
        raise ApiError(422, "invalid_request", "format 须为 xlsx 或 html / format must be xlsx or html")
    if since > until:
        raise ApiError(422, "invalid_request", "开始日期晚于结束日期 / 'from' is after 'to'")
    if (until - since).days > 366:
        raise ApiError(422, "invalid_request", "时间范围最多 366 天 / at most 366 days")
    data = WeeklyReport(kb).build(since, until)
    name = f"政策问答周报-{since.isoformat()}-{until.isoformat()}.{format}"
    disposition = f"attachment; filename=\"report-{since.isoformat()}.{format}\"; filename*=UTF-8''{quote(name)}"
    if format == "html":
        return Response(html_text(data), media_type="text/html; charset=utf-8", headers={"Content-Disposition": disposition})
    return Response(xlsx_bytes(data), media_type=XLSX, headers={"Content-Disposition": disposition})


# ---------------------------------------------------------------------------------------------- work orders
def _check_mapping(mapping: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(mapping) - set(DEFAULT_COLUMNS))
    if unknown:
        raise ApiError(422, "invalid_request", f"未知字段 / unknown fields: {', '.join(unknown)}")
    return {k: v.strip()[:200] for k, v in mapping.items() if v and v.strip()}


@router.get("/v1/workorders/mapping", tags=["workorders"], response_model=MappingInfoOut)
def get_mapping(kb: KbDep, staff: StaffDep(Role.OPERATOR)):
    store = WorkOrderStore(kb)
    return MappingInfoOut(
        mapping=store.mapping() or {},  # empty: each field is looked for under its default headers, in order
        defaults={f: list(c) for f, c in DEFAULT_COLUMNS.items()},
        labels=FIELD_LABELS,
        tickets=store.count(),
    )


@router.post("/v1/workorders/mapping", tags=["workorders"], response_model=MappingOut)
def save_mapping(body: MappingBody, kb: KbDep, staff: StaffDep(Role.EDITOR)):
    mapping = _check_mapping(body.mapping)
    WorkOrderStore(kb).save_mapping(mapping, staff.name)
    return MappingOut(mapping=mapping)


def _encoder(services: Services):
    """(embed, answers) from the serving engine; (None, None) when it cannot start (empty knowledge base)."""
    try:
        engine = services.engine
        return engine.embedder.embed_queries, (lambda q: engine.ask(q, channel="hotline", record=False))
    except KnowledgeBaseError:
        return None, None
    except Exception:  # an import must not fail because the encoder could not load
        log.exception("no encoder for work orders; tickets are stored without vectors")
        return None, None


class ImportJobOut(BaseModel):
    id: str
    state: str = Field(..., description="queued | running | done | failed")
    stage: str = Field(..., description="queued | running | reading | checking | embedding | answering | saving | done | failed")
    done: int = Field(..., description="rows of the stage done")
    total: int = Field(..., description="rows of the stage in all (0 while reading: not known yet)")
    filename: str
    started_by: str | None
    created_at: str
    finished_at: str | None
    result: WorkOrderImportOut | None = Field(None, description="once done")
    error: ErrorOut | None = Field(None, description="once failed")


_jobs_lock = threading.Lock()  # the upload runs on the event loop, a poll in the thread pool: one ImportJobs each


def _jobs(services: Services) -> ImportJobs:
    with _jobs_lock:
        if getattr(services, "import_jobs", None) is None:
            services.import_jobs = ImportJobs()
        return services.import_jobs


def report_out(report: ImportReport) -> dict:
    return {
        "rows": report.rows, "added": report.added, "duplicates": report.duplicates,
        "errors": [{"row": e.row, "error": e.error} for e in report.errors], "mapping": report.mapping,
    }


def _chosen_mapping(mapping: str | None) -> dict[str, str] | None:
    if not mapping:
        return None
    try:
        parsed = json.loads(mapping)
    except ValueError as e:
        raise ApiError(422, "invalid_request", f"列映射不是有效的 JSON / mapping is not valid JSON: {e}") from e
    if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
        raise ApiError(422, "invalid_request", "列映射须为 {字段: 表头} / mapping must be an object of strings")
    return _check_mapping(parsed)


@router.post("/v1/workorders/import", tags=["workorders"], status_code=202, response_model=ImportJobOut,
             responses=errors_for(413, 422))
async def import_workorders(
    services: ServicesDep,
    staff: StaffDep(Role.EDITOR),
    file: UploadFile = File(..., description="the 12345 system's export (.csv or .xlsx)"),
    mapping: str | None = Form(None, description='JSON {"content": "来电内容", …}; omitted: the remembered mapping'),
):
    """Checks the file (type, size, a workbook's inflated size and row count) and starts the import as a job: 202
    with the job, whose progress and result GET /v1/workorders/jobs/{id} gives."""
    limit_mb = services.settings.max_upload_mb
    data = await file.read(int(limit_mb * 1024 * 1024) + 1)
    if len(data) > limit_mb * 1024 * 1024:
        raise ApiError(413, "too_large", f"文件超过{limit_mb:g}MB / the file is larger than {limit_mb:g} MB")
    chosen = _chosen_mapping(mapping)
    filename = file.filename or "upload.csv"
    try:
        await asyncio.to_thread(check_sheet, data, filename)
    except WorkOrderError as e:
        raise ApiError(e.status, e.code, str(e)) from e

    def run(progress) -> dict:
        embed, answers = _encoder(services)
        importer = WorkOrderImporter(services.kb, embed=embed, answers=answers)
        return report_out(importer.run(data, filename, mapping=chosen, actor=staff.name, progress=progress))

    job = _jobs(services).submit(run, started_by=staff.name, filename=filename[:400])
    return JSONResponse(job.snapshot(), status_code=202, headers={"Location": f"/v1/workorders/jobs/{job.id}"})


@router.get("/v1/workorders/jobs/{job_id}", tags=["workorders"], response_model=ImportJobOut, responses=errors_for(404))
def import_job(services: ServicesDep, staff: StaffDep(Role.EDITOR), job_id: str = Path(..., max_length=100)):
    """An import's state, stage and rows done of total; its result (or error) once it has finished."""
    job = _jobs(services).get(job_id)
    if job is None:
        raise ApiError(404, "not_found", f"未找到该导入任务（服务重启后任务不再保留）/ no import job {job_id!r}")
    return job.snapshot()
