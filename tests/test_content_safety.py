"""Content safety (issue 11): a question containing a blocked word or pattern is refused with a fixed reply pointing
to 12345 on every channel, logged with its category, and never answered from the knowledge base; the list is
staff-managed (admins), validated and audited; documents and FAQ answers containing a blocked word are reported at
ingest and import; analytics count blocked questions by category. Through a real server and a real database.
"""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from browser_support import bearer

from knowledge_base.query_log import QueryLogRepository
from knowledge_base.safety import (
    DEFAULT_TERMS,
    BlockedTerm,
    Blocklist,
    BlocklistService,
    ContentScreen,
    SafetyError,
    TermInput,
    screening_text,
)
from knowledge_base.models import Actor
from knowledge_base.store import KnowledgeBase

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
ANSWERABLE = "失业保险金最长可以领取多长时间？"  # answered from 失业保险条例 in curation_kb


@pytest.fixture(scope="module")
def client(safety_client):
    return safety_client


def logged(safety_server, query_id: str):
    return QueryLogRepository(KnowledgeBase(safety_server.kb_dir)).get(query_id)


# ---------------------------------------------------------------------------------------------- matching
DEFAULTS = Blocklist([BlockedTerm(i + 1, p, r, c) for i, (p, r, c, _n) in enumerate(DEFAULT_TERMS)])


@pytest.mark.parametrize("question, category", [
    ("你们这帮狗官", "abuse"),
    ("你们这帮狗 官", "abuse"),  # a space between the characters
    ("你们这帮狗.官！", "abuse"),  # punctuation
    ("你们这帮狗　官", "abuse"),  # an ideographic (full-width) space
    ("你们这帮狗＊官", "abuse"),  # a full-width symbol
    ("你們這幫狗官", "abuse"),  # traditional characters
    ("狗\u200b官", "abuse"),  # a zero-width space
    ("法 輪 功 是什么", "political"),
    ("代办社保卡，保证包过", "fraud"),  # the pattern 代办.{0,6}包过
    ("ＳＨＵＡ刷单返利", "fraud"),
])
def test_evasion_variants_are_still_blocked(question, category):
    found = DEFAULTS.match(question)
    assert found is not None and found.category == category, (question, found)


@pytest.mark.parametrize("question", [
    "失业保险金能领多长时间？",
    "去哪里开具死亡证明？",  # not 去死
    "平台独立运营的企业怎么交社保？",  # not 台独
    "发票管理办法对代开发票有什么规定？",  # a legal service, not fraud
    "骗取失业保险金会受到什么处罚？",  # asking about fraud is a policy question
])
def test_ordinary_questions_are_not_blocked(question):
    assert DEFAULTS.match(question) is None


def test_the_default_list_does_not_touch_the_corpus_or_the_gold_questions():
    texts = [p for p in (SHARED / "corpus").rglob("*") if p.suffix in (".md", ".txt", ".html")]
    texts += list((SHARED / "eval").rglob("*.jsonl")) + [SHARED / "faq" / "sample_faq.csv"]
    hits = {str(p): DEFAULTS.find_all(p.read_text(encoding="utf-8", errors="ignore")) for p in texts}
    assert len(texts) > 1000
    assert not {p: h for p, h in hits.items() if h}


def test_screening_text_folds_width_script_case_and_drops_separators():
    assert screening_text("Ｆａ 輪-功 ABC") == "fa轮功abc"


def test_a_change_is_seen_by_another_server_after_its_reload_interval(tmp_path):
    kb = KnowledgeBase(tmp_path / "kb")
    now = [0.0]
    other = ContentScreen(kb, reload_interval=5.0, clock=lambda: now[0])  # another replica on the same database
    assert other.run("这个窗口的人真是饭桶") is None
    BlocklistService(kb).add(TermInput("饭桶", category="abuse"), Actor("系统管理员", key_id=1))
    now[0] = 1.0
    assert other.run("这个窗口的人真是饭桶") is None  # within the interval: the list it has
    now[0] = 6.0
    assert other.run("这个窗口的人真是饭桶").category == "abuse"


def test_the_seed_is_written_once_and_an_emptied_list_stays_empty(tmp_path):
    kb = KnowledgeBase(tmp_path / "kb")
    service = BlocklistService(kb)
    assert len(service.list()) == len(DEFAULT_TERMS)
    BlocklistService(kb).ensure_seeded()  # a second server starting
    assert len(service.list()) == len(DEFAULT_TERMS)
    admin = Actor("系统管理员", key_id=1)
    for term in service.list():
        service.delete(term.term_id, admin)
    assert service.list() == []
    actions = [a["action"] for a in service.audit(limit=1000)]
    assert actions.count("seed") == 1 and actions.count("delete") == len(DEFAULT_TERMS)


