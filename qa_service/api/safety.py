"""Routes: content safety's blocked-word list, for administrators (the page is /staff/safety).

    GET    /v1/safety/terms                    → {"terms": [...], "categories": [{"id", "label"}]}
    POST   /v1/safety/terms {"pattern": "办假证", "is_regex": false, "category": "fraud", "note": "…"}   → 201
    PATCH  /v1/safety/terms/{id} {…the same fields…}        DELETE /v1/safety/terms/{id}
    GET    /v1/safety/audit                    → every change: who, when, before, after
    POST   /v1/safety/check {"text": "…"}      → whether the current list blocks this text, and by which term

A pattern that does not compile, matches the empty text or an ordinary question, an unknown category, or a word
already on the list is a 4xx with `{"error", "message"}`; every change is audited and is screened with at once by
this server, and by every other one within POLICYQA_RELOAD_INTERVAL.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictBool

from knowledge_base.safety import CATEGORIES, BlockedTerm, BlocklistService, ContentScreen, SafetyError, TermInput

from ..auth import Role
from .deps import MAX_ROW_ID, ScreenDep, StaffDep
from .errors import errors_for
from .schemas import STAFF_ERRORS, iso_time
from .validation import ApiRequest

router = APIRouter(tags=["safety"], responses=STAFF_ERRORS)
TermId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the word's id (GET /v1/safety/terms)")]


def register_error_handlers(app) -> None:
    @app.exception_handler(SafetyError)
    async def _safety_error(request: Request, exc: SafetyError) -> JSONResponse:
        code = {404: "not_found", 409: "conflict", 422: "invalid_request"}.get(exc.status, "safety_error")
        return JSONResponse({"error": code, "message": str(exc)}, status_code=exc.status)


class TermBody(ApiRequest):
    pattern: str = Field(..., min_length=1, max_length=200, description="a word, or a regular expression with is_regex")
    is_regex: StrictBool = Field(False, description="the pattern is a regular expression (regex module syntax)")
    category: str = Field(..., description=" | ".join(f"{k} ({v})" for k, v in CATEGORIES.items()))
    note: str | None = Field(None, max_length=500)

    def term(self) -> TermInput:
        return TermInput(self.pattern, self.is_regex, self.category, self.note)


class CheckBody(ApiRequest):
    text: str = Field(..., min_length=1, max_length=5000)


class TermOut(BaseModel):
    id: int
    pattern: str
    is_regex: bool
    category: str
    label: str
    note: str | None
    created_by: str | None
    created_at: str | None
    updated_at: str | None


class CategoryOut(BaseModel):
    id: str
    label: str


class TermListOut(BaseModel):
    terms: list[TermOut]
    categories: list[CategoryOut]


class AuditEntryOut(BaseModel):
    id: int
    term_id: int | None
    actor: str
    actor_key_id: int | None = Field(None, description="the key that made the change (names may repeat)")
    action: str
    at: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class AuditListOut(BaseModel):
    audit: list[AuditEntryOut]


class CheckOut(BaseModel):
    blocked: bool
    category: str | None = None
    label: str | None = None
    term_id: int | None = None
    pattern: str | None = None


def term_out(t: BlockedTerm) -> TermOut:
    return TermOut(id=t.term_id, pattern=t.pattern, is_regex=t.is_regex, category=t.category, label=t.label, note=t.note,
                   created_by=t.created_by, created_at=iso_time(t.created_at), updated_at=iso_time(t.updated_at))


def _service(screen: ContentScreen) -> BlocklistService:
    return screen.service


@router.get("/v1/safety/terms", response_model=TermListOut)
def list_terms(screen: ScreenDep, staff: StaffDep(Role.ADMIN)):
    return TermListOut(terms=[term_out(t) for t in _service(screen).list()],
                       categories=[CategoryOut(id=k, label=v) for k, v in CATEGORIES.items()])


@router.post("/v1/safety/terms", status_code=201, response_model=TermOut, responses=errors_for(409))
def add_term(body: TermBody, screen: ScreenDep, staff: StaffDep(Role.ADMIN)):
    term = _service(screen).add(body.term(), staff.actor)
    screen.refresh()
    return term_out(term)


@router.patch("/v1/safety/terms/{term_id}", response_model=TermOut, responses=errors_for(404, 409))
def edit_term(term_id: TermId, body: TermBody, screen: ScreenDep, staff: StaffDep(Role.ADMIN)):
    term = _service(screen).update(term_id, body.term(), staff.actor)
    screen.refresh()
    return term_out(term)


@router.delete("/v1/safety/terms/{term_id}", response_model=TermOut, responses=errors_for(404))
def delete_term(term_id: TermId, screen: ScreenDep, staff: StaffDep(Role.ADMIN)):
    term = _service(screen).delete(term_id, staff.actor)
    screen.refresh()
    return term_out(term)


@router.get("/v1/safety/audit", response_model=AuditListOut)
def safety_audit(screen: ScreenDep, staff: StaffDep(Role.ADMIN)):
    return AuditListOut(audit=[{**a, "at": iso_time(a["at"])} for a in _service(screen).audit()])


@router.post("/v1/safety/check", response_model=CheckOut)
def check_text(body: CheckBody, screen: ScreenDep, staff: StaffDep(Role.ADMIN)):
    """Whether the current list blocks a text (try a word before adding it, or see why a question was refused)."""
    found = screen.run(body.text)
    if found is None:
        return CheckOut(blocked=False)
    return CheckOut(blocked=True, category=found.category, label=found.label, term_id=found.term_id, pattern=found.pattern)

