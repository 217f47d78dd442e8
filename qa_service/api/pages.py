"""Routes: the citizen-facing and operator-facing pages — widget script, document viewer, hotline console,
new-media preview and a demo host page.

    GET /widget.js          <script src="https://HOST/widget.js" data-title="…" async></script> on any page
    GET /documents/{doc_id} the full text with one anchor per article; `#anchor` is highlighted
    GET /console            the 12345 operator console (operator key; data from /v1/search and /v1/ask)
    GET /newmedia           editors' preview of the ≤ 300-character new-media rendering
    GET /demo               a sample host page embedding the widget

Pages are server-rendered with Jinja2 (autoescaped) or are static shells whose scripts call the JSON API;
script files never put server data into HTML (textContent only).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from knowledge_base.models import MAX_QUESTION_CHARS, StoredDocument, Validity
from knowledge_base.settings import Settings

from ..engine import DocumentCatalog
from .deps import KbDep, SettingsDep

PACKAGE_DIR = Path(__file__).resolve().parent.parent
STATIC_DIR = PACKAGE_DIR / "static"
templates = Jinja2Templates(directory=str(PACKAGE_DIR / "templates"))
templates.env.trim_blocks = templates.env.lstrip_blocks = True
templates.env.globals["max_question_chars"] = MAX_QUESTION_CHARS

router = APIRouter(include_in_schema=False)

VALIDITY_LABELS = {
    Validity.IN_FORCE: "现行有效",
    Validity.SUPERSEDED: "已被修订",
    Validity.EXPIRED: "已失效",
    Validity.UNKNOWN: "未标注",
}

# Our own pages load nothing from elsewhere; the widget itself runs under the host page's policy.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# The demo page is a stand-in for a city website: it may embed the widget from another origin.
DEMO_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=300"}


# ---------------------------------------------------------------------------------------------------------
# Document viewer: view model
# ---------------------------------------------------------------------------------------------------------


@dataclass
class SectionView:
    anchor: str
    text: str
    path: str  # " > ".join(path), shown to screen readers and in the hover title
    headings: list[tuple[int, str]] = field(default_factory=list)  # (level, text) opened before this section


@dataclass
class VersionView:
    doc_id: str
    title: str
    date_label: str
    doc_number: str | None
    validity: str
    validity_label: str
    is_current_page: bool


@dataclass
class DocumentView:
    doc: StoredDocument
    validity: str
    validity_label: str
    sections: list[SectionView]
    versions: list[VersionView]
    in_force: StoredDocument | None  # the version in force, when this one is superseded or expired

    @property
    def toc(self) -> list[tuple[str, str]]:
        """(anchor, heading) of the top-level headings (章 / 一、), for the 目录."""
        return [(s.anchor, text) for s in self.sections for level, text in s.headings if level == 1 and s.anchor]


def date_label(d: date | None) -> str:
    return f"{d.year}年{d.month}月{d.day}日" if d else ""


def section_views(sections: list[dict]) -> list[SectionView]:
    """Sections in reading order, with the chapter/outline headings that open before each.

    A heading is emitted once, for an ancestor path no earlier section stood for; a section whose text is
    only its own heading (a bare 章 line) is rendered as that heading.
    """
    shown: set[tuple[str, ...]] = set()
    views: list[SectionView] = []
    pending: list[tuple[int, str]] = []
    for sec in sections:
        path = [str(p) for p in sec.get("path") or []]
        text = str(sec.get("text") or "")
        anchor = str(sec.get("anchor") or "")
        for depth in range(1, len(path)):
            prefix = tuple(path[:depth])
            if prefix not in shown:
                shown.add(prefix)
                pending.append((depth, path[depth - 1]))
        if path and text.strip() == path[-1].strip():
            shown.add(tuple(path))
            pending.append((len(path), text.strip()))
            if anchor:  # keep the anchor reachable: a heading-only section still gets its id
                views.append(SectionView(anchor=anchor, text="", path=" > ".join(path), headings=pending))
                pending = []
            continue
        shown.add(tuple(path))
        views.append(SectionView(anchor=anchor, text=text, path=" > ".join(path), headings=pending))
        pending = []
    return views


def version_views(current: StoredDocument, versions: list[StoredDocument]) -> list[VersionView]:
    return [
        VersionView(
            doc_id=v.doc_id,
            title=v.meta.title,
            date_label=date_label(v.meta.version_date or v.meta.published_date or v.meta.written_date),
            doc_number=v.meta.doc_number,
            validity=v.validity.value,
            validity_label=VALIDITY_LABELS[v.validity],
            is_current_page=v.doc_id == current.doc_id,
        )
        for v in versions
    ]


def public_document_view(kb, doc_id: str) -> DocumentView | None:
    """The viewer's data for a 主动公开 document; None for unknown and non-public ones alike."""
    found = DocumentCatalog(kb).get(doc_id)
    if found is None:
        return None
    doc, sections, versions = found
    if not sections:  # unstructured text: one anchor per paragraph
        paragraphs = [p.strip() for p in doc.text.split("\n") if p.strip()]
        sections = [{"path": [], "anchor": f"p-{i}", "text": p} for i, p in enumerate(paragraphs, 1)]
    in_force = next((v for v in versions if doc.superseded_by and v.doc_id == doc.superseded_by), None)
    return DocumentView(
        doc=doc,
        validity=doc.validity.value,
        validity_label=VALIDITY_LABELS[doc.validity],
        sections=section_views(sections),
        versions=version_views(doc, versions),
        in_force=in_force,
    )


