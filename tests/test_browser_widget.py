"""The citizen widget end to end: a real server process over a small real knowledge base, a host page on
another origin embedding the widget with its one script tag, and headless Chromium on a desktop and a
phone-sized viewport. Screenshots of each state go to test-artifacts/screenshots/widget-*.png.
"""
from __future__ import annotations

from urllib.parse import quote

import pytest
from browser_support import (
    ANSWER_TIMEOUT_MS,
    DESKTOP,
    PHONE,
    ApiServer,
    HostPage,
    copy_kb,
    http_json,
    requires_chromium,
    screenshot,
)

pytestmark = [pytest.mark.browser, requires_chromium]

ANSWERABLE = "失业人员在领取失业保险金期间死亡的怎么办"  # answered from the text of 失业保险条例
FAQ_QUESTION = "失业保险金能领多长时间？"  # FAQ-004, published in small_kb
UNRELATED = "红烧肉怎么做才好吃？"
MARKUP = "<img src=x onerror=alert(1)>失业保险金怎么领？"
VALIDITY_LABELS = {"现行有效", "已被修订", "已失效", "未标注"}
SUGGESTIONS = f"{FAQ_QUESTION}|春节放几天假？"


@pytest.fixture
def host(pages_server):
    with HostPage(pages_server.url, suggestions=SUGGESTIONS) as page:
        yield page


def new_context(chromium, viewport, **extra):
    phone = viewport == PHONE
    return chromium.new_context(
        viewport=viewport, device_scale_factor=2 if phone else 1, is_mobile=phone, has_touch=phone, locale="zh-CN", **extra
    )


def watch(page) -> dict:
    """Collects dialogs (an XSS would open one) and script errors on the page."""
    seen = {"dialogs": [], "errors": []}
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    return seen


def open_widget(page, host):
    page.goto(host.url)
    page.locator("policyqa-widget .pq-launcher").click()
    panel = page.locator(".pq-panel")
    panel.wait_for(state="visible")
    return panel


def ask(page, question: str):
    """Types the question and presses Enter; returns the answer, refusal or error that follows it."""
    replies = page.locator(".pq-answer, .pq-refusal, .pq-error")
    before = replies.count()
    box = page.locator(".pq-input")
    box.fill(question)
    box.press("Enter")
    reply = replies.nth(before)
    reply.wait_for(timeout=ANSWER_TIMEOUT_MS)
    return reply


def test_citizen_asks_sees_cited_answer_opens_the_article_and_sends_feedback(chromium, host, pages_server):
    context = new_context(chromium, DESKTOP)
    page = context.new_page()
    seen = watch(page)
    open_widget(page, host)
    screenshot(page, "widget-desktop-open")

    reply = ask(page, ANSWERABLE)
    assert "pq-answer" in reply.get_attribute("class"), reply.inner_text()
    assert reply.locator(".pq-answer-text").inner_text().strip()
    citations = reply.locator(".pq-cite:not(.pq-cite-faq)")
    assert citations.count() >= 1
    screenshot(page, "widget-desktop-answer")

    # A citation expands to its passage, title, 文号, date and 有效性, with a link to the article.
    first = citations.first
    article = first.locator(".pq-cite-section").inner_text().strip()  # e.g. 第十八条至第二十条
    first.locator(".pq-cite-toggle").click()
    detail = first.locator(".pq-cite-detail")
    detail.wait_for(state="visible")
    assert detail.locator(".pq-quote").inner_text().strip()
    assert "文号" in detail.inner_text() and "有效性" in detail.inner_text()
    assert first.locator(".pq-badge").first.inner_text() in VALIDITY_LABELS
    link = detail.locator(".pq-doc-link")
    href = link.get_attribute("href")
    assert href.startswith(pages_server.url + "/documents/") and "#" in href  # absolute, on the widget's origin
    link.scroll_into_view_if_needed()
    screenshot(page, "widget-desktop-citation")

    with context.expect_page() as opened:
        link.click()
    viewer = opened.value
    viewer.wait_for_load_state()
    anchor = href.split("#", 1)[1]
    target = viewer.locator(f"[id='{anchor}']")
    assert target.is_visible()
    assert viewer.evaluate("document.querySelector(':target') && document.querySelector(':target').id") == anchor
    background = target.evaluate("el => getComputedStyle(el).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent")  # the cited article is highlighted
    assert article.split("至")[0] in target.inner_text()  # the article the citation names
    box = target.bounding_box()
    assert 0 <= box["y"] < DESKTOP["height"]  # scrolled into view
    assert viewer.locator(".doc-meta").inner_text().count("有效性") == 1
    screenshot(viewer, "viewer-desktop-cited-article")

    # 有帮助 goes to POST /v1/feedback with the answer's query_id.
    with page.expect_response(lambda r: r.url.endswith("/v1/feedback") and r.request.method == "POST") as response:
        reply.locator(".pq-fb-yes").click()
    assert response.value.ok, response.value.text()
    assert response.value.request.post_data_json["query_id"] == reply.get_attribute("data-query-id")
    assert response.value.request.post_data_json["helpful"] is True
    page.locator(".pq-feedback-done").wait_for()
    assert "感谢" in reply.locator(".pq-feedback-note").inner_text()
    screenshot(page, "widget-desktop-feedback")
    assert seen["dialogs"] == [] and seen["errors"] == []
    context.close()


