"""The curation API through a real server: spreadsheet import and export, the FAQ lifecycle's HTTP shape,
feedback validation, and the staff pages.

The server runs on a knowledge base without documents (no embedding model needed); each test imports
the shared sample under its own 编号 prefix so the tests do not depend on one another.
"""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from browser_support import DESKTOP, ApiServer, requires_chromium, screenshot

from ingest.faq_sheet import read_faq_sheet, write_faq_xlsx
from knowledge_base.store import KnowledgeBase
from qa_service.auth import KeyService, Role

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "faq" / "sample_faq.csv"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def sample_rows() -> list[list[str]]:
    return list(csv.reader(io.StringIO(SAMPLE.read_text(encoding="utf-8-sig"))))


def sheet(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def prefixed_sample(prefix: str) -> list[list[str]]:
    """The sample sheet with 编号 FAQ-001… renamed PREFIX-001…, header kept."""
    rows = sample_rows()
    return [rows[0]] + [[row[0].replace("FAQ", prefix, 1), *row[1:]] for row in rows[1:]]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    kb_dir = tmp_path_factory.mktemp("curation-api-kb")
    keys = KeyService(KnowledgeBase(kb_dir))
    tokens = {
        "operator": keys.create("周话务", Role.OPERATOR).token,
        "editor": keys.create("王编辑", Role.EDITOR).token,
        "reviewer": keys.create("李审核", Role.REVIEWER).token,
    }
    with ApiServer(kb_dir, name="curation-api") as server:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            yield client, tokens


def upload(client, key: str, name: str, data: bytes, mime: str = "text/csv"):
    return client.post("/v1/faqs/import", files={"file": (name, data, mime)}, headers=bearer(key))


def listed(client, key: str, prefix: str, status: str | None = None) -> list[dict]:
    params = {"q": prefix, **({"status": status} if status else {})}
    return [f for f in client.get("/v1/faqs", params=params, headers=bearer(key)).json()["faqs"] if f["faq_id"].startswith(prefix)]


def test_importing_the_sample_sheet_yields_ten_drafts(api):
    client, keys = api
    r = upload(client, keys["editor"], "sample_faq.csv", sheet(prefixed_sample("IMP")))
    assert r.status_code == 200, r.text
    assert r.json() == {"imported": 10, "updated": 0, "unchanged": 0, "errors": [], "warnings": []}
    drafts = listed(client, keys["operator"], "IMP-", status="draft")
    assert [f["faq_id"] for f in drafts] == [f"IMP-{n:03d}" for n in range(1, 11)]
    faq4 = next(f for f in drafts if f["faq_id"] == "IMP-004")
    assert faq4["question"] == "失业保险金能领多长时间？"
    assert faq4["variants"] == ["失业金领几个月", "失业保险金领取期限", "交了几年失业险能领多久"]
    assert (faq4["source_titles"], faq4["source_articles"]) == (["失业保险条例"], ["第十七条"])
    assert faq4["author"] == "王编辑" and faq4["reviewer"] is None


def test_the_unchanged_sample_file_itself_imports(api):
    client, keys = api
    r = upload(client, keys["editor"], "sample_faq.csv", SAMPLE.read_bytes())
    assert r.status_code == 200 and r.json()["errors"] == []
    assert r.json()["imported"] + r.json()["updated"] == 10


def test_a_row_with_an_empty_answer_is_reported_by_row_number_and_the_others_import(api):
    client, keys = api
    rows = prefixed_sample("BAD")
    rows[3][2] = ""  # BAD-003, on spreadsheet row 4 (the header is row 1)
    r = upload(client, keys["editor"], "bad.csv", sheet(rows))
    assert r.status_code == 200
    body = r.json()
    assert body["imported"] == 9
    assert [e["row"] for e in body["errors"]] == [4]
    assert "答案" in body["errors"][0]["error"]
    ids = [f["faq_id"] for f in listed(client, keys["operator"], "BAD-")]
    assert "BAD-003" not in ids and len(ids) == 9


def test_reimporting_the_same_ids_updates_instead_of_duplicating(api):
    client, keys = api
    rows = prefixed_sample("RE")
    assert upload(client, keys["editor"], "a.csv", sheet(rows)).json()["imported"] == 10
    again = upload(client, keys["editor"], "a.csv", sheet(rows)).json()
    assert again == {"imported": 0, "updated": 10, "unchanged": 10, "errors": [], "warnings": []}
    rows[1][2] = "修改后的答案：以最新文件为准。"
    changed = upload(client, keys["editor"], "a.csv", sheet(rows)).json()
    assert (changed["imported"], changed["updated"], changed["unchanged"]) == (0, 10, 9)
    entries = listed(client, keys["operator"], "RE-")
    assert len(entries) == 10
    assert next(f for f in entries if f["faq_id"] == "RE-001")["answer"] == "修改后的答案：以最新文件为准。"
    actions = [a["action"] for a in client.get("/v1/faqs/RE-001/audit", headers=bearer(keys["operator"])).json()["audit"]]
    assert actions == ["import", "import-update"]


def test_reimporting_changed_content_of_a_published_entry_sends_it_back_to_review(api):
    client, keys = api
    rows = prefixed_sample("PUB")
    upload(client, keys["editor"], "p.csv", sheet(rows))
    client.post("/v1/faqs/PUB-002/review", json={"confidentiality_checked": True}, headers=bearer(keys["reviewer"]))
    assert client.post("/v1/faqs/PUB-002/publish", headers=bearer(keys["reviewer"])).json()["status"] == "published"
    assert upload(client, keys["editor"], "p.csv", sheet(rows)).json()["unchanged"] == 10  # same content: stays published
    assert client.get("/v1/faqs/PUB-002", headers=bearer(keys["operator"])).json()["status"] == "published"
    rows[2][2] += "（已更新）"
    upload(client, keys["editor"], "p.csv", sheet(rows))
    entry = client.get("/v1/faqs/PUB-002", headers=bearer(keys["operator"])).json()
    assert entry["status"] == "draft" and entry["confidentiality_checked_by"] is None


def test_export_round_trips_through_import(api):
    client, keys = api
    upload(client, keys["editor"], "x.csv", sheet(prefixed_sample("EXP")))
    r = client.get("/v1/faqs/export", headers=bearer(keys["operator"]))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "attachment" in r.headers["content-disposition"]
    exported = read_faq_sheet(r.content, "export.xlsx")
    assert exported.errors == []
    by_id = {e.faq_id: e for e in exported.entries}
    for original in read_faq_sheet(sheet(prefixed_sample("EXP")), "x.csv").entries:
        back = by_id[original.faq_id]
        for field in ("question", "answer", "variants", "source_titles", "source_articles", "topic", "publisher"):
            assert getattr(back, field) == getattr(original, field), (original.faq_id, field)
    # Importing the export changes nothing.
    again = upload(client, keys["editor"], "export.xlsx", r.content, "application/octet-stream").json()
    assert again["errors"] == [] and again["imported"] == 0 and again["unchanged"] == again["updated"] == len(exported.entries)


def test_an_xlsx_sheet_imports_like_a_csv(api):
    client, keys = api
    entries = read_faq_sheet(sheet(prefixed_sample("XL")), "x.csv").entries
    r = upload(client, keys["editor"], "faq.xlsx", write_faq_xlsx(entries), "application/octet-stream")
    assert r.json()["imported"] == 10


def test_an_unreadable_file_is_refused_with_a_message(api):
    client, keys = api
    r = upload(client, keys["editor"], "faq.pdf", b"%PDF-1.4 not a sheet")
    assert r.status_code == 422 and r.json()["errors"][0]["row"] == 0
    r = upload(client, keys["editor"], "faq.csv", "标题,内容\n一,二\n".encode())
    assert r.status_code == 422 and "编号" in r.json()["message"]


def test_status_filter_and_single_entry(api):
    client, keys = api
    upload(client, keys["editor"], "s.csv", sheet(prefixed_sample("ST")))
    client.post("/v1/faqs/ST-001/submit", headers=bearer(keys["editor"]))
    in_review = listed(client, keys["operator"], "ST-", status="in_review")
    assert [f["faq_id"] for f in in_review] == ["ST-001"]
    assert len(listed(client, keys["operator"], "ST-", status="draft")) == 9
    assert client.get("/v1/faqs", params={"status": "bogus"}, headers=bearer(keys["operator"])).status_code == 422
    one = client.get("/v1/faqs/ST-001", headers=bearer(keys["operator"])).json()
    assert one["status"] == "in_review" and one["created_at"].endswith("Z")
    missing = client.get("/v1/faqs/NOPE-999", headers=bearer(keys["operator"]))
    assert missing.status_code == 404 and "未找到" in missing.json()["message"]


def test_create_edit_submit_review_publish_retire_reopen(api):
    client, keys = api
    r = client.post("/v1/faqs", json={"question": "居住证多久能办下来？", "variants": ["居住证办理时限", " ", "居住证办理时限"]},
                    headers=bearer(keys["editor"]))
    assert r.status_code == 201
    faq = r.json()
    assert faq["faq_id"].startswith("FAQ-") and faq["status"] == "draft" and faq["variants"] == ["居住证办理时限"]
    faq_id = faq["faq_id"]
    # No answer yet: it cannot go to review.
    r = client.post(f"/v1/faqs/{faq_id}/submit", headers=bearer(keys["editor"]))
    assert r.status_code == 422 and "答案" in r.json()["message"]
    r = client.patch(f"/v1/faqs/{faq_id}", json={"answer": "公安机关应当在受理之日起15日内制作发放居住证。", "topic": "户籍居住"},
                     headers=bearer(keys["editor"]))
    assert r.status_code == 200 and r.json()["topic"] == "户籍居住"
    assert client.patch(f"/v1/faqs/{faq_id}", json={"status": "published"}, headers=bearer(keys["editor"])).status_code == 422
    assert client.patch(f"/v1/faqs/{faq_id}", json={"question": ""}, headers=bearer(keys["editor"])).status_code == 422
    assert client.post(f"/v1/faqs/{faq_id}/submit", headers=bearer(keys["editor"])).json()["status"] == "in_review"
    # Publishing needs the review with the 保密审查 first.
    assert client.post(f"/v1/faqs/{faq_id}/publish", headers=bearer(keys["reviewer"])).status_code == 409
    r = client.post(f"/v1/faqs/{faq_id}/review", json={"confidentiality_checked": False}, headers=bearer(keys["reviewer"]))
    assert r.status_code == 422 and "保密审查" in r.json()["message"]
    r = client.post(f"/v1/faqs/{faq_id}/review", json={"confidentiality_checked": True}, headers=bearer(keys["reviewer"]))
    assert r.json()["confidentiality_checked_by"] == "李审核" and r.json()["confidentiality_checked_at"]
    assert client.post(f"/v1/faqs/{faq_id}/publish", headers=bearer(keys["reviewer"])).json()["status"] == "published"
    # Editing published content takes it off the air until it is reviewed again.
    r = client.patch(f"/v1/faqs/{faq_id}", json={"answer": "受理之日起15日内。"}, headers=bearer(keys["editor"]))
    assert r.json()["status"] == "draft" and r.json()["reviewer"] is None
    assert client.post(f"/v1/faqs/{faq_id}/retire", headers=bearer(keys["reviewer"])).json()["status"] == "retired"
    assert client.patch(f"/v1/faqs/{faq_id}", json={"answer": "x"}, headers=bearer(keys["editor"])).status_code == 409
    assert client.post(f"/v1/faqs/{faq_id}/reopen", headers=bearer(keys["editor"])).json()["status"] == "draft"
    actions = [a["action"] for a in client.get(f"/v1/faqs/{faq_id}/audit", headers=bearer(keys["operator"])).json()["audit"]]
    assert actions == ["create", "edit", "submit", "review", "publish", "edit", "retire", "reopen"]


def test_a_reviewer_can_send_an_entry_back_with_a_comment(api):
    client, keys = api
    faq_id = client.post("/v1/faqs", json={"question": "退回测试", "answer": "初稿"}, headers=bearer(keys["editor"])).json()["faq_id"]
    client.post(f"/v1/faqs/{faq_id}/submit", headers=bearer(keys["editor"]))
    r = client.post(f"/v1/faqs/{faq_id}/review", json={"approve": False, "comment": "请补充条款依据"}, headers=bearer(keys["reviewer"]))
    assert r.status_code == 200 and r.json()["status"] == "draft"
    last = client.get(f"/v1/faqs/{faq_id}/audit", headers=bearer(keys["operator"])).json()["audit"][-1]
    assert (last["action"], last["actor"], last["after"]["note"]) == ("reject", "李审核", "请补充条款依据")


def test_a_duplicate_or_malformed_id_is_refused(api):
    client, keys = api
    assert client.post("/v1/faqs", json={"faq_id": "DUP-1", "question": "一"}, headers=bearer(keys["editor"])).status_code == 201
    assert client.post("/v1/faqs", json={"faq_id": "DUP-1", "question": "二"}, headers=bearer(keys["editor"])).status_code == 409
    assert client.post("/v1/faqs", json={"faq_id": "a/b c", "question": "三"}, headers=bearer(keys["editor"])).status_code == 422


def test_feedback_on_an_unknown_answer_is_404_and_bad_bodies_are_422(api):
    client, _ = api
    r = client.post("/v1/feedback", json={"query_id": "f" * 32, "helpful": False, "comment": "没用"})
    assert r.status_code == 404 and "query_id" in r.json()["message"]
    assert client.post("/v1/feedback", json={"query_id": "x", "helpful": "yes"}).status_code == 422
    assert client.post("/v1/feedback", json={"helpful": True}).status_code == 422
    assert client.post("/v1/feedback", content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 422


def test_analytics_parameters_are_validated(api):
    client, keys = api
    h = bearer(keys["operator"])
    assert client.get("/v1/analytics/questions", params={"kind": "popular"}, headers=h).status_code == 422
    assert client.get("/v1/analytics/questions", params={"channel": "fax"}, headers=h).status_code == 422
    assert client.get("/v1/analytics/questions", params={"days": 0}, headers=h).status_code == 422
    assert client.get("/v1/analytics/questions", params={"from": "2025-02-01", "to": "2025-01-01"}, headers=h).status_code == 422
    r = client.get("/v1/analytics/questions", params={"kind": "unanswered", "from": "2025-01-01", "to": "2025-01-31"}, headers=h)
    assert r.status_code == 200 and r.json()["groups"] == []
    r = client.post("/v1/analytics/groups/000000000000/promote", headers=bearer(keys["editor"]))
    assert r.status_code == 404


def test_staff_pages_are_chinese_shells_with_a_strict_content_policy(api):
    client, _ = api
    for path, marker in (("/staff/faqs", "FAQ 条目"), ("/staff/faqs/new", "新建条目"), ("/staff/analytics", "问题分析"),
                         ("/staff/faqs/FAQ-004", "保密审查")):
        r = client.get(path)
        assert r.status_code == 200, path
        assert marker in r.text and "staff.js" in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
    assert client.get("/staff", follow_redirects=False).headers["location"] == "/staff/faqs"
    # A hostile 编号 in the URL is escaped, never markup.
    r = client.get("/staff/faqs/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert r.status_code == 200
    assert "<img src=x" not in r.text and "&lt;img src=x onerror=alert(1)&gt;" in r.text
    js = client.get("/static/staff.js")
    assert js.status_code == 200 and "innerHTML" not in js.text


# --------------------------------------------------------------------------------------------- the staff pages in a browser
@pytest.mark.browser
@requires_chromium
def test_staff_pages_in_a_browser_import_review_with_the_check_and_publish(api, tmp_path, chromium):

    client, keys = api
    rows = prefixed_sample("WEB")
    rows[1][1] = '<img src=x onerror="window.__pwned=1">老楼装电梯要几户同意？'  # user text must stay text
    csv_path = tmp_path / "faq.csv"
    csv_path.write_bytes(sheet(rows))
    base = str(client.base_url).rstrip("/")
    context = chromium.new_context(viewport=DESKTOP, locale="zh-CN")
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/staff/faqs")
        page.locator("#login-key").fill("pqa_wrong")
        page.locator("#login-key").press("Enter")
        page.locator("#login-error").filter(has_text="密钥无效").wait_for()
        page.locator("#login-key").fill(keys["editor"])
        page.locator("#login-key").press("Enter")
        page.locator("#whoami-name").filter(has_text="王编辑").wait_for()

        page.locator("#import-file").set_input_files(str(csv_path))
        page.locator("#import-form button[type=submit]").click()
        page.locator("#import-result").filter(has_text="新增 10 条").wait_for()
        page.goto(base + "/staff/faqs?status=draft&q=WEB-")
        page.locator("#faq-rows tr").nth(9).wait_for()
        assert page.locator("#faq-rows tr").count() == 10
        assert page.locator("#faq-rows").inner_text().count("草稿") == 10
        assert page.locator("#faq-rows img").count() == 0 and "<img src=x" in page.locator("#faq-rows").inner_text()
        screenshot(page, "staff-faq-list")

        # The editor edits and submits; the review panel is not theirs.
        page.goto(base + "/staff/faqs/WEB-001")
        page.locator("#f-question").wait_for()
        assert page.locator("#review-panel").is_hidden()
        page.locator("#f-answer").fill("经单元三分之二以上业主书面同意。")
        page.locator("#save").click()
        page.locator("#toast").filter(has_text="已保存").wait_for()
        page.locator("#submit-review").click()
        page.locator("#status-badge").filter(has_text="待审核").wait_for()

        # The reviewer must tick the 保密审查 box before approving, then publishes.
        page.locator("#logout").click()
        page.locator("#login-key").fill(keys["reviewer"])
        page.locator("#login-key").press("Enter")
        page.locator("#review-panel").wait_for(state="visible")
        page.locator("#approve").click()
        page.locator("#review-error").filter(has_text="保密审查").wait_for()
        assert client.get("/v1/faqs/WEB-001", headers=bearer(keys["operator"])).json()["confidentiality_checked_by"] is None
        page.locator("#confidentiality").check()
        page.locator("#approve").click()
        page.locator("#publish").wait_for(state="visible")
        screenshot(page, "staff-faq-review")
        page.locator("#publish").click()
        page.locator("#status-badge").filter(has_text="已发布").wait_for()
        page.locator("#history-rows").filter(has_text="审核通过（保密审查）").wait_for()
        assert client.get("/v1/faqs/WEB-001", headers=bearer(keys["operator"])).json()["status"] == "published"

        page.goto(base + "/staff/analytics")
        page.locator("#analytics-status").filter(has_text="没有记录").wait_for()
        screenshot(page, "staff-analytics")
        assert page.evaluate("window.__pwned") is None
        assert errors == []
    finally:
        context.close()

def test_publish_with_the_check_reviews_and_publishes_in_one_step(api):
    client, keys = api
    faq_id = client.post("/v1/faqs", json={"question": "一步发布", "answer": "答案"}, headers=bearer(keys["editor"])).json()["faq_id"]
    assert client.post(f"/v1/faqs/{faq_id}/publish", json={"confidentiality_checked": False}, headers=bearer(keys["reviewer"])).status_code == 409
    r = client.post(f"/v1/faqs/{faq_id}/publish", json={"confidentiality_checked": True}, headers=bearer(keys["reviewer"]))
    assert r.status_code == 200 and r.json()["status"] == "published" and r.json()["confidentiality_checked_by"] == "李审核"
    actions = [(a["action"], a["actor"]) for a in client.get(f"/v1/faqs/{faq_id}/audit", headers=bearer(keys["operator"])).json()["audit"]]
    assert actions == [("create", "王编辑"), ("review", "李审核"), ("publish", "李审核")]


# --------------------------------------------------------------------------------------------- the CLI equivalents
def policyqa(*args: str, kb: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("policyqa")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "qa_service.cli"]
    return subprocess.run([*command, *args, "--kb", str(kb)], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"})


def test_cli_imports_publishes_as_a_named_reviewer_lists_and_exports(tmp_path):
    kb = tmp_path / "kb"
    r = policyqa("faq", "import", str(SAMPLE), "--as", "王编辑", kb=kb)
    assert r.returncode == 0, r.stderr
    assert "imported 10" in r.stdout
    rows = sample_rows()
    rows[3][2] = ""
    bad = tmp_path / "bad.csv"
    bad.write_bytes(sheet(rows))
    r = policyqa("faq", "import", str(bad), "--as", "王编辑", kb=kb)
    assert r.returncode == 1 and "row 4" in r.stderr and "答案" in r.stderr and "updated 9" in r.stdout

    r = policyqa("faq", "publish", "FAQ-004", "--as", "李审核", kb=kb)
    assert r.returncode == 1 and "--confidentiality-checked" in r.stderr
    r = policyqa("faq", "publish", "FAQ-004", "--as", "王编辑", "--confidentiality-checked", kb=kb)
    assert r.returncode == 1 and "author" in r.stderr
    r = policyqa("faq", "publish", "FAQ-004", "--as", "李审核", "--confidentiality-checked", kb=kb)
    assert r.returncode == 0, r.stderr

    r = policyqa("faq", "list", "--status", "published", kb=kb)
    assert r.returncode == 0 and "FAQ-004" in r.stdout and "FAQ-005" not in r.stdout
    out = tmp_path / "faq.xlsx"
    r = policyqa("faq", "export", str(out), kb=kb)
    assert r.returncode == 0
    exported = read_faq_sheet(out.read_bytes(), out.name)
    assert exported.errors == [] and len(exported.entries) == 10

    from knowledge_base.faqs import FaqService

    audit = FaqService(KnowledgeBase(kb)).audit("FAQ-004")
    assert [(a["action"], a["actor"]) for a in audit] == [("import", "王编辑"), ("review", "李审核"), ("publish", "李审核")]
