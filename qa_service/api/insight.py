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

Operators read; editors import and change the column mapping.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
from datetime import date, datetime
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict

from knowledge_base.query_log import QueryLogRepository
from knowledge_base.safety import CATEGORIES
from knowledge_base.store import KnowledgeBaseError
from knowledge_base.workorders import WorkOrderStore

from ..analytics import KINDS, QuestionAnalytics, QuestionFilter, QuestionGroup
from ..auth import ApiError, Role, StaffIdentity, require_role
from ..dashboard import CHANNEL_LABELS, CHANNELS, DashboardService
from ..import_jobs import ImportJobs
from ..report import WeeklyReport, html_text, xlsx_bytes
from ..workorders import DEFAULT_COLUMNS, FIELD_LABELS, ImportReport, WorkOrderError, WorkOrderImporter, check_sheet
from .curation import group_out as chat_group_out

log = logging.getLogger(__name__)
router = APIRouter()

MAX_TICKETS_LISTED = 200
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _services(request: Request):
    return request.app.state.services


def _analytics(request: Request) -> QuestionAnalytics:
    services = _services(request)
    if getattr(services, "analytics", None) is None:
        services.analytics = QuestionAnalytics(services.kb)
    return services.analytics


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


def group_out(g: QuestionGroup) -> dict:
    """/v1/analytics/questions' group, plus its tickets and the suggestion."""
    return {**chat_group_out(g).model_dump(), "tickets": g.tickets, "suggestion": g.suggestion}


# ---------------------------------------------------------------------------------------------- dashboard
@router.get("/v1/analytics/dashboard", tags=["analytics"])
def dashboard(
    request: Request,
    days: int | None = Query(30, ge=1, le=366),
    channel: str | None = Query(None, description="web | hotline | newmedia | ticket"),
    department: str | None = Query(None, max_length=200,
                                   description="承办单位 of tickets; publisher of the answering document or 主管部门 of the answering FAQ"),
    since: date | None = Query(None, alias="from"),
    until: date | None = Query(None, alias="to"),
    staff: StaffIdentity = Depends(require_role(Role.OPERATOR)),
):
    flt = _filter("top", days, channel, since, until, department)
    try:
        board = DashboardService(_services(request).kb, _analytics(request)).run(flt)
    except ValueError as e:
        raise ApiError(422, "invalid_request", str(e)) from e
    return {
        "from": board.since.isoformat(), "to": board.until.isoformat(), "channel": channel, "department": department,
        "channels": {c: CHANNEL_LABELS[c] for c in CHANNELS},
        "departments": _departments(request),
        "days": board.days, "asks": board.asks, "answer_rate": board.answer_rate, "refusal_rate": board.refusal_rate,
        "helpful": board.helpful, "unhelpful": board.unhelpful, "totals": board.totals,
        "blocked": [{"category": c, "label": CATEGORIES.get(c, c), "count": n} for c, n in board.blocked.items()],
        "top": [group_out(g) for g in board.top], "unanswered": [group_out(g) for g in board.unanswered],
    }


def _departments(request: Request) -> list[str]:
    from knowledge_base.activity import Activity

    return Activity(_services(request).kb).departments()


@router.get("/v1/analytics/groups", tags=["analytics"])
def question_groups(
    request: Request,
    kind: str = Query("top"),
    days: int | None = Query(30, ge=1, le=3660),
    channel: str | None = Query(None),
    department: str | None = Query(None, max_length=200),
    since: date | None = Query(None, alias="from"),
    until: date | None = Query(None, alias="to"),
    limit: int = Query(50, ge=1, le=500),
    staff: StaffIdentity = Depends(require_role(Role.OPERATOR)),
):
    flt = _filter(kind, days, channel, since, until, department, limit)
    return {"kind": kind, "groups": [group_out(g) for g in _analytics(request).run(flt)]}


@router.get("/v1/analytics/groups/{group_id}/tickets", tags=["analytics"])
def group_tickets(
    request: Request,
    group_id: str,
    kind: str = Query("top"),
    days: int | None = Query(30, ge=1, le=3660),
    channel: str | None = Query(None),
    department: str | None = Query(None, max_length=200),
    since: date | None = Query(None, alias="from"),
    until: date | None = Query(None, alias="to"),
    staff: StaffIdentity = Depends(require_role(Role.OPERATOR)),
):
    flt = _filter(kind, days, channel, since, until, department, limit=0)
    group = _analytics(request).find_group(group_id, flt)
    if group is None:
        raise ApiError(404, "not_found", f"未找到该问题分组（请刷新列表）/ no question group {group_id}")
    wanted = set(group.ticket_ids)
    start, end = flt.window()
    tickets = [t for t in WorkOrderStore(_services(request).kb).window(start, end, flt.department, with_vectors=False) if t.id in wanted]
    return {
        "group": group_out(group),
        "tickets": [
            {"ticket_no": t.ticket_no, "received_at": _iso(t.received_at), "question": t.question, "content": t.content,
             "category": t.category, "department": t.department, "result": t.result}
            for t in tickets[:MAX_TICKETS_LISTED]
        ],
        "total": len(tickets),
    }


