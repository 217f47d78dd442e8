"""The server-rendered pages and the widget's delivery, without a browser or a model: the document viewer
(metadata, anchors, 有效性, 历次修订, escaping, 404 for what is not public), widget.js/widget.css, and CORS
for embedding on other origins. The browser tests (test_browser_*.py) drive the same pages end to end.
"""
from __future__ import annotations

import re
from datetime import date
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from knowledge_base.models import Disclosure, DocType, DocumentMeta, StoredDocument, Validity
from knowledge_base.settings import Settings
from qa_service.api import pages

HOLIDAY_SECTIONS = [
    {"path": ["第一条"], "anchor": "s-1", "text": "第一条　为统一全国年节及纪念日的假期，制定本办法。"},
    {"path": ["第二条"], "anchor": "s-2", "text": "第二条　全体公民放假的节日：\n（二）春节，放假4天（农历除夕、正月初一至初三）；"},
]
CHAPTER_SECTIONS = [
    {"path": ["第一章 总则"], "anchor": "s-1", "text": "第一章 总则"},
    {"path": ["第一章 总则", "第一条"], "anchor": "s-2", "text": "第一条　为了保障失业人员失业期间的基本生活，制定本条例。"},
    {"path": ["第二章 失业保险待遇", "第十七条"], "anchor": "s-3", "text": "第十七条　失业人员失业前所在单位和本人累计缴费满1年不足5年的，领取失业保险金的期限最长为12个月。"},
]


def stored(doc_id, work_id, title, validity, version, number=None, superseded_by=None, disclosure=Disclosure.PUBLIC):
    meta = DocumentMeta(
        title=title,
        doc_number=number,
        publisher="国务院",
        written_date=version,
        published_date=version,
        version_date=version,
        disclosure=disclosure,
        doc_type=DocType.REGULATION,
        revision_notes=["（根据2024年11月10日《国务院关于修改〈全国年节及纪念日放假办法〉的决定》第四次修订）"],
    )
    return StoredDocument(doc_id, work_id, meta, validity, "hash", superseded_by=superseded_by, text="")


class InMemoryKnowledgeBase:
    """The two reads the viewer makes (`document`, `versions_of`), over a few documents held in memory."""

    def __init__(self, documents: dict[str, tuple[StoredDocument, list[dict]]]):
        self.documents = documents

    def document(self, doc_id, with_text=True):
        return self.documents.get(doc_id)

    def versions_of(self, work_id):
        found = [d for d, _ in self.documents.values() if d.work_id == work_id]
        return sorted(found, key=lambda d: d.meta.version_date or date.min, reverse=True)


@pytest.fixture
def client():
    kb = InMemoryKnowledgeBase(
        {
            "holiday2024": (
                stored("holiday2024", "holiday", "全国年节及纪念日放假办法", Validity.IN_FORCE, date(2024, 11, 10), "国务院令第795号"),
                HOLIDAY_SECTIONS,
            ),
            "holiday2013": (
                stored("holiday2013", "holiday", "全国年节及纪念日放假办法", Validity.SUPERSEDED, date(2013, 12, 11),
                       "国务院令第644号", superseded_by="holiday2024"),
                HOLIDAY_SECTIONS,
            ),
            "unemployment": (
                stored("unemployment", "unemp", "失业保险条例", Validity.IN_FORCE, date(1999, 1, 22), "国务院令第258号"),
                CHAPTER_SECTIONS,
            ),
            "markup": (
                stored("markup", "markup", "关于<script>alert(1)</script>的通知", Validity.UNKNOWN, None,
                       '"><img src=x onerror=alert(1)>'),
                [{"path": ["一、<b>总体要求</b>"], "anchor": "s-1", "text": "<img src=x onerror=alert(1)>请各单位遵照执行。"}],
            ),
            "internal": (
                stored("internal", "internal", "内部工作方案", Validity.IN_FORCE, date(2025, 1, 1), disclosure=Disclosure.WITHHELD),
                HOLIDAY_SECTIONS,
            ),
        }
    )
    app = FastAPI()
    app.state.services = SimpleNamespace(kb=kb, settings=Settings(hotline_number="12345"))
    app.include_router(pages.router)
    return TestClient(app)


def test_document_page_shows_metadata_validity_and_an_anchor_per_article(client):
    r = client.get("/documents/holiday2024")
    assert r.status_code == 200
    html = r.text
    for label in ("标题", "文号", "发布机构", "成文日期", "发布日期", "有效性"):
        assert f"<dt>{label}</dt>" in html
    assert "国务院令第795号" in html and "2024年11月10日" in html
    assert 'class="badge badge-in_force">现行有效<' in html
    assert 'id="s-1"' in html and 'id="s-2"' in html
    assert "春节，放假4天" in html


