"""Departments (issue 11): staff keys and FAQ entries belong to a 处室/单位; editors and reviewers act only on their
department's entries (403 otherwise), admins on all; the four-eyes rule compares key ids, not names; the FAQ sheet's
主管部门 (else 发布机构) column is the entry's department; analytics filter by department; `policyqa keys create
--department`; an older knowledge base opens with the new columns added. Through a real server and a real database.
"""
from __future__ import annotations

import csv
import io
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from browser_support import bearer
from conftest import DEPT_A, DEPT_B

from knowledge_base.store import KnowledgeBase

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def client(safety_client):
    return safety_client


def new_id(prefix: str = "DEP") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(client, key: str, **fields) -> dict:
    body = {"faq_id": new_id(), "question": "公积金贷款最高额度是多少？", "answer": "以住房公积金管理中心公布的额度为准。", **fields}
    r = client.post("/v1/faqs", headers=bearer(key), json=body)
    assert r.status_code == 201, r.text
    return r.json()


def csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8")


# ---------------------------------------------------------------------------------------------- who may act
def test_an_entry_belongs_to_its_authors_department(client, safety_server):
    entry = create(client, safety_server.keys["editor_b"])
    assert entry["department"] == DEPT_B and entry["author"] == "刘编辑"
    assert entry["author_key_id"] == safety_server.key_ids["editor_b"]
    me = client.get("/v1/me", headers=bearer(safety_server.keys["editor_b"])).json()
    assert me["department"] == DEPT_B


def test_another_departments_editor_and_reviewer_get_403_on_every_step(client, safety_server):
    k = safety_server.keys
    entry = create(client, k["editor_b"])
    path = f"/v1/faqs/{entry['faq_id']}"

    def refused(r):
        assert r.status_code == 403, r.text
        body = r.json()
        assert body["error"] == "forbidden" and DEPT_B in body["message"] and DEPT_A in body["message"]

    refused(client.patch(path, headers=bearer(k["editor_a"]), json={"answer": "改掉"}))  # edit
    refused(client.post(path + "/submit", headers=bearer(k["editor_a"])))  # submit
    assert client.post(path + "/submit", headers=bearer(k["editor_b"])).status_code == 200
    refused(client.post(path + "/review", headers=bearer(k["reviewer_a"]), json={"confidentiality_checked": True}))  # review
    assert client.post(path + "/review", headers=bearer(k["reviewer_b"]), json={"confidentiality_checked": True}).status_code == 200
    refused(client.post(path + "/publish", headers=bearer(k["reviewer_a"])))  # publish
    assert client.post(path + "/publish", headers=bearer(k["reviewer_b"])).status_code == 200
    refused(client.post(path + "/retire", headers=bearer(k["reviewer_a"])))  # retire
    refused(client.patch(path, headers=bearer(k["editor_b"]), json={"department": DEPT_A}))  # give it away
    # Nothing the other department tried left a trace: the audit shows only 市人社局's own steps.
    audit = client.get(path + "/audit", headers=bearer(k["operator"])).json()["audit"]
    assert [a["actor"] for a in audit] == ["刘编辑", "刘编辑", "李审核", "李审核"]
    assert client.get(path, headers=bearer(k["editor_a"])).json()["status"] == "published"  # reading is open
    assert client.post(path + "/retire", headers=bearer(k["reviewer_b"])).status_code == 200


def test_admins_act_on_every_department(client, safety_server):
    k = safety_server.keys
    entry = create(client, k["editor_b"])
    path = f"/v1/faqs/{entry['faq_id']}"
    assert client.patch(path, headers=bearer(k["admin"]), json={"answer": "管理员修改后的答案。"}).status_code == 200
    assert client.post(path + "/submit", headers=bearer(k["admin"])).status_code == 200
    # The admin changed the content last, so another person reviews: 市人社局's reviewer.
    assert client.post(path + "/review", headers=bearer(k["reviewer_b"]), json={"confidentiality_checked": True}).status_code == 200
    assert client.post(path + "/retire", headers=bearer(k["admin"])).status_code == 200
    moved = client.post(path + "/reopen", headers=bearer(k["admin"]))
    assert moved.status_code == 200
    r = client.patch(path, headers=bearer(k["admin"]), json={"department": DEPT_A})
    assert r.status_code == 200 and r.json()["department"] == DEPT_A
    assert client.patch(path, headers=bearer(k["editor_a"]), json={"answer": "住建局接手。"}).status_code == 200
    own = create(client, k["admin"], department=DEPT_B)
    assert own["department"] == DEPT_B


def test_a_department_key_cannot_create_for_another_department(client, safety_server):
    r = client.post("/v1/faqs", headers=bearer(safety_server.keys["editor_a"]),
                    json={"question": "公租房怎么申请？", "answer": "……", "department": DEPT_B})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"