# ---------------------------------------------------------------------------------------------- conversations
@router.get("/v1/analytics/conversations/{session_id}", tags=["analytics"])
def conversation_turns(request: Request, session_id: str, staff: StaffIdentity = Depends(require_role(Role.OPERATOR))):
    """One conversation's turns as logged (masked): each question as typed and as understood, the answer's outcome
    and first sources, and which topic a follow-up continued."""
    if not session_id.strip() or len(session_id) > 100:
        raise ApiError(422, "invalid_request", "会话编号须为1到100个字符 / session_id must be 1-100 characters")
    turns = QueryLogRepository(_services(request).kb).conversation(session_id)
    if not turns:
        raise ApiError(404, "not_found", f"未找到该会话 / no logged conversation {session_id!r}")
    return {
        "session_id": session_id,
        "turns": [
            {"query_id": t.query_id, "at": _iso(t.at), "channel": t.channel, "turn": t.turn,
             "asked": t.asked or t.question, "understood": t.question if t.follow_up else None,
             "follow_up": t.follow_up, "followup_of": t.followup_of, "answered": t.answered,
             "confidence": round(t.confidence, 3),
             "sources": [{"title": c.title, "section": c.section} for c in t.citations[:3]]}
            for t in turns
        ],
    }


# ---------------------------------------------------------------------------------------------- report
@router.get("/v1/analytics/report", tags=["analytics"])
def weekly_report(
    request: Request,
    since: date = Query(..., alias="from"),
    until: date = Query(..., alias="to"),
    format: str = Query("xlsx", description="xlsx | html"),
    staff: StaffIdentity = Depends(require_role(Role.OPERATOR)),
):
    if format not in ("xlsx", "html"):
        raise ApiError(422, "invalid_request", "format 须为 xlsx 或 html / format must be xlsx or html")
    if since > until:
        raise ApiError(422, "invalid_request", "开始日期晚于结束日期 / 'from' is after 'to'")
    if (until - since).days > 366:
        raise ApiError(422, "invalid_request", "时间范围最多 366 天 / at most 366 days")
    data = WeeklyReport(_services(request).kb).build(since, until)
    name = f"政策问答周报-{since.isoformat()}-{until.isoformat()}.{format}"
    disposition = f"attachment; filename=\"report-{since.isoformat()}.{format}\"; filename*=UTF-8''{quote(name)}"
    if format == "html":
        return Response(html_text(data), media_type="text/html; charset=utf-8", headers={"Content-Disposition": disposition})
    return Response(xlsx_bytes(data), media_type=XLSX, headers={"Content-Disposition": disposition})


# ---------------------------------------------------------------------------------------------- work orders
class MappingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mapping: dict[str, str]


def _check_mapping(mapping: dict[str, str]) -> dict[str, str]:
    unknown = sorted(set(mapping) - set(DEFAULT_COLUMNS))
    if unknown:
        raise ApiError(422, "invalid_request", f"未知字段 / unknown fields: {', '.join(unknown)}")
    return {k: v.strip()[:200] for k, v in mapping.items() if v and v.strip()}


@router.get("/v1/workorders/mapping", tags=["workorders"])
def get_mapping(request: Request, staff: StaffIdentity = Depends(require_role(Role.OPERATOR))):
    store = WorkOrderStore(_services(request).kb)
    return {
        "mapping": store.mapping() or {},  # empty: each field is looked for under its default headers, in order
        "defaults": {f: list(c) for f, c in DEFAULT_COLUMNS.items()},
        "labels": FIELD_LABELS,
        "tickets": store.count(),
    }


@router.post("/v1/workorders/mapping", tags=["workorders"])
def save_mapping(request: Request, body: MappingBody, staff: StaffIdentity = Depends(require_role(Role.EDITOR))):
    mapping = _check_mapping(body.mapping)
    WorkOrderStore(_services(request).kb).save_mapping(mapping, staff.name)
    return {"mapping": mapping}


def _encoder(services):
    """(embed, answers) from the serving engine; (None, None) when it cannot start (empty knowledge base)."""
    try:
        engine = services.engine
        return engine.embedder.embed_queries, (lambda q: engine.ask(q, channel="hotline", record=False))
    except KnowledgeBaseError:
        return None, None
    except Exception:  # an import must not fail because the encoder could not load
        log.exception("no encoder for work orders; tickets are stored without vectors")
        return None, None


_jobs_lock = threading.Lock()  # the upload runs on the event loop, a poll in the thread pool: one ImportJobs per app


def _jobs(request: Request) -> ImportJobs:
    with _jobs_lock:
        if getattr(request.app.state, "import_jobs", None) is None:
            request.app.state.import_jobs = ImportJobs()
        return request.app.state.import_jobs


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


@router.post("/v1/workorders/import", tags=["workorders"], status_code=202)
async def import_workorders(
    request: Request,
    file: UploadFile = File(..., description="the 12345 system's export (.csv or .xlsx)"),
    mapping: str | None = Form(None, description='JSON {"content": "来电内容", …}; omitted: the remembered mapping'),
    staff: StaffIdentity = Depends(require_role(Role.EDITOR)),
):
    """Checks the file (type, size, a workbook's inflated size and row count) and starts the import as a job: 202
    with the job, whose progress and result GET /v1/workorders/jobs/{id} gives."""
    services = _services(request)
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

    job = _jobs(request).submit(run, started_by=staff.name, filename=filename[:400])
    return JSONResponse(job.snapshot(), status_code=202, headers={"Location": f"/v1/workorders/jobs/{job.id}"})


@router.get("/v1/workorders/jobs/{job_id}", tags=["workorders"])
def import_job(request: Request, job_id: str, staff: StaffIdentity = Depends(require_role(Role.EDITOR))):
    """An import's state, stage and rows done of total; its result (or error) once it has finished."""
    job = _jobs(request).get(job_id)
    if job is None:
        raise ApiError(404, "not_found", f"未找到该导入任务（服务重启后任务不再保留）/ no import job {job_id!r}")
    return job.snapshot()