def test_superseded_version_is_marked_and_links_to_the_version_in_force(client):
    html = client.get("/documents/holiday2013").text
    notice = re.search(r'<div class="notice notice-superseded".*?</div>', html, re.S).group(0)
    assert "本文件已被修订" in notice
    assert 'href="/documents/holiday2024"' in notice
    assert 'class="badge badge-superseded">已被修订<' in html


def test_version_history_lists_every_public_version_with_links(client):
    html = client.get("/documents/holiday2013").text
    history = html[html.index("历次修订"):]
    assert '<a class="version-title" href="/documents/holiday2024">' in history
    assert "（当前查看）" in history  # this version is named, not linked
    assert history.index("2024年11月10日") < history.index("2013年12月11日")  # newest first
    assert "第四次修订" in history  # the document's own 题注 lines


def test_chapter_headings_are_shown_once_and_every_section_keeps_its_anchor(client):
    html = client.get("/documents/unemployment").text
    # 第一章 is a section of its own (a bare heading line) and the parent of 第一条: one heading, not two.
    assert html.count('<h2 class="doc-heading">第一章 总则</h2>') == 1
    # 第二章 has no section of its own: its heading is opened before 第十七条.
    assert html.count('<h2 class="doc-heading">第二章 失业保险待遇</h2>') == 1
    for anchor in ("s-1", "s-2", "s-3"):
        assert f'id="{anchor}"' in html


def test_document_text_and_metadata_are_escaped(client):
    html = client.get("/documents/markup").text
    assert "<script>alert(1)</script>" not in html
    assert "<img src=x" not in html
    assert "<b>总体要求</b>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;请各单位遵照执行。" in html
    assert 'class="badge badge-unknown">未标注<' in html


@pytest.mark.parametrize("doc_id", ["internal", "no-such-document", "%3Cscript%3Ealert(1)%3C"])
def test_unknown_and_non_public_documents_get_the_same_404_page(client, doc_id):
    r = client.get(f"/documents/{doc_id}")
    assert r.status_code == 404
    assert "未找到该文件" in r.text
    assert "内部工作方案" not in r.text
    assert "<script>alert" not in r.text


def test_pages_carry_a_content_security_policy(client):
    for path in ("/documents/holiday2024", "/console", "/newmedia"):
        csp = client.get(path).headers["content-security-policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp


def test_widget_script_is_served_as_javascript_with_the_configured_hotline(client):
    r = client.get("/widget.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/javascript")
    assert 'const SERVER_CONFIG = {"hotline": "12345", "max_question": 500};' in r.text
    assert "attachShadow" in r.text
    css = client.get("/widget.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_widget_script_never_inserts_server_data_as_html(client):
    source = client.get("/widget.js").text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source


def test_static_files_are_served_by_exact_name_only(client):
    assert client.get("/static/console.js").status_code == 200
    assert client.get("/static/pages.css").status_code == 200
    assert client.get("/static/nothing.js").status_code == 404
    assert client.get("/static/..%2Fapi%2Fpages.py").status_code == 404


def test_console_newmedia_and_demo_pages_render(client):
    assert "热线坐席助手" in client.get("/console").text
    assert "新媒体发布预览" in client.get("/newmedia").text
    demo = client.get("/demo").text
    assert '<script src="/widget.js"' in demo


# ------------------------------------------------------------------------------------------ CORS (real app)


def app_with_origins(tmp_path, origins: str) -> TestClient:
    from knowledge_base.store import KnowledgeBase
    from qa_service.app import create_app

    return TestClient(create_app(kb=KnowledgeBase(tmp_path / "kb"), settings=Settings(cors_origins=origins, rate_limit_per_minute=0)))


def preflight(client: TestClient, origin: str, path: str = "/v1/ask"):
    return client.options(
        path,
        headers={"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"},
    )


def test_widget_api_accepts_calls_from_any_origin_by_default(tmp_path):
    client = app_with_origins(tmp_path, "*")
    for path in ("/v1/ask", "/v1/feedback"):
        r = preflight(client, "https://www.example.gov.cn", path)
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] in ("*", "https://www.example.gov.cn")


def test_configured_origins_are_allowed_and_others_are_not(tmp_path):
    client = app_with_origins(tmp_path, "https://www.jinan.gov.cn, https://www.zibo.gov.cn")
    allowed = preflight(client, "https://www.zibo.gov.cn")
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://www.zibo.gov.cn"
    refused = preflight(client, "https://evil.example.com")
    assert refused.headers.get("access-control-allow-origin") is None
