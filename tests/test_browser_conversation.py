"""Conversations in the browser (issue 10): a citizen's two-turn conversation in the widget and a caller's in the
12345 console, each second answer citing the right article with the understood question shown; the console's
新来电 starts a new conversation. Real server process over small_kb, headless Chromium.
Screenshots: test-artifacts/screenshots/conversation-*.png."""
from __future__ import annotations

import pytest
from browser_support import ANSWER_TIMEOUT_MS, DESKTOP, HostPage, create_key, requires_chromium, screenshot

pytestmark = [pytest.mark.browser, requires_chromium]

FIRST, FOLLOW_UP = "国庆节放几天假？", "那春节呢？"
RULE = "全国年节及纪念日放假办法"


def test_widget_carries_the_conversation_and_shows_what_it_understood(chromium, pages_server):
    with HostPage(pages_server.url) as host:
        context = chromium.new_context(viewport=DESKTOP, locale="zh-CN")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(host.url)
        page.locator("policyqa-widget .pq-launcher").click()
        replies = page.locator(".pq-answer, .pq-refusal, .pq-error, .pq-clarify")

        def ask(question: str):
            before = replies.count()
            page.locator(".pq-input").fill(question)
            page.locator(".pq-input").press("Enter")
            reply = replies.nth(before)
            reply.wait_for(timeout=ANSWER_TIMEOUT_MS)
            return reply

        first = ask(FIRST)
        assert "国庆节" in first.inner_text() and first.locator(".pq-understood").count() == 0
        second = ask(FOLLOW_UP)
        understood = second.locator(".pq-understood")
        assert understood.is_visible()
        assert understood.inner_text().startswith("您是问：") and "春节" in understood.inner_text()
        text = second.inner_text()
        assert "放假4天" in text and RULE in second.locator(".pq-cites").inner_text()
        screenshot(page, "conversation-widget-follow-up")
        assert not errors
        context.close()


def test_console_follow_up_and_new_caller(chromium, pages_server):
    key = create_key(pages_server.kb_dir, role="operator", name="吴话务")
    context = chromium.new_context(viewport=DESKTOP, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(pages_server.url + "/console")
    page.locator("#key").fill(key)
    page.locator("#key").press("Enter")
    page.locator("#q").wait_for(state="visible")

    def ask(question: str):
        page.locator("#q").fill(question)
        page.locator("#q").press("Enter")
        page.locator("#script .script-question").filter(has_text=question).wait_for(timeout=ANSWER_TIMEOUT_MS)
        page.locator("#script .script-steps").wait_for(timeout=ANSWER_TIMEOUT_MS)
        return page.locator("#script")

    script = ask(FIRST)
    assert script.locator(".script-understood").count() == 0
    script = ask(FOLLOW_UP)
    assert "理解为" in script.locator(".script-understood").inner_text()
    assert "春节" in script.locator(".script-understood").inner_text()
    assert "放假4天" in script.locator(".script-answer").inner_text()
    assert RULE in script.locator(".cite-list").inner_text()
    screenshot(page, "conversation-console-follow-up")

    # A new caller: the previous caller's topic is not carried into the same words.
    page.locator("#new-caller").click()
    page.locator("#script").filter(has_text="新来电").wait_for()
    assert page.locator("#history .history-item").count() == 0
    script = ask(FOLLOW_UP)
    assert script.locator(".script-understood").count() == 0
    screenshot(page, "conversation-console-new-caller")
    assert not errors
    context.close()


def test_widget_shows_clarifying_choices_as_buttons_and_a_choice_is_answered(chromium, pages_server):
    with HostPage(pages_server.url) as host:
        context = chromium.new_context(viewport=DESKTOP, locale="zh-CN")
        page = context.new_page()
        page.goto(host.url)
        page.locator("policyqa-widget .pq-launcher").click()
        page.locator(".pq-input").fill("怎么公开？")  # names neither what nor whose: two 济南 plans speak to it
        page.locator(".pq-input").press("Enter")
        clarify = page.locator(".pq-clarify")
        clarify.wait_for(timeout=ANSWER_TIMEOUT_MS)
        buttons = clarify.locator("button.pq-chip")
        assert 2 <= buttons.count() <= 3
        choice = buttons.nth(0).inner_text()
        title = choice.split("《")[1].rstrip("》）")
        screenshot(page, "conversation-widget-choices")
        buttons.nth(0).click()
        answer = page.locator(".pq-answer, .pq-refusal").last
        answer.wait_for(timeout=ANSWER_TIMEOUT_MS)
        assert title in answer.locator(".pq-cites").inner_text()
        context.close()
