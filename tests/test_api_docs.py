"""The API documentation pages (/docs, /redoc) work on an intranet: their scripts and styles are served by the
service itself, never from a CDN (issue 23, item 7)."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from knowledge_base.settings import Settings

_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']""")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from knowledge_base.store import KnowledgeBase
    from qa_service.app import create_app

    kb = KnowledgeBase(tmp_path_factory.mktemp("docs") / "kb")
    with TestClient(create_app(kb=kb, settings=Settings(rate_limit_per_minute=0))) as c:
        yield c


def references(html: str) -> list[str]:
    return [a or b for a, b in _REFERENCE.findall(html)]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_references_no_external_host(client, page):
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, re.I), html  # no CDN, no Google Fonts
    refs = references(html)
    assert refs, html
    assert all(not urlsplit(r).netloc for r in refs), refs


def test_docs_assets_are_served_locally(client):
    kinds = {}
    for page in ("/docs", "/redoc"):
        for ref in references(client.get(page).text):
            if ref.endswith((".js", ".css")):
                response = client.get(ref)
                assert response.status_code == 200, ref
                kinds[ref.rsplit(".", 1)[1]] = response.headers["content-type"]
                assert len(response.content) > 10_000, ref  # the real bundle, not a stub
    assert "javascript" in kinds.get("js", "") and "text/css" in kinds.get("css", ""), kinds
    swagger = client.get(next(r for r in references(client.get("/docs").text) if r.endswith(".js"))).text
    assert "SwaggerUIBundle" in swagger
    redoc = client.get(next(r for r in references(client.get("/redoc").text) if r.endswith(".js"))).text
    assert "Redoc" in redoc
