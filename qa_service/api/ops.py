"""Routes for operators and orchestrators: metrics, liveness, readiness.

    GET /metrics   Prometheus text format (qa_service/metrics.py)
    GET /livez     200 while the process serves HTTP at all
    GET /readyz    200 with the serving counts once the knowledge base is loaded; 503 (and loading starts) before
    GET /healthz   (public.py) loads the knowledge base on first call; 503 while it is empty
"""
from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from .deps import ServicesDep
from .errors import errors_for

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response, include_in_schema=False)
def metrics(request: Request) -> Response:
    body, content_type = request.app.state.metrics.exposition()
    return Response(body, media_type=content_type)


@router.get("/livez")
def livez() -> dict:
    return {"status": "alive"}


@router.get("/readyz", responses=errors_for(503))
def readyz(services: ServicesDep):
    engine = services.engine_if_loaded()
    if engine is None:
        services.warm_up()
        return JSONResponse({"error": "not_ready", "message": "知识库正在加载或为空 / the knowledge base is loading or empty"},
                            status_code=503)
    return engine.health()