def test_a_deleted_terms_id_is_never_reused_so_the_audit_stays_unambiguous(tmp_path):
    service = BlocklistService(KnowledgeBase(tmp_path / "kb"))
    admin = Actor("系统管理员", key_id=1)
    first = service.add(TermInput("饭桶", category="abuse"), admin)
    service.delete(first.term_id, admin)
    second = service.add(TermInput("饭桶", category="other"), admin)
    assert second.term_id != first.term_id
    assert [a["action"] for a in service.audit() if a["term_id"] == first.term_id] == ["delete", "create"]


@pytest.mark.parametrize("pattern, is_regex, reason", [
    ("(", True, "正则表达式有误"),
    ("[a-", True, "正则表达式有误"),
    (".*", True, "空白内容"),
    ("保险", False, "普通问题"),
    ("\\w+", True, "普通问题"),
    ("傻", False, "至少2个字"),
    (" ，。 ", False, "至少2个字"),
])
def test_an_invalid_or_overbroad_term_is_refused(tmp_path, pattern, is_regex, reason):
    service = BlocklistService(KnowledgeBase(tmp_path / "kb"))
    with pytest.raises(SafetyError) as e:
        service.add(TermInput(pattern, is_regex, "abuse"), Actor("系统管理员", key_id=1))
    assert e.value.status == 422 and reason in str(e.value)


# ---------------------------------------------------------------------------------------------- every channel
@pytest.mark.parametrize("channel", ["web", "hotline", "newmedia"])
def test_a_blocked_question_is_refused_and_logged_with_its_category(client, safety_server, channel):
    clean = client.post("/v1/ask", json={"question": ANSWERABLE, "channel": channel}).json()
    assert clean["answered"] and clean["citations"]  # the same question without the word is answered
    r = client.post("/v1/ask", json={"question": ANSWERABLE + "你们这帮狗 官", "channel": channel})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["answered"] is False and body["citations"] == [] and body["faq_id"] is None
    assert body["blocked"] == {"category": "abuse", "label": "辱骂"}
    assert "12345" in body["answer"] and "失业保险" not in body["answer"]
    if channel == "hotline":
        assert "辱骂" in body["script"]["suggestion"] and "12345" in body["script"]["closing"]
    row = logged(safety_server, body["query_id"])
    assert row.blocked_category == "abuse" and row.channel == channel and not row.answered
    assert row.embedding is None and row.top_doc_id is None and row.citations == []  # nothing was encoded or retrieved
    assert logged(safety_server, clean["query_id"]).blocked_category is None


