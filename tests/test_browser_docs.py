"""/docs and /redoc render in a real browser with every host but the service closed, as on a government intranet
(issue 23, item 7)."""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from browser_support import DESKTOP, ApiServer, requires_chromium, screenshot

pytestmark = [pytest.mark.browser, requires_chromium]


@pytest.fixture(scope="module")
def docs_server(tmp_path_factory):
    with ApiServer(tmp_path_factory.mktemp("docs-served") / "kb", name="docs", ready_path="/docs") as server:
        yield server


def intranet_page(chromium, server: ApiServer):
    """A page whose requests to any other host fail, as they would behind a government firewall; the blocked
    requests are recorded."""
    context = chromium.new_context(viewport=DESKTOP, locale="zh-CN")
    blocked: list[tuple[str, str]] = []  # (resource type, url)
    own = urlsplit(server.url).netloc

    def only_the_service(route):
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            blocked.append((route.request.resource_type, route.request.url))
            route.abort()

    context.route("**/*", only_the_service)
    return context, context.new_page(), blocked


def test_swagger_ui_lists_the_operations_with_the_network_closed(chromium, docs_server):
    context, page, blocked = intranet_page(chromium, docs_server)
    try:
        page.goto(docs_server.url + "/docs")
        page.locator(".opblock-summary-path[data-path='/v1/ask']").wait_for(timeout=30_000)
        assert page.locator(".opblock").count() > 10
        screenshot(page, "docs-swagger-offline")
        assert blocked == []
    finally:
        context.close()


def test_redoc_lists_the_operations_with_the_network_closed(chromium, docs_server):
    context, page, blocked = intranet_page(chromium, docs_server)
    try:
        page.goto(docs_server.url + "/redoc")
        page.get_by_text("/v1/ask", exact=True).first.wait_for(state="attached", timeout=30_000)
        screenshot(page, "docs-redoc-offline")
        # ReDoc's sidebar shows the Redocly logo from its CDN and hides it when that fails: nothing else leaves.
        assert [kind for kind, _ in blocked if kind != "image"] == []
    finally:
        context.close()