def test_unrelated_question_is_refused_and_points_to_12345(chromium, host):
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = new_context(chromium, viewport)
        page = context.new_page()
        open_widget(page, host)
        reply = ask(page, UNRELATED)
        assert "pq-refusal" in reply.get_attribute("class"), reply.inner_text()
        assert "没有找到可靠的答案" in reply.inner_text()
        assert reply.locator(".pq-hotline").get_attribute("href") == "tel:12345"
        assert reply.locator(".pq-cite").count() == 0
        screenshot(page, f"widget-{name}-refusal")
        context.close()


def test_markup_in_a_question_is_shown_as_text_and_never_runs(chromium, host):
    context = new_context(chromium, DESKTOP)
    page = context.new_page()
    seen = watch(page)
    open_widget(page, host)
    ask(page, MARKUP)
    bubble = page.locator(".pq-user").last
    assert "<img src=x onerror=alert(1)>" in bubble.inner_text()
    images = page.evaluate(
        "document.querySelectorAll('img').length + document.querySelector('policyqa-widget').shadowRoot.querySelectorAll('img').length"
    )
    assert images == 0
    page.wait_for_timeout(500)
    assert seen["dialogs"] == []
    screenshot(page, "widget-desktop-markup-as-text")
    context.close()


def test_on_a_phone_the_panel_is_full_screen_keyboard_usable_and_has_large_text(chromium, host):
    context = new_context(chromium, PHONE)
    page = context.new_page()
    page.goto(host.url)
    screenshot(page, "widget-phone-closed")

    launcher = page.locator(".pq-launcher")
    assert launcher.get_attribute("aria-label").startswith("打开")
    launcher.focus()
    page.keyboard.press("Enter")
    panel = page.locator(".pq-panel")
    panel.wait_for(state="visible")
    box = panel.bounding_box()
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, PHONE["width"], PHONE["height"])
    focused = "document.querySelector('policyqa-widget').shadowRoot.activeElement"
    assert page.evaluate(f"{focused}.id") == "pq-input"  # typing can start at once
    assert panel.get_attribute("role") == "dialog"
    assert page.locator(".pq-log").get_attribute("aria-live") == "polite"
    screenshot(page, "widget-phone-open")

    # A suggestion chip asks its question: a published FAQ entry answers it, marked as such.
    page.locator(".pq-welcome .pq-chip", has_text=FAQ_QUESTION).click()
    reply = page.locator(".pq-answer, .pq-refusal, .pq-error").first
    reply.wait_for(timeout=ANSWER_TIMEOUT_MS)
    assert reply.locator(".pq-tag-faq").is_visible(), reply.inner_text()
    assert FAQ_QUESTION in page.locator(".pq-user").first.inner_text()
    screenshot(page, "widget-phone-answer")
    reply.locator(".pq-cite-toggle").first.click()
    screenshot(page, "widget-phone-citation")
    related = reply.locator(".pq-related .pq-chip")
    if related.count():
        related.first.click()
        page.locator(".pq-answer, .pq-refusal, .pq-error").nth(1).wait_for(timeout=ANSWER_TIMEOUT_MS)

    # 大字模式 (适老化): larger text everywhere in the panel, remembered for the next visit.
    toggle = page.locator(".pq-large-toggle")
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert page.locator(".pq-root").evaluate("el => getComputedStyle(el).fontSize") == "21px"
    screenshot(page, "widget-phone-large-text")
    page.reload()
    assert page.locator(".pq-root").evaluate("el => el.classList.contains('pq-large')")

    # Full screen, the panel is a modal dialog: Tab and Shift+Tab cycle inside it, never onto the host page.
    page.locator(".pq-launcher").click()
    panel.wait_for(state="visible")
    assert panel.get_attribute("aria-modal") == "true"
    inside = "(() => { const r = document.querySelector('policyqa-widget').shadowRoot;" \
             " return !!r.activeElement && r.querySelector('.pq-panel').contains(r.activeElement); })()"
    stops = set()
    for key in ["Tab"] * 40 + ["Shift+Tab"] * 40:
        page.keyboard.press(key)
        assert page.evaluate(inside), f"focus left the panel after {key}"
        stops.add(page.evaluate(f"{focused}.className + '|' + ({focused}.textContent || '').slice(0, 12)"))
    assert len(stops) > 3  # it really moves (close, 大字, input, send, chips, citations …)

    # Esc closes and gives focus back to the button that opened the panel.
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")
    assert page.evaluate(f"{focused}.className") == "pq-launcher"
    context.close()


