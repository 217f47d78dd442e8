"""The FastAPI application: a thin web layer over the answering engine and the curation services.

    app = create_app(kb=KnowledgeBase.open(Path("kb")))
    uvicorn.run(app, port=8000)

Routes live in qa_service/api/: public.py (ask, search, documents, health), curation.py (FAQ
lifecycle, analytics, feedback, keys), pages.py (widget, document viewer, console), staff_pages.py
(FAQ curation and analytics pages). Public routes are rate-limited per client address (qa_service/auth.py).
"""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from knowledge_base.settings import Settings, get_settings
from knowledge_base.store import KnowledgeBase, KnowledgeBaseError

from .api import curation, insight, pages, public, staff_pages
from .auth import KeyService, RateLimitMiddleware
from .services import Services


def create_app(kb: KnowledgeBase | None = None, settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    kb = kb or KnowledgeBase.open()
    app = FastAPI(
        title="policyqa",
        description="一库多平台: citizens' policy questions answered from one curated knowledge base, with cited sources.",
        version="0.1.0",
    )
    app.state.services = Services(kb=kb, settings=settings)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    # Added before CORS, so CORS is outermost and a 429 still carries the CORS headers the widget needs.
    app.add_middleware(
        RateLimitMiddleware, per_minute=settings.rate_limit_per_minute, verify_key=KeyService(kb).verify
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "PATCH", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization"],
    )

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

    curation.register_error_handlers(app)
    app.include_router(public.router)
    app.include_router(curation.router)
    app.include_router(pages.router)
    app.include_router(staff_pages.router)
    app.include_router(insight.router)
    return app
