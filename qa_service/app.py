"""The FastAPI application: a thin web layer over the answering engine and the curation services.

    app = create_app(kb=KnowledgeBase.open(Path("kb")))
    uvicorn.run(app, port=8000)

Routes live in qa_service/api/: public.py (ask, search, documents, health), curation.py (FAQ
lifecycle, analytics, feedback, keys), pages.py (widget, document viewer, console), staff_pages.py
(FAQ curation, analytics and content-safety pages), safety.py (the blocked-word list). Public routes are rate-limited per client address (qa_service/auth.py).
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager, suppress
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from knowledge_base.query_log import QueryLogRepository
from knowledge_base.settings import Settings, get_settings
from knowledge_base.store import KnowledgeBase, KnowledgeBaseError

from .api import chat, curation, insight, ops, pages, public, safety, staff_pages
from .api.errors import http_exception
from .auth import RateLimitMiddleware, StaffIdentity
from .limits import BodyLimitMiddleware
from .metrics import ObservabilityMiddleware, ServiceMetrics
from .services import Services

log = logging.getLogger(__name__)
RETENTION_CHECK_SECONDS = 3600.0


async def enforce_retention(kb: KnowledgeBase, days: int, every: float = RETENTION_CHECK_SECONDS) -> None:
    """Delete query-log rows older than `days` now and then every `every` seconds (个人信息保护法: no longer than
    needed). Runs beside the server; a failure is logged and retried next time."""
    repository = QueryLogRepository(kb)
    while True:
        try:
            deleted = await asyncio.to_thread(repository.delete_older_than, days)
            if deleted:
                log.info("retention: deleted %d logged questions older than %d days", deleted, days)
        except Exception:
            log.exception("retention: could not prune the query log")
        await asyncio.sleep(every)


# over 60 lines: the app's wiring in order: state, middleware, routers, handlers
def create_app(kb: KnowledgeBase | None = None, settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    kb = kb or KnowledgeBase.open()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = app.state.services = Services.build(kb=kb, settings=settings)
        metrics.track_serving(lambda: engine.health() if (engine := services.engine_if_loaded()) else None)
        retention = (asyncio.create_task(enforce_retention(kb, settings.log_retention_days))
                     if settings.log_retention_days > 0 else None)
        yield
        if retention is not None:
            retention.cancel()
            with suppress(asyncio.CancelledError):
                await retention

    # /docs and /redoc load Swagger UI and ReDoc from the fastapi-offline package, not from a CDN: an intranet
    # reaches no CDN, and the pages would be blank there.
    app = FastAPIOffline(
        static_url="/docs-assets",
        title="policyqa",
        description="一库多平台: citizens' policy questions answered from one curated knowledge base, with cited sources.",
        version="0.1.0",
        lifespan=lifespan,
    )

    metrics = app.state.metrics = ServiceMetrics()

    def verify_key(token: str) -> StaffIdentity | None:
        return app.state.services.keys.verify(token)

    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    # Added first, so inside the rate limit and CORS: a 413 counts like any request and carries the CORS headers the
    # widget needs. Imports take a spreadsheet (plus the multipart framing); a chat request may carry its longest
    # valid history, \u-escaped (6 bytes a character).
    body = settings.max_body_kb * 1024
    upload = int(settings.max_upload_mb * 1024 * 1024) + body
    longest_chat = chat.MAX_MESSAGES * chat.MAX_MESSAGE_CHARS * 6 + body
    app.add_middleware(BodyLimitMiddleware, default_bytes=body, limits={
        "/v1/workorders/import": upload, "/v1/faqs/import": upload, "/v1/chat/completions": max(body, longest_chat),
    })
    # Added before CORS, so CORS is outermost and a 429 still carries the CORS headers the widget needs.
    app.add_middleware(RateLimitMiddleware, per_minute=settings.rate_limit_per_minute, verify_key=verify_key,
                       trusted_proxies=settings.trusted_proxy_networks())
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "PATCH", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization"],
    )
    # Outermost: counts and logs every request, including 429s and CORS preflights.
    app.add_middleware(ObservabilityMiddleware, metrics=metrics, log_questions=settings.access_log_questions)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}" for e in exc.errors()
        )
        return JSONResponse(
            status_code=422,
            content={"error": "invalid_request", "message": f"请求格式有误 / invalid request: {problems}"},
        )

    @app.exception_handler(KnowledgeBaseError)
    async def _kb_unavailable(request: Request, exc: KnowledgeBaseError) -> JSONResponse:
        return JSONResponse(
            status_code=503,
            content={"error": "knowledge_base_unavailable", "message": f"知识库暂不可用 / knowledge base unavailable: {exc}"},
        )

    app.add_exception_handler(StarletteHTTPException, http_exception)
    curation.register_error_handlers(app)
    safety.register_error_handlers(app)
    app.include_router(public.router)
    app.include_router(ops.router)
    app.include_router(chat.router)  # issue 10: OpenAI-compatible chat
    app.include_router(curation.router)
    app.include_router(pages.router)
    app.include_router(staff_pages.router)
    app.include_router(insight.router)
    app.include_router(safety.router)  # issue 11: the blocked-word list
    return app