def test_network_failure_gives_a_friendly_message_and_retry_works(chromium, host):
    context = new_context(chromium, DESKTOP)
    page = context.new_page()
    open_widget(page, host)
    page.route("**/v1/ask", lambda route: route.abort("internetdisconnected"))
    reply = ask(page, ANSWERABLE)
    assert "pq-error" in reply.get_attribute("class")
    assert "网络" in reply.inner_text()
    screenshot(page, "widget-desktop-network-error")
    page.unroute("**/v1/ask")
    reply.locator(".pq-retry").click()
    page.locator(".pq-answer, .pq-refusal").first.wait_for(timeout=ANSWER_TIMEOUT_MS)
    context.close()


def test_widget_styles_and_host_styles_do_not_mix(chromium, host):
    context = new_context(chromium, DESKTOP)
    page = context.new_page()
    open_widget(page, host)
    # The host's html { font-size: 10px } and * { letter-spacing } do not reach the widget …
    assert page.locator(".pq-root").evaluate("el => getComputedStyle(el).fontSize") == "16px"
    assert page.locator(".pq-input").evaluate("el => getComputedStyle(el).letterSpacing") == "normal"
    # … and the widget's styles do not reach the host's own elements.
    button = page.locator("#host-button")
    assert button.evaluate("el => getComputedStyle(el).borderTopStyle") == "dashed"
    assert button.evaluate("el => getComputedStyle(el).paddingLeft") == "30px"
    assert page.locator("#host-text").evaluate("el => getComputedStyle(el).fontSize") == "14px"
    context.close()


