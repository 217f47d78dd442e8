"""The 12345 operator console and the new-media preview end to end, in headless Chromium against a real
server process: key login, search as you type, the hotline script, copy buttons and keyboard shortcuts.
Screenshots go to test-artifacts/screenshots/console-*.png and newmedia-*.png.
"""
from __future__ import annotations

import pytest
from browser_support import ANSWER_TIMEOUT_MS, DESKTOP, PHONE, create_key, requires_chromium, screenshot

pytestmark = [pytest.mark.browser, requires_chromium]

CALLER_QUESTION = "失业保险金能领多久"


@pytest.fixture(scope="module")
def operator_key(pages_server):
    return create_key(pages_server.kb_dir, role="operator", name="周话务")


def console_context(chromium, server, viewport):
    phone = viewport == PHONE
    context = chromium.new_context(
        viewport=viewport, device_scale_factor=2 if phone else 1, is_mobile=phone, has_touch=phone, locale="zh-CN"
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    return context


def clipboard(page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def log_in(page, server, key):
    page.goto(server.url + "/console")
    page.locator("#key").fill(key)
    page.locator("#key").press("Enter")
    page.locator("#q").wait_for(state="visible")


def test_operator_logs_in_searches_as_they_type_reads_the_script_and_copies(chromium, pages_server, operator_key):
    context = console_context(chromium, pages_server, DESKTOP)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(pages_server.url + "/console")
    screenshot(page, "console-desktop-login")

    # A wrong key is refused with a message; the operator's key opens the console.
    page.locator("#key").fill("pqa_not-a-real-key")
    page.locator("#key").press("Enter")
    page.locator("#login-error").filter(has_text="密钥").wait_for()
    screenshot(page, "console-desktop-login-refused")
    page.locator("#key").fill(operator_key)
    page.locator("#key").press("Enter")
    page.locator("#q").wait_for(state="visible")
    assert "周话务" in page.locator("#operator-name").inner_text()
    assert page.evaluate("document.activeElement.id") == "q"  # keyboard-first: typing starts at once

    # Results as you type, debounced: far fewer searches than keystrokes.
    searches = []
    page.on("request", lambda r: "/v1/search" in r.url and searches.append(r.url))
    with page.expect_response(lambda r: "/v1/search" in r.url and r.ok, timeout=ANSWER_TIMEOUT_MS):
        page.locator("#q").press_sequentially(CALLER_QUESTION, delay=60)
    page.locator("#results .result").first.wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert 1 <= len(searches) < len(CALLER_QUESTION)
    first_result = page.locator("#results .result").first
    assert first_result.locator(".result-title").inner_text().startswith("《")
    screenshot(page, "console-desktop-search")

    first_result.locator(".button-copy").click()
    page.locator("#toast.toast-visible").wait_for()
    copied = clipboard(page)
    assert copied.startswith("《") and first_result.locator(".result-title").inner_text() in copied

    # Enter: the hotline script, to read out, with its sources (文号 and article).
    with page.expect_response(lambda r: r.url.endswith("/v1/ask"), timeout=ANSWER_TIMEOUT_MS) as asked:
        page.locator("#q").press("Enter")
    assert asked.value.request.post_data_json["channel"] == "hotline"
    page.locator(".script-steps").wait_for(timeout=ANSWER_TIMEOUT_MS)
    answer = page.locator(".script-answer").inner_text().strip()
    assert answer
    body = asked.value.json()
    assert body["answered"] is True
    assert page.locator(".cite").count() == len(body["citations"])
    documents = [c for c in body["citations"] if c["kind"] == "document"]
    if documents and documents[0]["doc_number"]:
        assert documents[0]["doc_number"] in page.locator(".cite-list").inner_text()
    screenshot(page, "console-desktop-script", full_page=True)

    # Focus is on the script: 1 copies the first source, C the whole script.
    assert page.evaluate("document.activeElement.id") == "script-panel"
    page.keyboard.press("1")
    page.wait_for_function("document.getElementById('toast').textContent.includes('依据 1')")
    first_cite = body["citations"][0]
    assert clipboard(page).endswith(first_cite["quote"])
    page.keyboard.press("c")
    page.wait_for_function("document.getElementById('toast').textContent.includes('答复口径')")
    assert answer in clipboard(page)

    # Esc returns to the search box; the question is in this session's history.
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.id") == "q"
    assert CALLER_QUESTION in page.locator("#history").inner_text()

    # Reloading keeps the login for this tab (sessionStorage) and the history.
    page.reload()
    page.locator("#q").wait_for(state="visible")
    assert CALLER_QUESTION in page.locator("#history").inner_text()
    assert errors == []
    context.close()


def test_console_on_a_phone_sized_screen(chromium, pages_server, operator_key):
    context = console_context(chromium, pages_server, PHONE)
    page = context.new_page()
    log_in(page, pages_server, operator_key)
    page.locator("#q").fill(CALLER_QUESTION)
    page.locator("#q").press("Enter")
    page.locator(".script-steps").wait_for(timeout=ANSWER_TIMEOUT_MS)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]  # no sideways scrolling
    screenshot(page, "console-phone-script")
    screenshot(page, "console-phone-script-full", full_page=True)
    context.close()


def test_console_logs_out_and_asks_for_the_key_again(chromium, pages_server, operator_key):
    context = console_context(chromium, pages_server, DESKTOP)
    page = context.new_page()
    log_in(page, pages_server, operator_key)
    page.locator("#logout").click()
    page.locator("#login").wait_for(state="visible")
    page.reload()
    page.locator("#login").wait_for(state="visible")
    assert page.locator("#console").is_hidden()
    context.close()


def test_newmedia_preview_is_at_most_300_characters_and_copies(chromium, pages_server):
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = console_context(chromium, pages_server, viewport)
        page = context.new_page()
        page.goto(pages_server.url + "/newmedia")
        page.locator("#nm-question").fill(CALLER_QUESTION)
        with page.expect_response(lambda r: r.url.endswith("/v1/ask"), timeout=ANSWER_TIMEOUT_MS) as asked:
            page.locator("#nm-question").press("Enter")
        assert asked.value.request.post_data_json["channel"] == "newmedia"
        page.locator("#nm-result").wait_for(state="visible")
        text = page.locator("#nm-text").inner_text()
        assert 0 < len(text) <= 300
        assert f"{len(text)} / 300" in page.locator("#nm-count").inner_text()
        page.locator("#nm-copy").click()
        page.locator("#toast.toast-visible").wait_for()
        assert clipboard(page) == asked.value.json()["answer"]
        screenshot(page, f"newmedia-{name}", full_page=True)
        context.close()