def test_chat_completions_and_search_are_screened_too(client):
    r = client.post("/v1/chat/completions", json={"model": "policyqa-web", "messages": [
        {"role": "user", "content": "法轮功" + ANSWERABLE}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["policyqa"]["blocked"] == "political" and body["policyqa"]["citations"] == []
    assert "12345" in body["choices"][0]["message"]["content"]
    s = client.get("/v1/search", params={"q": "失业保险金 狗官"}).json()
    assert s["results"] == [] and s["blocked"]["category"] == "abuse" and "12345" in s["message"]
    assert client.get("/v1/search", params={"q": "失业保险金"}).json()["results"]


# ---------------------------------------------------------------------------------------------- the staff list
def test_staff_manage_the_list_and_each_change_applies_at_once_and_is_audited(client, safety_server):
    admin = bearer(safety_server.keys["admin"])
    question = "这个窗口的人都是饭桶，失业保险金怎么领"
    assert client.post("/v1/ask", json={"question": question}).json().get("blocked") is None
    r = client.post("/v1/safety/terms", headers=admin, json={"pattern": "饭 桶", "category": "abuse", "note": "测试"})
    assert r.status_code == 201, r.text
    term = r.json()
    assert term["pattern"] == "饭 桶" and term["label"] == "辱骂" and term["created_by"] == "系统管理员"
    assert client.post("/v1/ask", json={"question": question}).json()["blocked"]["category"] == "abuse"
    check = client.post("/v1/safety/check", headers=admin, json={"text": "饭。桶"}).json()
    assert check["blocked"] and check["term_id"] == term["id"]
    r = client.patch(f"/v1/safety/terms/{term['id']}", headers=admin, json={"pattern": "饭桶", "category": "other"})
    assert r.status_code == 200 and r.json()["category"] == "other"
    assert client.post("/v1/safety/terms", headers=admin, json={"pattern": "饭桶", "category": "abuse"}).status_code == 409
    assert client.delete(f"/v1/safety/terms/{term['id']}", headers=admin).status_code == 200
    assert client.post("/v1/ask", json={"question": question}).json().get("blocked") is None
    audit = client.get("/v1/safety/audit", headers=admin).json()["audit"]
    mine = [a for a in audit if a["term_id"] == term["id"]]
    assert [a["action"] for a in mine] == ["delete", "edit", "create"]
    assert all(a["actor"] == "系统管理员" for a in mine)
    assert mine[1]["before"]["pattern"] == "饭 桶" and mine[1]["after"]["pattern"] == "饭桶"


def test_an_invalid_regex_is_a_4xx_with_a_message(client, safety_server):
    admin = bearer(safety_server.keys["admin"])
    r = client.post("/v1/safety/terms", headers=admin, json={"pattern": "代办(包过", "is_regex": True, "category": "fraud"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request" and "正则表达式有误" in r.json()["message"]
    r = client.post("/v1/safety/terms", headers=admin, json={"pattern": ".?", "is_regex": True, "category": "fraud"})
    assert r.status_code == 422 and "空白内容" in r.json()["message"]
    r = client.post("/v1/safety/terms", headers=admin, json={"pattern": "饭桶", "category": "rude"})
    assert r.status_code == 422 and "未知类别" in r.json()["message"]
    r = client.patch("/v1/safety/terms/999999", headers=admin, json={"pattern": "饭桶", "category": "abuse"})
    assert r.status_code == 404 and set(r.json()) == {"error", "message"}
    assert client.delete("/v1/safety/terms/9223372036854775808", headers=admin).status_code == 422


def test_only_admins_manage_the_list(client, safety_server):
    body = {"pattern": "饭桶", "category": "abuse"}
    assert client.get("/v1/safety/terms").status_code == 401
    for role in ("operator", "editor_a", "reviewer_b"):
        headers = bearer(safety_server.keys[role])
        assert client.get("/v1/safety/terms", headers=headers).status_code == 403
        assert client.post("/v1/safety/terms", headers=headers, json=body).status_code == 403
    listed = client.get("/v1/safety/terms", headers=bearer(safety_server.keys["admin"])).json()
    assert {c["id"] for c in listed["categories"]} >= {"abuse", "political", "fraud"}
    assert {"狗官", "法轮功", "代办.{0,6}包过"} <= {t["pattern"] for t in listed["terms"]}


# ---------------------------------------------------------------------------------------------- ingest and import
def test_faq_answers_with_a_blocked_word_are_reported_at_import_not_changed(client, safety_server):
    rows = [["编号", "问题", "答案", "主管部门"],
            ["SAFE-001", "办理居住证需要什么材料？", "请勿相信办假证的小广告，居住证须到派出所申领。", "市住建局"],
            ["SAFE-002", "公积金怎么提取？", "凭身份证和购房合同到管理中心办理。", "市住建局"]]
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    r = client.post("/v1/faqs/import", headers=bearer(safety_server.keys["editor_a"]),
                    files={"file": ("faq.csv", out.getvalue().encode("utf-8"))})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported"] == 2 and body["errors"] == []
    assert body["warnings"] == [{"faq_id": "SAFE-001", "category": "fraud", "label": "诈骗", "pattern": "办假证"}]
    stored = client.get("/v1/faqs/SAFE-001", headers=bearer(safety_server.keys["editor_a"])).json()
    assert stored["answer"] == rows[1][2]


def test_documents_with_a_blocked_word_are_reported_at_ingest(tmp_path, curation_kb):
    from browser_support import copy_kb

    kb_dir = copy_kb(curation_kb, tmp_path / "kb")
    doc = tmp_path / "关于防范诈骗的提示.txt"
    doc.write_text("关于防范诈骗的提示\n\n近期有人以“代办社保卡，三天包过”为名骗取钱财，请群众提高警惕。\n", encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "POLICYQA_KB": str(kb_dir)}
    policyqa = Path(sys.executable).with_name("policyqa")
    command = [str(policyqa)] if policyqa.exists() else [sys.executable, "-m", "qa_service.cli"]
    result = subprocess.run([*command, "ingest", str(doc), "--kb", str(kb_dir)], env=env, capture_output=True, text=True,
                            timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning:" in result.stderr and "关于防范诈骗的提示" in result.stderr and "诈骗" in result.stderr
    kb = KnowledgeBase(kb_dir)
    (doc_id,) = kb.docs_at_path(str(doc.resolve()))
    stored, _sections = kb.document(doc_id)
    assert "三天包过" in stored.text  # reported, not changed


# ---------------------------------------------------------------------------------------------- analytics
def test_analytics_count_blocked_questions_by_category_apart_from_the_groups(client, safety_server):
    for q in ("草泥马，公积金怎么取", "法轮大法好", "刷单返利靠谱吗"):
        assert client.post("/v1/ask", json={"question": q}).json()["blocked"]
    board = client.get("/v1/analytics/dashboard", params={"days": 7}, headers=bearer(safety_server.keys["operator"])).json()
    counts = {b["category"]: b["count"] for b in board["blocked"]}
    assert counts.get("abuse", 0) >= 1 and counts.get("political", 0) >= 1 and counts.get("fraud", 0) >= 1
    assert {b["label"] for b in board["blocked"]} >= {"辱骂", "涉政敏感", "诈骗"}
    assert board["totals"]["blocked"] == sum(counts.values())
    groups = client.get("/v1/analytics/questions", params={"kind": "unanswered", "days": 7},
                        headers=bearer(safety_server.keys["operator"])).json()["groups"]
    shown = " ".join(" ".join(g["examples"]) + g["representative"] for g in groups)
    assert "草泥马" not in shown and "法轮" not in shown and "刷单" not in shown
