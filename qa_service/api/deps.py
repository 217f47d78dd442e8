"""FastAPI dependencies, typed with `Annotated`: what a route needs, declared in its signature.

    @router.post("/v1/ask")
    def ask(body: AskRequest, engine: EngineDep) -> AskResponse: ...

    @router.post("/v1/faqs/{faq_id}/publish")
    def publish(faq_id: FaqId, curation: CurationDep, staff: StaffDep(Role.REVIEWER)) -> FaqOut: ...

The services are built once in the application's lifespan (qa_service/app.py) and read from `app.state`.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request

from knowledge_base.faqs import FaqService
from knowledge_base.safety import ContentScreen
from knowledge_base.sessions import SessionIssuer
from knowledge_base.settings import Settings
from knowledge_base.store import KnowledgeBase

from ..analytics import FeedbackService, QuestionAnalytics
from ..auth import KeyService, Role, StaffIdentity, current_staff, require_role
from ..curation import CurationService
from ..engine import QAEngine
from ..metrics import ServiceMetrics
from ..services import Services

# Path parameters are bounded where they are declared: a 20-digit key id is a 422, never a database error.
MAX_ROW_ID = 2**63 - 1


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_engine(services: ServicesDep) -> QAEngine:
    return services.engine


def get_settings(services: ServicesDep) -> Settings:
    return services.settings


def get_kb(services: ServicesDep) -> KnowledgeBase:
    return services.kb


def get_faqs(services: ServicesDep) -> FaqService:
    return services.faqs


def get_curation(services: ServicesDep) -> CurationService:
    return services.curation


def get_analytics(services: ServicesDep) -> QuestionAnalytics:
    return services.analytics


def get_feedback(services: ServicesDep) -> FeedbackService:
    return services.feedback


def get_keys(services: ServicesDep) -> KeyService:
    return services.keys


def get_sessions(services: ServicesDep) -> SessionIssuer:
    return services.sessions


def get_screen(services: ServicesDep) -> ContentScreen:
    return services.screen


def get_metrics(request: Request) -> ServiceMetrics:
    return request.app.state.metrics


EngineDep = Annotated[QAEngine, Depends(get_engine)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
KbDep = Annotated[KnowledgeBase, Depends(get_kb)]
FaqServiceDep = Annotated[FaqService, Depends(get_faqs)]
CurationDep = Annotated[CurationService, Depends(get_curation)]
AnalyticsDep = Annotated[QuestionAnalytics, Depends(get_analytics)]
FeedbackDep = Annotated[FeedbackService, Depends(get_feedback)]
KeysDep = Annotated[KeyService, Depends(get_keys)]
SessionsDep = Annotated[SessionIssuer, Depends(get_sessions)]
ScreenDep = Annotated[ContentScreen, Depends(get_screen)]
CurrentStaff = Annotated[StaffIdentity, Depends(current_staff)]

FaqId = Annotated[str, Path(min_length=1, max_length=80, description="编号, e.g. FAQ-004")]
KeyId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="the key's id (GET /v1/keys)")]


def StaffDep(role: Role) -> Any:  # noqa: N802 - reads as a type in a signature: `staff: StaffDep(Role.EDITOR)`
    """The caller's identity when their key has `role` or a higher one: 401 without a valid key, 403 below it."""
    return Annotated[StaffIdentity, Depends(require_role(role))]