# ---------------------------------------------------------------------------------------------- four eyes by key
def test_a_reviewer_cannot_approve_their_own_entry_compared_by_key(client, safety_server):
    k = safety_server.keys
    entry = create(client, k["zhang_1"])  # 张伟 (key 1) writes it
    path = f"/v1/faqs/{entry['faq_id']}"
    assert entry["author"] == "张伟" and entry["author_key_id"] == safety_server.key_ids["zhang_1"]
    own = client.post(path + "/review", headers=bearer(k["zhang_1"]), json={"confidentiality_checked": True})
    assert own.status_code == 403 and "作者" in own.json()["message"]
    # One-step publish with the 保密审查 is refused for the author's own key as well.
    own = client.post(path + "/publish", headers=bearer(k["zhang_1"]), json={"confidentiality_checked": True})
    assert own.status_code == 403
    # The other reviewer is another key: four eyes are compared by key.
    other = client.post(path + "/review", headers=bearer(k["zhang_2"]), json={"confidentiality_checked": True})
    assert other.status_code == 200, other.text
    assert client.post(path + "/publish", headers=bearer(k["zhang_1"])).status_code == 403
    published = client.post(path + "/publish", headers=bearer(k["zhang_2"]))
    assert published.status_code == 200 and published.json()["status"] == "published"
    actors = [(a["actor"], a["action"]) for a in client.get(path + "/audit", headers=bearer(k["operator"])).json()["audit"]]
    assert actors == [("张伟", "create"), ("张伟（审核）", "review"), ("张伟（审核）", "publish")]
    client.post(path + "/retire", headers=bearer(k["reviewer_b"]))


def test_whoever_last_changed_the_content_cannot_review_it_compared_by_key(client, safety_server):
    k = safety_server.keys
    entry = create(client, k["editor_b"])
    path = f"/v1/faqs/{entry['faq_id']}"
    assert client.patch(path, headers=bearer(k["zhang_1"]), json={"answer": "张伟改过的答案。"}).status_code == 200
    assert client.post(path + "/review", headers=bearer(k["zhang_1"]), json={"confidentiality_checked": True}).status_code == 403
    assert client.post(path + "/review", headers=bearer(k["zhang_2"]), json={"confidentiality_checked": True}).status_code == 200


# ---------------------------------------------------------------------------------------------- import
def test_import_maps_the_department_column(client, safety_server):
    a, b, c = new_id("IMP"), new_id("IMP"), new_id("IMP")
    rows = [["编号", "问题", "答案", "发布机构", "主管部门"],
            [a, "住房公积金怎么提取？", "凭购房合同办理。", "国务院", DEPT_A],  # 主管部门 wins
            [b, "公积金贷款利率是多少？", "按人民银行规定执行。", DEPT_A, ""],  # no 主管部门: its 发布机构
            [c, "失业保险金怎么领？", "到社保经办机构申领。", "国务院", DEPT_B]]  # another department's row
    r = client.post("/v1/faqs/import", headers=bearer(safety_server.keys["editor_a"]),
                    files={"file": ("faq.csv", csv_bytes(rows))})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported"] == 2
    assert len(body["errors"]) == 1 and c in body["errors"][0]["error"] and DEPT_B in body["errors"][0]["error"]
    headers = bearer(safety_server.keys["operator"])
    assert client.get(f"/v1/faqs/{a}", headers=headers).json()["department"] == DEPT_A
    assert client.get(f"/v1/faqs/{b}", headers=headers).json()["department"] == DEPT_A
    assert client.get(f"/v1/faqs/{c}", headers=headers).status_code == 404
    listed = client.get("/v1/faqs", params={"department": DEPT_A, "q": "IMP-"}, headers=headers).json()
    assert {f["faq_id"] for f in listed["faqs"]} >= {a, b}
    assert all(f["department"] == DEPT_A for f in listed["faqs"])
    # The admin imports the other department's row; exported, the column round-trips.
    r = client.post("/v1/faqs/import", headers=bearer(safety_server.keys["admin"]), files={"file": ("faq.csv", csv_bytes(rows))})
    assert r.json()["imported"] == 1 and r.json()["errors"] == []
    from ingest.faq_sheet import read_faq_sheet

    exported = client.get("/v1/faqs/export", headers=headers).content
    departments = {e.faq_id: e.department for e in read_faq_sheet(exported, "faq.xlsx").entries}
    assert departments[a] == DEPT_A and departments[c] == DEPT_B


def test_a_sheet_without_a_department_keeps_entries_where_they_are(client, safety_server):
    faq_id = new_id("KEEP")
    admin = bearer(safety_server.keys["admin"])
    first = [["编号", "问题", "答案", "主管部门"], [faq_id, "公租房怎么申请？", "向街道提出申请。", DEPT_A]]
    assert client.post("/v1/faqs/import", headers=admin, files={"file": ("a.csv", csv_bytes(first))}).json()["imported"] == 1
    again = [["编号", "问题", "答案"], [faq_id, "公租房怎么申请？", "向街道办事处提出申请。"]]
    assert client.post("/v1/faqs/import", headers=admin, files={"file": ("b.csv", csv_bytes(again))}).json()["updated"] == 1
    assert client.get(f"/v1/faqs/{faq_id}", headers=admin).json()["department"] == DEPT_A


