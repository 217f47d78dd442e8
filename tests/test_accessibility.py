"""Accessibility: axe-core 4.14.1 (from the npm registry, vendored in tests/vendor with its licence) injected by
Playwright into every page a citizen, an operator or a staff member reaches — the widget (open, an answer, a
refusal, 大字模式), the document viewer, the console (login, a script), every staff page (login, FAQ list, FAQ
edit, new FAQ, the analytics dashboard with its tables open, the content-safety list with an error and a
check shown) — with 0 serious or critical violations.
Each page's counts are printed; the full results go to test-artifacts/axe/NAME.json.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from browser_support import ANSWER_TIMEOUT_MS, ARTIFACTS, DESKTOP, HostPage, create_key, requires_chromium, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.model, requires_chromium]

AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1.min.js"
BLOCKING = ("serious", "critical")
RESULTS = ARTIFACTS / "axe"


def audit(page, name: str) -> list[dict]:
    """axe-core's violations on the page as it is now; prints and saves them; returns the serious/critical ones."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, { resultTypes: ['violations'] })")
    violations = result["violations"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(violations, ensure_ascii=False, indent=1), encoding="utf-8")
    blocking = [v for v in violations if v.get("impact") in BLOCKING]
    summary = ", ".join(f"{v['id']}({v['impact']}, {len(v['nodes'])})" for v in violations) or "none"
    print(f"\naxe {name}: {len(blocking)} serious/critical; all violations: {summary}")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]} for v in blocking]


def context(chromium, **extra):
    # axe is injected as an inline script, which the pages' Content-Security-Policy forbids: bypass it for the audit.
    return chromium.new_context(viewport=DESKTOP, locale="zh-CN", bypass_csp=True, **extra)


def test_widget_open_answer_refusal_and_large_text(chromium, pages_server):
    with HostPage(pages_server.url) as host:
        ctx = context(chromium)
        page = ctx.new_page()
        page.goto(host.url)
        page.locator("policyqa-widget .pq-launcher").click()
        page.locator(".pq-panel").wait_for(state="visible")
        problems = {"widget-open": audit(page, "widget-open")}
        box = page.locator(".pq-input")
        box.fill("失业保险金能领多长时间？")
        box.press("Enter")
        page.locator(".pq-answer").first.wait_for(timeout=ANSWER_TIMEOUT_MS)
        problems["widget-answer"] = audit(page, "widget-answer")
        box.fill("红烧肉怎么做才好吃？")
        box.press("Enter")
        page.locator(".pq-refusal").first.wait_for(timeout=ANSWER_TIMEOUT_MS)
        problems["widget-refusal"] = audit(page, "widget-refusal")
        page.locator(".pq-large-toggle").click()  # 大字模式
        problems["widget-large-text"] = audit(page, "widget-large-text")
        screenshot(page, "axe-widget-large-text")
        ctx.close()
    assert not any(problems.values()), problems


def test_document_viewer(chromium, pages_server):
    hits = httpx.get(pages_server.url + "/v1/search", params={"q": "失业保险金", "k": 1}, timeout=120).json()
    doc_id = hits["results"][0]["doc_id"]
    ctx = context(chromium)
    page = ctx.new_page()
    page.goto(pages_server.url + "/documents/" + quote(doc_id))
    problems = {"document": audit(page, "document-viewer")}
    page.locator(".large-text-toggle").click()
    problems["document-large-text"] = audit(page, "document-viewer-large-text")
    page.goto(pages_server.url + "/documents/no-such-document")
    problems["not-found"] = audit(page, "document-not-found")
    ctx.close()
    assert not any(problems.values()), problems


def test_console_login_and_script(chromium, pages_server):
    key = create_key(pages_server.kb_dir, role="operator", name="无障碍检查")
    ctx = context(chromium)
    page = ctx.new_page()
    page.goto(pages_server.url + "/console")
    problems = {"console-login": audit(page, "console-login")}
    page.locator("#key").fill(key)
    page.locator("#key").press("Enter")
    page.locator("#q").wait_for(state="visible")
    page.locator("#q").fill("失业保险金能领多久")
    page.locator("#q").press("Enter")
    page.locator(".script-steps").wait_for(timeout=ANSWER_TIMEOUT_MS)
    problems["console-script"] = audit(page, "console-script")
    page.goto(pages_server.url + "/newmedia")
    problems["newmedia"] = audit(page, "newmedia")
    ctx.close()
    assert not any(problems.values()), problems


def test_every_staff_page(chromium, insight_server):
    editor = insight_server.keys["editor"]
    r = httpx.post(insight_server.url + "/v1/faqs", json={"question": "失业保险金能领多长时间？", "answer": "最长24个月。"},
                   headers={"Authorization": f"Bearer {editor}"}, timeout=60)
    assert r.status_code in (201, 409), r.text
    ctx = context(chromium)
    page = ctx.new_page()
    page.goto(insight_server.url + "/staff/faqs")
    problems = {"staff-login": audit(page, "staff-login")}
    page.locator("#login-key").fill(editor)
    page.locator("#login-key").press("Enter")
    page.locator("#faq-rows tr").first.wait_for()
    problems["staff-faqs"] = audit(page, "staff-faqs")
    page.locator("#faq-rows a").first.click()
    page.locator("#f-question").wait_for()
    page.locator("#history-panel").wait_for()
    problems["staff-faq-edit"] = audit(page, "staff-faq-edit")
    page.goto(insight_server.url + "/staff/faqs/new")
    page.locator("#f-question").wait_for()
    problems["staff-faq-new"] = audit(page, "staff-faq-new")
    page.goto(insight_server.url + "/staff/analytics")
    page.locator("#dashboard-status").filter(has_text="次提问").wait_for(timeout=300_000)
    page.locator("#group-rows tr").first.wait_for(timeout=300_000)
    problems["staff-analytics"] = audit(page, "staff-analytics")
    for summary in page.locator("details.chart-table summary").all():
        summary.click()
    page.locator("#group-rows tr").filter(has_text="建议主动公开").first.get_by_role("button", name=re.compile("查看工单")).click()
    page.locator("#ticket-rows tr").first.wait_for()
    problems["staff-analytics-tables"] = audit(page, "staff-analytics-tables-open")
    screenshot(page, "axe-staff-analytics-tables", full_page=True)
    ctx.close()
    assert not any(problems.values()), problems


def test_content_safety_page(chromium, safety_server):
    ctx = context(chromium)
    page = ctx.new_page()
    page.goto(safety_server.url + "/staff/safety")
    page.locator("#login-key").fill(safety_server.keys["admin"])
    page.locator("#login-key").press("Enter")
    page.locator("#term-rows tr").first.wait_for()
    page.locator("#safety-audit-rows tr").first.wait_for()
    problems = {"staff-safety": audit(page, "staff-safety")}
    page.locator("#t-pattern").fill("(")
    page.locator("#t-regex").check()
    page.locator("#term-save").click()
    page.locator("#term-error").filter(has_text="正则表达式有误").wait_for()
    page.locator("#c-text").fill("狗官")
    page.locator("#check-form button[type=submit]").click()
    page.locator("#check-result").filter(has_text="会被拦截").wait_for()
    problems["staff-safety-error-and-check"] = audit(page, "staff-safety-error-and-check")
    ctx.close()
    assert not any(problems.values()), problems