def test_rate_limited_citizen_gets_a_friendly_message(chromium, small_kb, tmp_path_factory):
    # One request a minute: loading widget.js uses it up, so the first question is answered with 429.
    kb = copy_kb(small_kb, tmp_path_factory.mktemp("rate-limited") / "kb")
    with ApiServer(kb, env={"POLICYQA_RATE_LIMIT_PER_MINUTE": "1"}, name="rate-limited", ready_path="/widget.css") as server:
        with HostPage(server.url) as host:
            context = new_context(chromium, PHONE)
            page = context.new_page()
            open_widget(page, host)
            with page.expect_response(lambda r: r.url.endswith("/v1/ask") and r.request.method == "POST") as response:
                reply = ask(page, ANSWERABLE)
            assert response.value.status == 429
            assert "pq-error-rate" in reply.get_attribute("class")  # the 429 itself, not a CORS failure
            assert "频繁" in reply.inner_text()
            screenshot(page, "widget-phone-rate-limited")
            context.close()


def test_viewer_history_leads_to_the_superseded_version_which_links_back_to_the_one_in_force(chromium, pages_server):
    status, listing = http_json("GET", pages_server.url + "/v1/documents?title=" + quote("全国年节及纪念日放假办法"))
    assert status == 200
    current = next(d for d in listing["documents"] if d["validity"] == "in_force")
    context = new_context(chromium, PHONE)
    page = context.new_page()
    page.goto(f"{pages_server.url}/documents/{current['doc_id']}")
    history = page.locator(".version-list")
    assert history.locator(".version-current .badge").inner_text() == "现行有效"
    history.locator("a.version-title").first.click()  # the 2013 version
    page.wait_for_load_state()
    notice = page.locator(".notice-superseded")
    assert "本文件已被修订" in notice.inner_text()
    assert page.locator(".doc-meta .badge").inner_text() == "已被修订"
    screenshot(page, "viewer-phone-superseded")
    notice.locator("a.in-force-link").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/documents/{current['doc_id']}")
    assert page.locator(".notice-superseded").count() == 0
    context.close()


@pytest.fixture(scope="module")
def suggesting_server(small_kb, tmp_path_factory):
    """A server that answers nothing with confidence and suggests anything relevant (issue 21's `suggest`)."""
    kb_dir = copy_kb(small_kb, tmp_path_factory.mktemp("suggest-served") / "kb")
    env = {"POLICYQA_REFUSAL_THRESHOLD": "1.0", "POLICYQA_SUGGEST_THRESHOLD": "0"}
    with ApiServer(kb_dir, env=env, name="suggest") as server:
        yield server


def test_a_suggestion_lists_its_articles_with_the_closest_sentence_marked(chromium, suggesting_server):
    with HostPage(suggesting_server.url) as host:
        context = new_context(chromium, DESKTOP)
        page = context.new_page()
        seen = watch(page)
        open_widget(page, host)
        box = page.locator(".pq-input")
        box.fill("失业保险金的标准由谁确定？")
        box.press("Enter")
        reply = page.locator(".pq-suggest").first
        reply.wait_for(timeout=ANSWER_TIMEOUT_MS)
        status, expected = http_json("POST", suggesting_server.url + "/v1/ask", {"question": "失业保险金的标准由谁确定？"})
        assert status == 200 and expected["status"] == "suggest" and expected["suggestions"]
        assert "没有找到确切的答复" in reply.inner_text() and "参考条款" in reply.inner_text()
        items = reply.locator(".pq-suggestions > li")
        assert items.count() == len(expected["suggestions"])
        marks = reply.locator(".pq-highlight mark")
        assert marks.first.inner_text() == expected["suggestions"][0]["highlight"]
        items.first.locator(".pq-cite-toggle").click()
        quote_mark = items.first.locator(".pq-quote mark")
        assert quote_mark.inner_text() == expected["suggestions"][0]["highlight"]  # marked inside the article text
        assert reply.locator(".pq-hotline").is_visible()
        screenshot(page, "widget-suggest")
        assert not seen["dialogs"] and not seen["errors"], seen
        context.close()