# ---------------------------------------------------------------------------------------------- analytics
def test_analytics_filter_by_the_department_of_the_answering_faq(client, safety_server):
    k = safety_server.keys
    question = "住房公积金账户封存后怎么办理转移？"
    entry = create(client, k["editor_b"], question=question, answer="在新单位开户后申请转移，原账户余额一并转入。")
    path = f"/v1/faqs/{entry['faq_id']}"
    assert client.post(path + "/publish", headers=bearer(k["reviewer_b"]), json={"confidentiality_checked": True}).status_code == 200
    answer = {}
    for _ in range(30):  # the server picks the published entry up within its reload interval
        answer = client.post("/v1/ask", json={"question": question}).json()
        if answer["faq_id"] == entry["faq_id"]:
            break
        time.sleep(0.5)
    assert answer["faq_id"] == entry["faq_id"], answer
    headers = bearer(k["operator"])

    def groups(department):
        r = client.get("/v1/analytics/questions", params={"kind": "top", "days": 7, "department": department}, headers=headers)
        assert r.status_code == 200, r.text
        return [g for g in r.json()["groups"] if entry["faq_id"] in g["faq_ids"]]

    assert groups(DEPT_B) and not groups(DEPT_A)
    board = client.get("/v1/analytics/dashboard", params={"days": 7, "department": DEPT_B}, headers=headers).json()
    assert board["totals"]["asks"] >= 1 and DEPT_B in board["departments"]
    other = client.get("/v1/analytics/dashboard", params={"days": 7, "department": "市民政局"}, headers=headers).json()
    assert other["totals"]["asks"] == 0
    client.post(path + "/retire", headers=bearer(k["reviewer_b"]))


# ---------------------------------------------------------------------------------------------- keys and schema
def test_keys_create_takes_a_department_on_the_command_line(tmp_path):
    kb_dir = tmp_path / "kb"
    policyqa = Path(sys.executable).with_name("policyqa")
    command = [str(policyqa)] if policyqa.exists() else [sys.executable, "-m", "qa_service.cli"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "POLICYQA_KB": str(kb_dir)}
    made = subprocess.run([*command, "keys", "create", "--role", "editor", "--name", "王编辑", "--department", DEPT_A,
                           "--kb", str(kb_dir)], env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert made.returncode == 0, made.stderr
    assert DEPT_A in made.stderr and made.stdout.strip().startswith("pqa_")
    from qa_service.auth import KeyService

    identity = KeyService(KnowledgeBase(kb_dir)).verify(made.stdout.strip())
    assert identity.department == DEPT_A and identity.actor.department == DEPT_A
    listed = subprocess.run([*command, "keys", "list", "--kb", str(kb_dir)], env=env, capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert DEPT_A in listed.stdout


def test_an_older_knowledge_base_opens_with_the_new_columns_added(tmp_path):
    """A database made before issue 11 (no department, key-id or blocked-category columns) opens: the columns are
    added, its rows keep working, and its name-only authors still meet the four-eyes rule by name."""
    from knowledge_base.faqs import FaqError, FaqService
    from knowledge_base.models import Actor, FaqEntry
    from qa_service.auth import KeyService, Role

    kb_dir = tmp_path / "kb"
    kb = KnowledgeBase(kb_dir)
    key = KeyService(kb).create("李审核", Role.REVIEWER)
    FaqService(kb).create(FaqEntry(faq_id="OLD-1", question="公积金怎么提取？", answer="凭合同办理。"), actor="李审核")
    kb.engine.dispose()
    db = sqlite3.connect(kb_dir / "policyqa.sqlite3")
    for table, column in (("api_keys", "department"), ("faqs", "department"), ("faqs", "author_key_id"),
                          ("faq_audit", "actor_key_id"), ("query_log", "blocked_category")):
        for (index,) in db.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name=? AND sql LIKE ?",
                                   (table, f"%{column}%")).fetchall():
            db.execute(f'DROP INDEX "{index}"')
        db.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
    for table in ("blocked_terms", "blocked_term_audit", "blocked_term_seed"):
        db.execute(f'DROP TABLE "{table}"')
    db.execute("UPDATE alembic_version SET version_num = '0002_query_log_follow_ups'")  # the revision before issue 11's
    db.commit()
    db.close()

    reopened = KnowledgeBase(kb_dir)
    columns = {r[1] for r in sqlite3.connect(kb_dir / "policyqa.sqlite3").execute("PRAGMA table_info(faqs)")}
    assert {"department", "author_key_id"} <= columns
    identity = KeyService(reopened).verify(key.token)
    assert identity.name == "李审核" and identity.department is None
    with pytest.raises(FaqError) as e:  # written without a key: the names are compared
        FaqService(reopened).review("OLD-1", actor=identity.actor, confidentiality_checked=True)
    assert e.value.status == 403
    FaqService(reopened).review("OLD-1", actor=Actor("赵审核", key_id=99), confidentiality_checked=True)
