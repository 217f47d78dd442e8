"""Routes for operators and orchestrators: metrics, liveness, readiness.

    GET /metrics   Prometheus text format (qa_service/metrics.py); POLICYQA_METRICS: staff (a staff key, default), public, off
    GET /livez     200 while the process serves HTTP at all
    GET /readyz    200 with the serving counts once the knowledge base is loaded; 503 (and loading starts) before
    GET /healthz   (public.py) loads the knowledge base on first call; 503 while it is empty
"""
from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ..auth import ApiError, current_staff
from .deps import MetricsDep, ServicesDep, SettingsDep
from .errors import errors_for
from .schemas import HealthOut, METRICS_ERRORS

router = APIRouter(tags=["operations"])


def metrics_allowed(request: Request, settings: SettingsDep) -> None:
    """/metrics tells traffic, refusal rates and index sizes: by default only to a staff key (a Prometheus scraper's
    `authorization` credentials), not to whoever reaches the citizens' server. One setting rather than a second
    listening address, so a single `policyqa serve` behind one proxy stays the whole deployment."""
    if settings.metrics == "off":
        raise ApiError(404, "not_found", "未找到 / not found")
    if settings.metrics == "staff":
        current_staff(request)  # 401 without a valid key


@router.get("/metrics", response_class=Response, include_in_schema=False, responses=METRICS_ERRORS,
            dependencies=[Depends(metrics_allowed)])
def metrics(metrics: MetricsDep) -> Response:
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


class LiveOut(BaseModel):
    status: str = "alive"


@router.get("/livez", response_model=LiveOut)
def livez():
    return LiveOut()


@router.get("/readyz", response_model=HealthOut, responses=errors_for(503))
def readyz(services: ServicesDep):
    engine = services.engine_if_loaded()
    if engine is None:
        services.warm_up()
        return JSONResponse({"error": "not_ready", "message": "知识库正在加载或为空 / the knowledge base is loading or empty"},
                            status_code=503)
    return engine.health()
