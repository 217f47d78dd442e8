"""The FAQ lifecycle end to end, against a real server over a real knowledge base: import the sample sheet,
publish FAQ-004 as a reviewer with the 保密审查, watch the public /v1/ask answer from it within seconds
without a restart, retire it and watch that stop; every change audited with who, when, before and after.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "faq" / "sample_faq.csv"
QUESTION = "交了三年失业险失业了能领几个月钱"
LIVE_WITHIN = 5.0  # seconds, the bound for a publish or retire to reach the public channels

pytestmark = pytest.mark.model


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)  # the audit log's times are naive UTC


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def staff(curation_server):
    with httpx.Client(base_url=curation_server.url, timeout=120) as client:
        yield client, curation_server.keys


def ask(client: httpx.Client, question: str = QUESTION) -> dict:
    r = client.post("/v1/ask", json={"question": question, "channel": "web"})
    assert r.status_code == 200, r.text
    return r.json()


def seconds_until(client: httpx.Client, condition, question: str = QUESTION, timeout: float = 15.0) -> float:
    """Ask repeatedly until `condition(answer)` holds; the seconds it took (inf if it never did)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition(ask(client, question)):
            return time.monotonic() - start
        time.sleep(0.2)
    return float("inf")


def test_publishing_faq_004_answers_within_seconds_and_retiring_it_stops(staff):
    client, keys = staff
    r = client.post("/v1/faqs/import", files={"file": ("sample_faq.csv", SAMPLE.read_bytes(), "text/csv")},
                    headers=bearer(keys["editor"]))
    assert r.status_code == 200 and r.json()["errors"] == []
    assert r.json()["imported"] == 10
    drafts = client.get("/v1/faqs", params={"status": "draft"}, headers=bearer(keys["operator"])).json()["faqs"]
    assert {f["faq_id"] for f in drafts} >= {f"FAQ-{n:03d}" for n in range(1, 11)}

    # A draft is never served on a public channel.
    before = ask(client)
    assert before["faq_id"] != "FAQ-004"
    assert all(c.get("kind") != "faq" for c in before["citations"])

    assert client.post("/v1/faqs/FAQ-004/submit", headers=bearer(keys["editor"])).json()["status"] == "in_review"
    assert client.post("/v1/faqs/FAQ-004/publish", headers=bearer(keys["editor"])).status_code == 403
    r = client.post("/v1/faqs/FAQ-004/review", json={"confidentiality_checked": True}, headers=bearer(keys["reviewer"]))
    assert r.status_code == 200 and r.json()["confidentiality_checked_by"] == "李审核"
    assert ask(client)["faq_id"] != "FAQ-004"  # reviewed is not yet published
    r = client.post("/v1/faqs/FAQ-004/publish", headers=bearer(keys["reviewer"]))
    assert r.status_code == 200 and r.json()["status"] == "published"

    took = seconds_until(client, lambda a: a["faq_id"] == "FAQ-004")
    assert took <= LIVE_WITHIN, f"FAQ-004 not served {LIVE_WITHIN} s after publishing"
    answer = ask(client)
    assert answer["answered"] and "12个月" in answer["answer"]
    faq_citation = next(c for c in answer["citations"] if c["kind"] == "faq")
    assert faq_citation["source_titles"] == ["失业保险条例"]

    r = client.post("/v1/faqs/FAQ-004/retire", headers=bearer(keys["reviewer"]))
    assert r.status_code == 200 and r.json()["status"] == "retired"
    took = seconds_until(client, lambda a: a["faq_id"] != "FAQ-004")
    assert took <= LIVE_WITHIN, f"FAQ-004 still served {LIVE_WITHIN} s after retiring"

    audit = client.get("/v1/faqs/FAQ-004/audit", headers=bearer(keys["operator"])).json()["audit"]
    assert [(a["action"], a["actor"]) for a in audit] == [
        ("import", "王编辑"), ("submit", "王编辑"), ("review", "李审核"), ("publish", "李审核"), ("retire", "李审核"),
    ]
    assert [(a["before"] or {}).get("status") for a in audit] == [None, "draft", "in_review", "in_review", "published"]
    assert [a["after"]["status"] for a in audit] == ["draft", "in_review", "in_review", "published", "retired"]


def test_editing_a_published_entry_takes_it_off_the_air_until_reviewed_again(staff):
    client, keys = staff
    question = "申领居住证需要什么条件？"
    r = client.post("/v1/faqs/import", files={"file": ("sample_faq.csv", SAMPLE.read_bytes(), "text/csv")},
                    headers=bearer(keys["editor"]))
    assert r.status_code == 200
    client.post("/v1/faqs/FAQ-006/review", json={"confidentiality_checked": True}, headers=bearer(keys["reviewer"]))
    assert client.post("/v1/faqs/FAQ-006/publish", headers=bearer(keys["reviewer"])).json()["status"] == "published"
    assert seconds_until(client, lambda a: a["faq_id"] == "FAQ-006", question, timeout=10) <= LIVE_WITHIN

    edited = client.patch("/v1/faqs/FAQ-006", json={"answer": "（修改中）"}, headers=bearer(keys["editor"])).json()
    assert edited["status"] == "draft"
    took = seconds_until(client, lambda a: a["faq_id"] != "FAQ-006", question, timeout=10)
    assert took <= LIVE_WITHIN
    assert "修改中" not in ask(client, question)["answer"]


def test_every_change_is_audited_with_who_when_before_and_after(staff):
    client, keys = staff
    started = utcnow() - timedelta(seconds=5)
    r = client.post("/v1/faqs", json={"faq_id": "AUD-001", "question": "审计测试问题", "answer": "第一版答案"},
                    headers=bearer(keys["editor"]))
    assert r.status_code == 201
    client.patch("/v1/faqs/AUD-001", json={"answer": "第二版答案", "variants": ["审计问法"]}, headers=bearer(keys["reviewer2"]))
    client.post("/v1/faqs/AUD-001/review", json={"confidentiality_checked": True}, headers=bearer(keys["reviewer"]))
    client.post("/v1/faqs/AUD-001/publish", headers=bearer(keys["reviewer"]))
    audit = client.get("/v1/faqs/AUD-001/audit", headers=bearer(keys["operator"])).json()["audit"]
    assert [(a["action"], a["actor"]) for a in audit] == [
        ("create", "王编辑"), ("edit", "赵审核"), ("review", "李审核"), ("publish", "李审核"),
    ]
    for a in audit:
        at = datetime.fromisoformat(a["at"])
        assert started <= at <= utcnow() + timedelta(seconds=5)
    create, edit, review, publish = audit
    assert create["before"] is None and create["after"]["answer"] == "第一版答案" and create["after"]["author"] == "王编辑"
    assert edit["before"]["answer"] == "第一版答案" and edit["after"]["answer"] == "第二版答案"
    assert edit["before"]["variants"] == [] and edit["after"]["variants"] == ["审计问法"]
    assert review["after"]["confidentiality_checked_by"] == "李审核" and review["after"]["confidentiality_checked_at"]
    assert publish["before"]["status"] == "in_review" and publish["after"]["status"] == "published"