# ---------------------------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------------------------


def page(request: Request, settings: Settings, template: str, context: dict | None = None, status_code: int = 200,
         headers=None):
    context = {"hotline": settings.hotline_number, **(context or {})}
    return templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=headers or PAGE_HEADERS
    )


# widget.js's first line as shipped: the defaults it uses when served statically.
STATIC_SERVER_CONFIG = 'const SERVER_CONFIG = {"hotline": "12345", "max_question": 500};'


@lru_cache(maxsize=8)
def widget_script(hotline: str) -> str:
    """widget.js with the server's settings in its first line (the file works unchanged when served statically)."""
    source = (STATIC_DIR / "widget.js").read_text(encoding="utf-8")
    config = json.dumps({"hotline": hotline, "max_question": MAX_QUESTION_CHARS}, ensure_ascii=False)
    return source.replace(STATIC_SERVER_CONFIG, f"const SERVER_CONFIG = {config};", 1)


@router.get("/widget.js", response_class=Response)
def widget_js(settings: SettingsDep) -> Response:
    return Response(
        widget_script(settings.hotline_number),
        media_type="application/javascript; charset=utf-8",
        headers=ASSET_HEADERS,
    )


@router.get("/widget.css", response_class=FileResponse)
def widget_css() -> Response:
    return FileResponse(STATIC_DIR / "widget.css", media_type="text/css; charset=utf-8", headers=ASSET_HEADERS)


@router.get("/static/{name}", response_class=FileResponse)
def static_file(name: str) -> Response:
    # Only files that ship in qa_service/static, by exact name: no paths.
    shipped = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}
    if name not in shipped:
        return Response("not found", status_code=404, media_type="text/plain")
    media = {".js": "application/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}.get(
        shipped[name].suffix, None
    )
    return FileResponse(shipped[name], media_type=media, headers=ASSET_HEADERS)


@router.get("/documents/{doc_id}", response_class=HTMLResponse)
def document_page(request: Request, doc_id: str, kb: KbDep, settings: SettingsDep):
    view = public_document_view(kb, doc_id)
    if view is None:
        return page(request, settings, "not_found.html", {"doc_id": doc_id}, status_code=404)
    return page(request, settings, "document.html", {"view": view, "doc": view.doc, "date_label": date_label})


@router.get("/console", response_class=HTMLResponse)
def console_page(request: Request, settings: SettingsDep):
    return page(request, settings, "console.html")


@router.get("/newmedia", response_class=HTMLResponse)
def newmedia_page(request: Request, settings: SettingsDep):
    return page(request, settings, "newmedia.html")


@router.get("/demo", response_class=HTMLResponse)
def demo_page(request: Request, settings: SettingsDep):
    return page(request, settings, "demo.html", headers=DEMO_HEADERS)
