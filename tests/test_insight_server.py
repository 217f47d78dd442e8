"""Staff insight through a real server: the 12345 export imported over HTTP (row errors, re-import, roles, bad
files), its tickets merged with the chat questions on the groups API, the masked tickets of a group, the
weekly report download; then the analytics page in headless Chromium: every chart has data and a table
alternative, the charts are reachable and readable by keyboard. Screenshots: test-artifacts/screenshots/dashboard-*.png.
"""
from __future__ import annotations

import io
import re

import httpx
import pytest
from playwright.sync_api import expect
from browser_support import DESKTOP, PHONE, requires_chromium, screenshot
from workorder_sheet import chat_questions, ticket_rows, wait_for_import, write_csv, write_xlsx

ID_OR_PHONE = re.compile(r"(?<!\d)(?:\d{17}[\dXx]|1[3-9]\d{9}|0\d{2,3}-\d{7,8})(?![\dXx])")
CHARTS = ("asks", "rates", "feedback", "topics", "unanswered")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def client(insight_server):
    with httpx.Client(base_url=insight_server.url, timeout=300) as c:
        yield c


# --------------------------------------------------------------------------------------------- HTTP
@pytest.mark.model
def test_import_reports_bad_rows_and_reimporting_adds_nothing(insight_server, client, tmp_path):
    first = insight_server.import_result
    assert (first["rows"], first["added"], first["duplicates"]) == (223, 220, 0)
    assert [e["row"] for e in first["errors"]] == [7, 42, 102]
    rows, _ = ticket_rows()
    sheet = write_xlsx(rows, tmp_path / "again.xlsx")
    editor = bearer(insight_server.keys["editor"])
    again = wait_for_import(client, client.post("/v1/workorders/import", files={"file": ("again.xlsx", sheet.read_bytes())}, headers=editor), editor)
    assert again["state"] == "done" and again["result"]["added"] == 0 and again["result"]["duplicates"] == 220
    assert client.get(f"/v1/workorders/jobs/{again['id']}", headers=bearer(insight_server.keys["operator"])).status_code == 403
    refused = client.post("/v1/workorders/import", files={"file": ("a.xlsx", sheet.read_bytes())}, headers=bearer(insight_server.keys["operator"]))
    assert refused.status_code == 403 and set(refused.json()) >= {"error", "message"}
    bad = client.post("/v1/workorders/import", files={"file": ("a.pdf", b"%PDF-1.4")}, headers=bearer(insight_server.keys["editor"]))
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_sheet"
    no_auth = client.post("/v1/workorders/import", files={"file": ("a.xlsx", sheet.read_bytes())})
    assert no_auth.status_code == 401


@pytest.mark.model
def test_groups_merge_tickets_with_chat_questions_and_flag_what_to_publish(insight_server, client):
    r = client.get("/v1/analytics/groups", params={"days": 30, "limit": 20}, headers=bearer(insight_server.keys["operator"]))
    assert r.status_code == 200, r.text
    groups = r.json()["groups"]
    for intent, questions in chat_questions().items():
        holding = max(groups, key=lambda g: len(set(g["examples"]) & set(questions)) * 1000 + g["tickets"])
        chat = sum(n for c, n in holding["channels"].items() if c != "ticket")
        assert holding["tickets"] == 55 and chat == len(questions), (intent, holding)
    card = next(g for g in groups if "社保卡" in g["representative"])
    assert card["answered_rate"] < 0.5 and card["suggestion"] == "publish"
    tickets = client.get(f"/v1/analytics/groups/{card['id']}/tickets", params={"days": 30}, headers=bearer(insight_server.keys["operator"])).json()
    assert tickets["total"] == 55 and all("社保卡" in t["content"] or "社会保障卡" in t["content"] for t in tickets["tickets"])
    assert not any(ID_OR_PHONE.search(t["content"]) for t in tickets["tickets"])
    answered = [g for g in groups if "失业" in g["representative"] and g["tickets"] == 55]
    assert answered and answered[0]["suggestion"] is None
    assert client.get("/v1/analytics/groups", params={"channel": "fax"}, headers=bearer(insight_server.keys["operator"])).status_code == 422


@pytest.mark.model
def test_dashboard_counts_each_channel_per_day_and_filters_by_department(insight_server, client):
    op = bearer(insight_server.keys["operator"])
    board = client.get("/v1/analytics/dashboard", params={"days": 30}, headers=op).json()
    assert len(board["days"]) == 30 and all(len(board["asks"][c]) == 30 for c in board["channels"])
    assert sum(board["asks"]["ticket"]) == 220 and board["totals"]["asks"] == 220 + 11
    assert sum(board["helpful"]) + sum(board["unhelpful"]) == 11
    assert "市住房公积金管理中心" in board["departments"]
    fund = client.get("/v1/analytics/dashboard", params={"days": 30, "department": "市住房公积金管理中心", "channel": "ticket"}, headers=op).json()
    assert sum(fund["asks"]["ticket"]) == 110 and sum(fund["asks"]["web"]) == 0
    assert client.get("/v1/analytics/dashboard", params={"from": "2026-02-01", "to": "2026-01-01"}, headers=op).status_code == 422
    assert client.get("/v1/analytics/dashboard").status_code == 401


