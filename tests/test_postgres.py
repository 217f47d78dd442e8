"""PostgreSQL as the shared store of several replicas (issue 11), on a real server (tests/pg_support.py).

Two `policyqa serve` processes on one database, each with its own empty directory: each builds its indexes from the
tokens and vectors in the database; an FAQ published through one is answered by the other within the reload
interval; a conversation and its feedback span both; an ingest job through the CLI (its own directory, same URL)
is served by both.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from browser_support import ApiServer
from pg_support import wait_for

REPO = Path(__file__).resolve().parents[1]
REGULATIONS = REPO / "qa_service" / "demo" / "corpus" / "regulations"
FIRST_INGEST = ("失业保险条例(1999-01-22).md", "全国年节及纪念日放假办法(2024-11-10).md")
LATER_INGEST = "住房公积金管理条例(2019-03-24).md"
SAMPLE_FAQ = REPO.parent / "shared" / "faq" / "sample_faq.csv"
RELOAD_INTERVAL = 1.0  # the default POLICYQA_RELOAD_INTERVAL
# What a change may take beyond the reload interval to be served: the request that notices it rebuilds the FAQ
# matcher or the indexes (a few chunks here) on 2 shared cores.
SLACK = 4.0

pytestmark = [pytest.mark.model, pytest.mark.postgres]


def policyqa(*args: str, database_url: str | None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    env.pop("POLICYQA_DATABASE_URL", None)
    if database_url:
        env["POLICYQA_DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "qa_service.cli", *args], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=timeout)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Replicas:
    def __init__(self, url: str, job_dir: Path, servers: list[ApiServer], keys: dict[str, str]):
        self.database_url, self.job_dir, self.servers, self.keys = url, job_dir, servers, keys
        self.clients = [httpx.Client(base_url=s.url, timeout=120) for s in servers]


@pytest.fixture(scope="module")
def replicas(postgres, tmp_path_factory):
    from knowledge_base.store import KnowledgeBase
    from qa_service.auth import KeyService, Role

    url = postgres.create_database()
    job_dir = tmp_path_factory.mktemp("pg-ingest-job")
    done = policyqa("ingest", *(str(REGULATIONS / name) for name in FIRST_INGEST), "--kb", str(job_dir), database_url=url)
    assert done.returncode == 0, done.stdout + done.stderr
    keys = KeyService(KnowledgeBase(job_dir, url))
    tokens = {"editor": keys.create("王编辑", Role.EDITOR).token, "reviewer": keys.create("李审核", Role.REVIEWER).token}
    env = {"POLICYQA_DATABASE_URL": url, "POLICYQA_RELOAD_INTERVAL": str(RELOAD_INTERVAL)}
    dirs = [tmp_path_factory.mktemp(f"pg-replica-{n}") / "kb" for n in (1, 2)]
    with ApiServer(dirs[0], env=env, name="pg-replica-1") as one, ApiServer(dirs[1], env=env, name="pg-replica-2") as two:
        r = Replicas(url, job_dir, [one, two], tokens)
        yield r
        for c in r.clients:
            c.close()


def ask(client: httpx.Client, question: str, **extra) -> dict:
    r = client.post("/v1/ask", json={"question": question, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def cites(answer: dict, title: str) -> bool:
    return answer["answered"] and any(c.get("title") == title for c in answer["citations"])


def answer_when(client: httpx.Client, question: str, condition):
    """A probe for wait_for: the answer when `condition(answer)` holds, else None."""
    def probe():
        answer = ask(client, question)
        return answer if condition(answer) else None
    return probe


def test_each_replica_builds_its_indexes_from_the_database(replicas):
    from knowledge_base.indexes import IndexSet

    for server, client in zip(replicas.servers, replicas.clients):
        health = client.get("/healthz").json()
        assert health["generation"] == 1 and health["documents"] == 2
        # its own directory held nothing: the generation's files were built there from the database
        built = IndexSet.load(server.kb_dir / "indexes" / "gen-000001")
        job = IndexSet.load(replicas.job_dir / "indexes" / "gen-000001")  # what the ingest job built as it embedded
        assert np.array_equal(built.chunk_ids, job.chunk_ids) and built.dense.ntotal == job.dense.ntotal == len(job)
        assert np.allclose(built.dense.reconstruct_n(0, len(job)), job.dense.reconstruct_n(0, len(job)))
        assert not (server.kb_dir / "policyqa.sqlite3").exists()
        answer = ask(client, "失业保险金最长能领多长时间？")
        assert cites(answer, "失业保险条例"), answer


def test_an_faq_published_through_one_replica_is_answered_by_the_other_within_the_reload_interval(replicas):
    one, two = replicas.clients
    keys = replicas.keys
    question = "交了三年失业险失业了能领几个月钱"
    r = one.post("/v1/faqs/import", files={"file": ("sample_faq.csv", SAMPLE_FAQ.read_bytes(), "text/csv")},
                 headers=bearer(keys["editor"]))
    assert r.status_code == 200 and r.json()["errors"] == [], r.text
    assert ask(two, question)["faq_id"] != "FAQ-004"  # a draft is never served
    assert one.post("/v1/faqs/FAQ-004/submit", headers=bearer(keys["editor"])).status_code == 200
    assert one.post("/v1/faqs/FAQ-004/review", json={"confidentiality_checked": True},
                    headers=bearer(keys["reviewer"])).status_code == 200
    r = one.post("/v1/faqs/FAQ-004/publish", headers=bearer(keys["reviewer"]))
    assert r.status_code == 200 and r.json()["status"] == "published"

    answer, took = wait_for(answer_when(two, question, lambda a: a["faq_id"] == "FAQ-004"), RELOAD_INTERVAL + SLACK)
    assert took is not None, f"the other replica did not serve FAQ-004 within {RELOAD_INTERVAL + SLACK} s"
    print(f"\nFAQ-004 published through replica 1 was answered by replica 2 after {took:.2f} s")
    assert "12个月" in answer["answer"]
    # the audit trail written through replica 1 is read through replica 2
    audit = two.get("/v1/faqs/FAQ-004/audit", headers=bearer(keys["editor"])).json()["audit"]
    assert [(a["action"], a["actor"]) for a in audit] == [
        ("import", "王编辑"), ("submit", "王编辑"), ("review", "李审核"), ("publish", "李审核")]


def test_a_conversation_and_its_feedback_span_both_replicas(replicas):
    one, two = replicas.clients
    first = ask(one, "国庆节放几天假？")
    assert cites(first, "全国年节及纪念日放假办法")
    # the session id replica 1 issued, and the turn before, are known to the other process
    follow = ask(two, "那春节呢？", session_id=first["session_id"])
    assert follow["session_id"] == first["session_id"]
    assert follow["understood_question"] == "春节放几天假？"  # completed from the turn replica 1 stored
    assert cites(follow, "全国年节及纪念日放假办法")
    r = two.post("/v1/feedback", json={"query_id": first["query_id"], "helpful": False, "comment": "想知道调休"})
    assert r.status_code == 201, r.text  # the question was logged by replica 1
    r = one.post("/v1/feedback", json={"query_id": "no-such-query", "helpful": True})
    assert r.status_code == 404 and set(r.json()) >= {"error", "message"}
    r = one.get("/v1/analytics/questions", params={"kind": "unhelpful"}, headers=bearer(replicas.keys["editor"]))
    assert r.status_code == 200, r.text
    assert any("国庆节放几天假" in g["representative"] for g in r.json()["groups"]), r.json()
    board = two.get("/v1/analytics/dashboard", headers=bearer(replicas.keys["editor"]))  # per-day SQL on PostgreSQL
    assert board.status_code == 200 and sum(board.json()["unhelpful"]) >= 1, board.text
    by_department = two.get("/v1/analytics/dashboard", params={"department": "国务院"}, headers=bearer(replicas.keys["editor"]))
    assert by_department.status_code == 200, by_department.text


def test_a_question_with_a_nul_character_is_answered_and_logged_on_postgresql(replicas):
    from sqlalchemy import select

    from knowledge_base.db import QueryLogRow
    from knowledge_base.store import KnowledgeBase

    one, _ = replicas.clients
    # PostgreSQL's text cannot hold NUL: the answer came back, but its query-log row failed (so did its feedback).
    raw = json.dumps({"question": "失业保险金\u0000最长能领多长时间？"})  # the JSON escape, as a client sends it
    r = one.post("/v1/ask", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["answered"], r.text
    query_id = r.json()["query_id"]
    assert one.post("/v1/feedback", json={"query_id": query_id, "helpful": True}).status_code == 201
    with KnowledgeBase(replicas.job_dir, replicas.database_url).session() as s:
        logged = s.scalar(select(QueryLogRow.question).where(QueryLogRow.query_id == query_id))
    assert logged == "失业保险金最长能领多长时间？"
    r = one.post("/v1/ask", content=json.dumps({"question": "\ud800失业保险"}), headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and set(r.json()) >= {"error", "message"}


def test_the_query_bench_measures_replicas_side_by_side(replicas, tmp_path):
    one, two = (s.url for s in replicas.servers)
    out = tmp_path / "bench.json"
    done = policyqa("bench", "query", "--url", one, "--url", two, "--baseline-url", one, "--requests", "6",
                    "--concurrency", "2", "--label", "PostgreSQL replicas", "--json", str(out), database_url=None)
    assert done.returncode == 0, done.stdout + done.stderr
    groups = json.loads(out.read_text("utf-8"))["groups"]
    both, baseline = groups["PostgreSQL replicas"], groups["baseline"]
    assert both["concurrent"]["servers"] == 2 and baseline["concurrent"]["servers"] == 1
    for g in (both, baseline):
        assert g["concurrent"]["latency"]["n"] == 6 and g["concurrent"]["errors"] == 0 and g["sequential"]["errors"] == 0
        assert g["concurrent"]["latency"]["req_per_s"] > 0


def test_an_ingest_through_the_cli_is_served_by_both_replicas(replicas):
    question = "住房公积金的缴存比例是多少？"
    assert not any(cites(ask(c, question), "住房公积金管理条例") for c in replicas.clients)
    started = time.monotonic()
    done = policyqa("ingest", str(REGULATIONS / LATER_INGEST), "--kb", str(replicas.job_dir),
                    database_url=replicas.database_url)
    assert done.returncode == 0, done.stdout + done.stderr
    committed = time.monotonic()
    for n, client in enumerate(replicas.clients, 1):
        _, took = wait_for(answer_when(client, question, lambda a: cites(a, "住房公积金管理条例")), RELOAD_INTERVAL + SLACK)
        assert took is not None, f"replica {n} does not serve the new document"
        print(f"\nreplica {n} served 住房公积金管理条例 {time.monotonic() - committed:.2f} s after the ingest job "
              f"ended ({committed - started:.1f} s)")
        health = client.get("/healthz").json()
        assert health["generation"] == 2 and health["documents"] == 3


def test_a_sqlite_knowledge_base_copied_into_postgresql_serves_the_same(curation_kb, pg_url, tmp_path):
    import shutil

    from knowledge_base.store import KnowledgeBase
    from qa_service.auth import KeyService, Role

    pilot = KnowledgeBase(shutil.copytree(curation_kb, tmp_path / "pilot"))
    editor = KeyService(pilot).create("王编辑", Role.EDITOR)
    done = policyqa("kb", "copy", "--to", pg_url, "--kb", str(pilot.directory), database_url=None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{pilot.counts()['chunks']} chunks" in done.stdout

    city = KnowledgeBase(tmp_path / "replica", pg_url)
    assert city.counts() == pilot.counts() and city.state().generation == pilot.state().generation
    ours, theirs = city.load_snapshot().indexes, pilot.load_snapshot().indexes  # built here from PostgreSQL's rows
    assert np.array_equal(ours.chunk_ids, theirs.chunk_ids)
    assert np.allclose(ours.dense.reconstruct_n(0, len(ours)), theirs.dense.reconstruct_n(0, len(theirs)))
    keys = KeyService(city)
    assert keys.verify(editor.token).name == "王编辑"  # the copied key works against PostgreSQL
    assert keys.create("李审核", Role.REVIEWER).token  # and ids go on after the copied ones

    again = policyqa("kb", "copy", "--to", pg_url, "--kb", str(pilot.directory), database_url=None)
    assert again.returncode == 1 and "already holds data" in again.stderr and "Traceback" not in again.stderr
    assert city.counts() == pilot.counts()


def test_a_cache_directory_holding_another_databases_generation_is_rebuilt(curation_kb, pg_url, tmp_path):
    """Index directories are a cache keyed by generation number: one reused against another database whose
    generation has the same number must not be served."""
    import shutil

    from knowledge_base.store import KnowledgeBase
    from knowledge_base.transfer import copy_store

    pilot = KnowledgeBase(shutil.copytree(curation_kb, tmp_path / "pilot"))
    copy_store(pilot, pg_url)
    city = KnowledgeBase(tmp_path / "city", pg_url)
    first, second = sorted(d.doc_id for d in pilot.find_documents())
    generation = city.commit_ingest([], encoder=None, remove_doc_ids=[first])  # the city removes one document …
    assert pilot.commit_ingest([], encoder=None, remove_doc_ids=[second]) == generation  # … the pilot the other
    reused = KnowledgeBase(shutil.copytree(pilot.directory, tmp_path / "reused", ignore=shutil.ignore_patterns("*.sqlite3*")),
                           pg_url)
    served = reused.load_snapshot()
    assert served.generation == generation and set(served.chunks.doc_ids) == {second}
    assert np.array_equal(served.indexes.chunk_ids, city.load_snapshot().indexes.chunk_ids)
