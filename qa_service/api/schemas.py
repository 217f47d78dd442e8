"""What several route modules share: the error entries their OpenAPI operations list, strict query types, and the
response models and converters used by more than one module (a route module never imports another).

    router = APIRouter(responses=STAFF_ERRORS)
    def dashboard(since: IsoDate | None = Query(None, alias="from")): ...   # "2024-05-01"; "0" is a 422
    return {"citations": [citation_json(c) for c in answer.citations]}
"""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from knowledge_base.models import Citation

from ..analytics import QuestionGroup
from .errors import errors_for

# ---------------------------------------------------------------------------------------------- documented errors
# Every route may answer 422 (its parameters) with our `{"error", "message"}` body: declaring it replaces FastAPI's
# default 422 entry, whose schema (`{"detail": [...]}`) is not what the app's handler returns.
PUBLIC_ERRORS = errors_for(422, 429, 503)  # citizens' routes: rate-limited; 503 while the knowledge base is empty
STAFF_ERRORS = errors_for(401, 403, 422)  # a staff key is needed: 401 without one, 403 below the role
ENTRY_ERRORS = errors_for(401, 403, 404, 409, 422)  # staff routes naming an entry in the path
METRICS_ERRORS = errors_for(401, 404)  # POLICYQA_METRICS=staff without a key; =off


# ---------------------------------------------------------------------------------------------- strict types
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date_text(value: Any) -> Any:
    """Only YYYY-MM-DD: pydantic alone reads `?to=0` as 1970-01-01 (a Unix timestamp)."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value.strip()):
        raise ValueError(f"日期须为 YYYY-MM-DD / a date must be YYYY-MM-DD (got {value!r})")
    return value.strip()


# A required parameter takes it as `Annotated[IsoDate, Query(...)]`: FastAPI drops the check from `x: IsoDate = Query(...)`.
IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]


def iso_time(value: datetime | None) -> str | None:
    """A stored UTC time as the API shows it: `2024-05-01T08:30:00Z`."""
    return value.isoformat(timespec="seconds") + "Z" if value else None


# ---------------------------------------------------------------------------------------------- serving status
class HealthOut(BaseModel):
    status: str
    generation: int
    documents: int
    in_force: int
    chunks: int
    faqs: int
    model: str | None


# ---------------------------------------------------------------------------------------------- citations
class PassageOut(BaseModel):
    """A passage as cited: document (or FAQ entry), 文号, section, validity, link, the quoted text."""

    kind: str
    doc_id: str | None
    title: str
    source_titles: list[str]
    doc_number: str | None
    publisher: str | None
    published_date: str | None
    validity: str
    section: str
    quote: str
    url: str
    score: float


class CitationOut(PassageOut):
    rank: int


class SuggestionOut(CitationOut):
    highlight: str | None = Field(None, description="the article's sentence closest to the question (channels mark it)")


def citation_json(c: Citation) -> dict:
    """The contract's citation object: CitationOut's fields read off the domain Citation (anchor and faq_id stay
    inside)."""
    return CitationOut.model_validate(c, from_attributes=True).model_dump()


def suggestion_json(c: Citation) -> dict:
    return SuggestionOut.model_validate(c, from_attributes=True).model_dump()


def passage_json(c: Citation) -> dict:
    return PassageOut.model_validate(c, from_attributes=True).model_dump()


# ---------------------------------------------------------------------------------------------- question groups
class GroupOut(BaseModel):
    id: str
    representative: str
    count: int
    examples: list[str]
    answered_rate: float
    asked: int
    channels: dict[str, int]
    faq_ids: list[str]
    last_asked: str | None
    follow_ups: int = Field(0, description="follow-up turns in the conversations these asks opened (not asks of their own)")
    follow_up_examples: list[str] = []
    conversations: list[str] = Field([], description="session ids of those conversations: GET /v1/analytics/conversations/{id}")


class TicketGroupOut(GroupOut):
    """A group as the dashboard shows it: with its 12345 tickets and what to do about it."""

    tickets: int = Field(0, description="12345 work orders asking the same")
    suggestion: str | None = None


def group_out(g: QuestionGroup) -> GroupOut:
    return GroupOut(
        id=g.group_id,
        representative=g.representative,
        count=g.count,
        examples=g.examples,
        answered_rate=g.answered_rate,
        asked=g.asked,
        channels=g.channels,
        faq_ids=g.faq_ids,
        last_asked=iso_time(g.last_asked),
        follow_ups=g.follow_ups,
        follow_up_examples=g.follow_up_examples,
        conversations=g.conversations,
    )


def ticket_group_out(g: QuestionGroup) -> TicketGroupOut:
    return TicketGroupOut(**group_out(g).model_dump(), tickets=g.tickets, suggestion=g.suggestion)
