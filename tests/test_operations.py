"""What an operator sees (issue 11, item 2): Prometheus metrics that move with requests, liveness and readiness, JSON
access logs without question text, and a backup that restores into a knowledge base answering the same."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from knowledge_base.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))

SEARCH_MARKER = "运维测试专用查询词"


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if not m or m.group(1) != name:
            continue
        got = ",".join(sorted(p for p in (m.group(2) or "").split(",") if p))
        if got == want:
            return float(m.group(3))
    return 0.0


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read().decode("utf-8")


def post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body, ensure_ascii=False).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def server(small_kb, tmp_path_factory):
    from browser_support import ApiServer, copy_kb

    kb_dir = copy_kb(small_kb, tmp_path_factory.mktemp("ops-served") / "kb")
    with ApiServer(kb_dir, name="ops", env={"POLICYQA_METRICS": "public"}) as api:  # a scraper without a key
        yield api


@pytest.mark.model
def test_metrics_move_with_requests_answers_refusals_and_faq_hits(server):
    before = get(server.url + "/metrics")
    answered = post_json(server.url + "/v1/ask", {"question": "失业保险金的标准由谁确定？"})
    refused = post_json(server.url + "/v1/ask", {"question": "今天股市行情怎么样？", "channel": "hotline"})
    faq = post_json(server.url + "/v1/ask", {"question": "失业保险金能领多长时间？", "channel": "newmedia"})
    assert answered["answered"] and not refused["answered"] and faq["faq_id"] == "FAQ-004"
    after = get(server.url + "/metrics")

    def moved(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert moved("policyqa_requests_total", route="/v1/ask", method="POST", status="200") == 3
    assert moved("policyqa_answers_total", channel="web", outcome="answered") == 1
    assert moved("policyqa_refusals_total", channel="hotline") == 1
    assert moved("policyqa_faq_hits_total", channel="newmedia") == 1
    assert moved("policyqa_answer_stage_seconds_count", stage="encode") == 3
    assert moved("policyqa_answer_stage_seconds_count", stage="total") == 3
    assert metric(after, "policyqa_index_generation") >= 1
    assert metric(after, "policyqa_documents") >= 4 and metric(after, "policyqa_chunks") > 50


@pytest.mark.model
def test_the_access_log_is_json_and_holds_no_question_text(server):
    get(server.url + "/v1/search?q=" + urllib.request.quote(SEARCH_MARKER + " 13812345678"))
    post_json(server.url + "/v1/ask", {"question": SEARCH_MARKER + "失业保险"})
    time.sleep(0.5)
    log = server.log_tail(200_000)
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    routes = {(entry["method"], entry["route"], entry["status"]) for entry in lines}
    assert ("GET", "/v1/search", 200) in routes and ("POST", "/v1/ask", 200) in routes
    assert SEARCH_MARKER not in log and "13812345678" not in log


def test_rate_limited_requests_are_counted(tmp_path):
    from knowledge_base.store import KnowledgeBase
    from qa_service.app import create_app

    with TestClient(create_app(kb=KnowledgeBase(tmp_path / "kb"), settings=Settings(rate_limit_per_minute=2, metrics="public"))) as c:
        statuses = [c.get("/v1/documents").status_code for _ in range(4)]
        assert statuses.count(429) == 2
        assert metric(c.get("/metrics").text, "policyqa_rate_limited_total") == 2


@pytest.mark.model
def test_liveness_at_once_readiness_once_the_knowledge_base_is_loaded(small_kb, tmp_path):
    from knowledge_base.store import KnowledgeBase
    from qa_service.app import create_app

    kb_dir = shutil.copytree(small_kb, tmp_path / "kb")
    with TestClient(create_app(kb=KnowledgeBase(kb_dir), settings=Settings(rate_limit_per_minute=0))) as c:
        assert c.get("/livez").status_code == 200
        first = c.get("/readyz")
        assert first.status_code == 503 and first.json()["error"] == "not_ready"
        deadline = time.monotonic() + 120
        while (r := c.get("/readyz")).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert r.status_code == 200 and r.json()["generation"] >= 1 and r.json()["documents"] >= 4
    with TestClient(create_app(kb=KnowledgeBase(tmp_path / "empty"), settings=Settings(rate_limit_per_minute=0))) as c:
        assert c.get("/livez").status_code == 200
        for _ in range(10):
            assert c.get("/readyz").status_code == 503
            time.sleep(0.1)


# ------------------------------------------------------------------ backup and restore
def policyqa(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("policyqa")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "qa_service.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"})


@pytest.mark.model
def test_backup_restores_into_a_knowledge_base_that_answers_the_same(small_kb, tmp_path):
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    source = shutil.copytree(small_kb, tmp_path / "kb")
    backup_file = tmp_path / "backups" / "kb.sqlite3"
    r = policyqa("kb", "backup", str(backup_file), "--kb", str(source))
    assert r.returncode == 0, r.stderr
    assert policyqa("kb", "backup", str(backup_file), "--kb", str(source)).returncode == 1  # never overwrites
    restored_dir = tmp_path / "restored"
    r = policyqa("kb", "restore", str(backup_file), "--kb", str(restored_dir))
    assert r.returncode == 0, r.stderr
    assert "generation" in r.stdout
    assert policyqa("kb", "restore", str(backup_file), "--kb", str(restored_dir)).returncode == 1  # not over a KB

    original, restored = KnowledgeBase(source), KnowledgeBase(restored_dir)
    assert restored.counts() == original.counts() and restored.state().generation == original.state().generation
    settings = Settings()
    for question in ("失业保险金的标准由谁确定？", "春节放几天假？"):
        a = QAEngine(original, settings).ask(question, record=False)
        b = QAEngine(restored, settings).ask(question, record=False)
        assert (a.answer, [c.doc_id for c in a.citations]) == (b.answer, [c.doc_id for c in b.citations])


def test_restore_refuses_a_file_that_is_not_a_backup(tmp_path):
    bogus = tmp_path / "notes.sqlite3"
    bogus.write_text("not a database", encoding="utf-8")
    r = policyqa("kb", "restore", str(bogus), "--kb", str(tmp_path / "kb"))
    assert r.returncode == 1 and "error:" in r.stderr and "not a policyqa backup" in r.stderr
