"""The content-safety staff page (/staff/safety) in a real browser (Debian's Chromium through Playwright): an
administrator sees the seeded list, adds a word (which the server screens with at once), is told why an invalid
regular expression is refused, tries a text, edits and deletes a word, and reads the change history; another role is
told the page is for administrators. Staff text stays text.
"""
from __future__ import annotations

import httpx
import pytest
from browser_support import DESKTOP, requires_chromium, screenshot

pytestmark = [pytest.mark.browser, requires_chromium]


def login(page, url: str, key: str) -> None:
    page.goto(url + "/staff/safety")
    page.locator("#login-key").fill(key)
    page.locator("#login-key").press("Enter")


def test_an_admin_edits_the_blocked_word_list_in_the_browser(chromium, safety_server):
    context = chromium.new_context(viewport=DESKTOP, locale="zh-CN")
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: d.accept())  # the delete confirmation
        login(page, safety_server.url, safety_server.keys["admin"])
        page.locator("#term-rows tr").filter(has_text="狗官").wait_for()
        assert page.locator("#staff-nav a[data-nav=safety]").is_visible()
        assert page.locator("#safety-audit-rows").filter(has_text="初始词表").count() == 1

        # An invalid regular expression: the reason is shown, nothing is added.
        before = page.locator("#term-rows tr").count()
        page.locator("#t-pattern").fill("代办(包过")
        page.locator("#t-regex").check()
        page.locator("#t-category").select_option("fraud")
        page.locator("#term-save").click()
        page.locator("#term-error").filter(has_text="正则表达式有误").wait_for()
        assert page.locator("#term-rows tr").count() == before

        # A word: added, listed as text, and screened with at once.
        hostile = '<img src=x onerror="window.__pwned=1">浏览器测试'
        page.locator("#t-regex").uncheck()
        page.locator("#t-pattern").fill("饭 桶")
        page.locator("#t-category").select_option("abuse")
        page.locator("#t-note").fill(hostile)
        page.locator("#term-save").click()
        row = page.locator("#term-rows tr").filter(has_text="浏览器测试")
        row.wait_for()
        assert page.locator("#term-rows img").count() == 0 and hostile in row.inner_text()
        answer = httpx.post(safety_server.url + "/v1/ask", json={"question": "你们都是饭桶"}, timeout=120).json()
        assert answer["blocked"]["category"] == "abuse"
        page.locator("#c-text").fill("你们都是饭 桶")
        page.locator("#check-form button[type=submit]").click()
        page.locator("#check-result").filter(has_text="会被拦截").wait_for()
        screenshot(page, "staff-safety")

        # Edit it into another category, then delete it; the history says who did what.
        row.get_by_role("button", name="修改").click()
        page.locator("#term-save").filter(has_text="保存修改").wait_for()
        page.locator("#t-pattern").fill("饭桶")
        page.locator("#t-category").select_option("other")
        page.locator("#term-save").click()
        page.locator("#term-rows tr").filter(has_text="浏览器测试").filter(has_text="其他").wait_for()
        page.locator("#term-rows tr").filter(has_text="浏览器测试").get_by_role("button", name="删除").click()
        page.locator("#term-rows tr").filter(has_text="浏览器测试").wait_for(state="detached")
        page.locator("#safety-audit-rows tr").filter(has_text="删除").filter(has_text="浏览器测试").wait_for()
        audit = page.locator("#safety-audit-rows").inner_text()
        assert "添加" in audit and "修改" in audit and "系统管理员" in audit
        answer = httpx.post(safety_server.url + "/v1/ask", json={"question": "你们都是饭桶"}, timeout=120).json()
        assert answer.get("blocked") is None
        assert page.evaluate("window.__pwned") is None
        assert errors == []
    finally:
        context.close()


def test_other_roles_are_told_the_page_is_for_administrators(chromium, safety_server):
    context = chromium.new_context(viewport=DESKTOP, locale="zh-CN")
    try:
        page = context.new_page()
        login(page, safety_server.url, safety_server.keys["reviewer_b"])
        page.locator("#safety-denied").wait_for(state="visible")
        assert page.locator("#safety-main").is_hidden() and page.locator("#staff-nav a[data-nav=safety]").is_hidden()
        assert "李审核" in page.locator("#whoami-name").inner_text() and "市人社局" in page.locator("#whoami-name").inner_text()
    finally:
        context.close()