@pytest.mark.model
def test_weekly_report_downloads_as_xlsx_and_html(insight_server, client):
    from openpyxl import load_workbook

    from qa_service.report import SECTIONS

    board = client.get("/v1/analytics/dashboard", params={"days": 14}, headers=bearer(insight_server.keys["operator"])).json()
    params = {"from": board["from"], "to": board["to"]}
    r = client.get("/v1/analytics/report", params=params, headers=bearer(insight_server.keys["operator"]))
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    book = load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == list(SECTIONS)
    assert any("社保卡" in str(row[1]) and row[4] == "建议主动公开" for row in book["未回答问题"].iter_rows(min_row=3, values_only=True))
    html = client.get("/v1/analytics/report", params={**params, "format": "html"}, headers=bearer(insight_server.keys["operator"]))
    assert html.status_code == 200 and "政策问答周报" in html.text and "<script" not in html.text


# --------------------------------------------------------------------------------------------- browser
def staff_page(chromium, server, path: str, key: str, viewport=DESKTOP, **extra):
    context = chromium.new_context(viewport=viewport, locale="zh-CN", **extra)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(server.url + path)
    page.locator("#login-key").fill(key)
    page.locator("#login-key").press("Enter")
    page.locator("#staff-app").wait_for(state="visible")
    return context, page, errors


@pytest.mark.browser
@pytest.mark.model
@requires_chromium
def test_dashboard_charts_have_data_and_table_alternatives(chromium, insight_server):
    context, page, errors = staff_page(chromium, insight_server, "/staff/analytics", insight_server.keys["editor"])
    page.locator("#dashboard-status").filter(has_text="次提问").wait_for(timeout=300_000)
    page.locator("#group-rows tr").first.wait_for(timeout=300_000)
    for chart in CHARTS:
        # ECharts drew it (SVG renderer: one <path> per bar or line) and it has a text alternative and a table.
        assert page.locator(f"#chart-{chart} svg path").count() > 3, chart
        alt = page.locator(f"#alt-{chart}").inner_text()
        assert alt and re.search(r"\d", alt), (chart, alt)
        assert page.locator(f"#table-{chart} tbody tr").count() > 0, chart
    assert "共 231 次提问" in page.locator("#alt-asks").inner_text()
    topics = page.locator("#table-topics tbody").text_content()  # inside a closed <details>: not rendered text
    assert "55" in topics
    assert "建议主动公开" in page.locator("#table-unanswered tbody").text_content()
    screenshot(page, "dashboard-desktop", full_page=True)

    # Keyboard: Tab reaches a chart's "以表格查看", Enter opens the table.
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.closest('#card-asks summary') !== null"):
            break
    assert page.evaluate("document.activeElement.tagName") == "SUMMARY"
    page.keyboard.press("Enter")
    assert page.locator("#card-asks details").get_attribute("open") is not None
    assert page.locator("#table-asks").is_visible()
    screenshot(page, "dashboard-table-open")

    # Filters: only tickets of one department.
    page.select_option("#a-channel", "ticket")
    page.select_option("#a-department", "市住房公积金管理中心")
    with page.expect_response(lambda r: "/v1/analytics/dashboard" in r.url):
        page.locator("#analytics-form button[type=submit]").click()
    page.locator("#alt-asks").filter(has_text="共 110 次提问").wait_for(state="attached")

    # The 社保卡 group is flagged and lists its (masked) tickets.
    page.select_option("#a-channel", "")
    page.select_option("#a-department", "")
    with page.expect_response(lambda r: "/v1/analytics/groups" in r.url):
        page.locator("#analytics-form button[type=submit]").click()
    row = page.locator("#group-rows tr").filter(has_text="建议主动公开").first
    row.get_by_role("button", name=re.compile("查看工单")).click()
    page.locator("#ticket-rows tr").first.wait_for()
    assert page.locator("#ticket-rows tr").count() == 55
    assert not ID_OR_PHONE.search(page.locator("#ticket-rows").inner_text())
    screenshot(page, "dashboard-tickets")
    assert errors == [], errors
    context.close()


@pytest.mark.browser
@pytest.mark.model
@requires_chromium
def test_dashboard_on_a_phone_and_the_work_order_import_form(chromium, insight_server, tmp_path):
    context, page, errors = staff_page(chromium, insight_server, "/staff/analytics", insight_server.keys["editor"], viewport=PHONE)
    page.locator("#dashboard-status").filter(has_text="次提问").wait_for(timeout=300_000)
    # The mapping that read the first export (found under the usual headers: 来电内容) is remembered and shown.
    expect(page.locator("#wo-map-content")).to_have_value("来电内容")
    assert "诉求内容" in page.locator("#wo-hint-content").inner_text()
    # This system calls the column 群众诉求: staff type it in, and the import reads it.
    rows, _ = ticket_rows(seed=11)
    headers = ["工单编号", "受理时间", "群众诉求", "诉求类型", "承办单位", "办理结果"]
    sheet = write_csv(rows[:30], tmp_path / "新系统导出.csv", encoding="gbk", headers=headers)
    page.locator("#wo-map-content").fill("群众诉求")
    page.locator("#wo-file").set_input_files(str(sheet))
    with page.expect_response(lambda r: "/v1/workorders/import" in r.url, timeout=300_000):
        page.locator("#wo-form button[type=submit]").click()
    page.locator("#wo-result").filter(has_text="新增").wait_for(timeout=300_000)  # the page polls the import job
    assert "第 7 行" in page.locator("#wo-result").inner_text()  # the sheet's row 7 has no content
    expect(page.locator("#wo-map-content")).to_have_value("群众诉求")
    screenshot(page, "dashboard-phone-import", full_page=True)
    assert errors == [], errors
    context.close()
