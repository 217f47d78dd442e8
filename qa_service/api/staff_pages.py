"""Routes: the staff curation pages (Chinese UI). Static shells; their script (static/staff.js) logs in with a
staff key kept in sessionStorage and calls the JSON API with `Authorization: Bearer`, so the pages hold no
data and need no session of their own. Server data is only ever set as text (no innerHTML).

    GET /staff                 → /staff/faqs
    GET /staff/faqs            FAQ list: status filters, search, import (CSV/XLSX), export (XLSX), new entry
    GET /staff/faqs/new        a new draft
    GET /staff/faqs/{faq_id}   edit form, submit, review with the 保密审查 checkbox, publish, retire, history
    GET /staff/analytics       top / unanswered / unhelpful question groups, filters, promote to FAQ draft
    GET /staff/safety          content safety: the blocked words and patterns (admins), try a text, change history
"""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from knowledge_base.settings import Settings

from .deps import SettingsDep

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
router = APIRouter(include_in_schema=False)

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _page(request: Request, settings: Settings, template: str, context: dict | None = None) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, {"hotline": settings.hotline_number, **(context or {})},
                                      headers=HEADERS)


@router.get("/staff", response_class=RedirectResponse)
def staff_home() -> RedirectResponse:
    return RedirectResponse("/staff/faqs", status_code=307)


@router.get("/staff/faqs", response_class=HTMLResponse)
def staff_faq_list(request: Request, settings: SettingsDep):
    return _page(request, settings, "staff_faqs.html")


@router.get("/staff/faqs/new", response_class=HTMLResponse)
def staff_faq_new(request: Request, settings: SettingsDep):
    return _page(request, settings, "staff_faq_edit.html", {"faq_id": ""})


@router.get("/staff/faqs/{faq_id}", response_class=HTMLResponse)
def staff_faq_edit(request: Request, faq_id: str, settings: SettingsDep):
    return _page(request, settings, "staff_faq_edit.html", {"faq_id": faq_id})


@router.get("/staff/analytics", response_class=HTMLResponse)
def staff_analytics(request: Request, settings: SettingsDep):
    return _page(request, settings, "staff_analytics.html")


@router.get("/staff/safety", response_class=HTMLResponse)
def staff_safety(request: Request, settings: SettingsDep):
    return _page(request, settings, "staff_safety.html")
