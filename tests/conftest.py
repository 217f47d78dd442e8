"""Shared fixtures. Each stage's fixtures sit in their own section."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


# ------------------------------------------------------------------------------------------------------------
# Answering (issue 3): `small_kb`, a small real knowledge base built once per session (~90 chunks, real encoder).
# 失业保险条例; both 全国年节及纪念日放假办法 versions (2013 superseded by 2024); the sister plans of 济南市司法局
# and 济南市财政局; 居住证暂行条例 with a sidecar marking it 依申请公开 (stored, never served); sample_faq.csv
# imported as drafts with FAQ-004 (失业保险金期限) and FAQ-007 (春节) published. Read-only: copy it to write.
# ------------------------------------------------------------------------------------------------------------
SMALL_KB_FILES = (
    "national/行政法规/失业保险条例(1999-01-22).md",
    "national/行政法规/全国年节及纪念日放假办法(2013-12-11).md",
    "national/行政法规/全国年节及纪念日放假办法(2024-11-10).md",
    "plans/000_e71e79a35d633e9d.txt",  # 济南市司法局2025年政务公开工作实施方案
    "plans/003_3946f67f285457c1.txt",  # 2024年济南市财政局政务公开工作要点实施方案
)
SMALL_KB_PRIVATE = "national/行政法规/居住证暂行条例(2015-11-26).md"
SMALL_KB_PUBLISHED_FAQS = ("FAQ-004", "FAQ-007")


@pytest.fixture(scope="session")
def small_kb(tmp_path_factory) -> Path:
    import json
    import shutil

    from knowledge_base.encoder import get_embedder
    from ingest.pipeline import IngestPipeline
    from knowledge_base.faqs import FaqService
    from knowledge_base.store import KnowledgeBase

    corpus = tmp_path_factory.mktemp("small-corpus")
    for rel in (*SMALL_KB_FILES, SMALL_KB_PRIVATE):
        shutil.copy(SHARED / "corpus" / rel, corpus / Path(rel).name)
    private = corpus / Path(SMALL_KB_PRIVATE).name
    (corpus / (private.name + ".meta.json")).write_text(json.dumps({"公开方式": "依申请公开"}, ensure_ascii=False), "utf-8")
    shutil.copy(SHARED / "faq" / "sample_faq.csv", corpus / "sample_faq.csv")
    kb_dir = tmp_path_factory.mktemp("small-kb")
    kb = KnowledgeBase(kb_dir)
    report = IngestPipeline(kb).run([corpus])
    assert not report.failed, [o.error for o in report.failed]
    faqs = FaqService(kb)
    embed = get_embedder().embed_queries
    for faq_id in SMALL_KB_PUBLISHED_FAQS:
        faqs.review(faq_id, actor="test-reviewer", confidentiality_checked=True)
        faqs.publish(faq_id, actor="test-reviewer", embed=embed)
    # The engine encodes questions on onnxruntime, exported once into the cache (about a minute on a cold machine).
    # Do it here, before any server process answers its first question under a client timeout.
    from qa_service.engine import load_query_embedder

    encoder = kb.encoder()
    load_query_embedder(encoder.spec, encoder.backend)
    return kb_dir


# ------------------------------------------------------------------------------------------------------------
# Curation (issue 4): a small real knowledge base and one server over it, shared by test_faq_lifecycle.py and
# test_analytics.py. The two documents are the ones those checks need: 失业保险条例 (FAQ-004's source) and
# 住房公积金管理条例 (the 公积金 questions analytics must group); ~80 chunks, embedded in seconds.
# ------------------------------------------------------------------------------------------------------------
CURATION_DOCUMENTS = ("失业保险条例(1999-01-22).md", "住房公积金管理条例(2019-03-24).md")


@dataclass
class CurationServer:
    url: str
    keys: dict[str, str]  # operator 周话务, editor 王编辑, reviewer 李审核, reviewer2 赵审核, admin 系统管理员
    kb_dir: Path


@pytest.fixture(scope="session")
def curation_kb(tmp_path_factory) -> Path:
    from ingest.pipeline import IngestPipeline
    from knowledge_base.store import KnowledgeBase

    regulations = REPO / "qa_service" / "demo" / "corpus" / "regulations"
    kb_dir = tmp_path_factory.mktemp("curation-kb")
    report = IngestPipeline(KnowledgeBase(kb_dir)).run([regulations / name for name in CURATION_DOCUMENTS])
    assert not report.failed, [o.error for o in report.failed]
    return kb_dir


@pytest.fixture(scope="session")
def curation_server(curation_kb, tmp_path_factory):
    """`policyqa serve` over a private copy of curation_kb (it writes the query log), with one key per role."""
    from browser_support import ApiServer, copy_kb

    from knowledge_base.store import KnowledgeBase
    from qa_service.auth import KeyService, Role

    kb_dir = copy_kb(curation_kb, tmp_path_factory.mktemp("curation-served") / "kb")
    keys = KeyService(KnowledgeBase(kb_dir))
    tokens = {
        "operator": keys.create("周话务", Role.OPERATOR).token,
        "editor": keys.create("王编辑", Role.EDITOR).token,
        "reviewer": keys.create("李审核", Role.REVIEWER).token,
        "reviewer2": keys.create("赵审核", Role.REVIEWER).token,
        "admin": keys.create("系统管理员", Role.ADMIN).token,
    }
    with ApiServer(kb_dir, name="curation") as api:
        yield CurationServer(api.url, tokens, kb_dir)


# ------------------------------------------------------------------------------------------------------------
# Pages (issue 5): one `policyqa serve` over a private copy of small_kb for the widget, viewer and console
# browser tests, and one headless Chromium (Debian's /usr/bin/chromium; `make browser` installs it).
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pages_server(small_kb, tmp_path_factory):
    from browser_support import ApiServer, copy_kb

    kb_dir = copy_kb(small_kb, tmp_path_factory.mktemp("pages-served") / "kb")
    with ApiServer(kb_dir, name="pages") as server:
        yield server


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium for one test module. Module-scoped, not session-scoped: while sync Playwright is
    open its event loop counts as running in this thread, and pytest-asyncio tests in later modules (the
    LangChain standard suite's ainvoke test) then fail with "Runner.run() cannot be called from a running
    event loop". Two sync_playwright() cannot be nested, but one after another is fine."""
    from browser_support import CHROMIUM, launch_chromium

    if not CHROMIUM.exists():
        pytest.skip("Chromium not installed at /usr/bin/chromium (install it with `make browser`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


# ------------------------------------------------------------------------------------------------------------
# Staff insight (issue 12): one `policyqa serve` over a private copy of curation_kb with a seeded log — chat
# questions on three channels, feedback, and the 220-ticket 12345 export imported through the API — for the
# dashboard, work-order and accessibility tests.
# ------------------------------------------------------------------------------------------------------------
@dataclass
class InsightServer:
    url: str
    keys: dict[str, str]  # operator, editor
    kb_dir: Path
    import_result: dict


@pytest.fixture(scope="session")
def insight_server(curation_kb, tmp_path_factory):
    import httpx
    from browser_support import ApiServer, copy_kb
    from workorder_sheet import chat_questions, ticket_rows, wait_for_import, write_xlsx

    from knowledge_base.store import KnowledgeBase
    from qa_service.auth import KeyService, Role

    tmp = tmp_path_factory.mktemp("insight-served")
    kb_dir = copy_kb(curation_kb, tmp / "kb")
    keys = KeyService(KnowledgeBase(kb_dir))
    tokens = {"operator": keys.create("周话务", Role.OPERATOR).token, "editor": keys.create("王编辑", Role.EDITOR).token}
    rows, _ = ticket_rows()
    sheet = write_xlsx(rows, tmp / "12345工单导出.xlsx")
    with ApiServer(kb_dir, name="insight") as api, httpx.Client(base_url=api.url, timeout=300) as client:
        channels = ("web", "hotline", "newmedia")
        for n, questions in enumerate(chat_questions().values()):
            for i, q in enumerate(questions):
                answer = client.post("/v1/ask", json={"question": q, "channel": channels[(n + i) % 3]}).json()
                client.post("/v1/feedback", json={"query_id": answer["query_id"], "helpful": answer["answered"]})
        editor = {"Authorization": f"Bearer {tokens['editor']}"}
        with open(sheet, "rb") as f:
            job = wait_for_import(client, client.post("/v1/workorders/import", files={"file": (sheet.name, f)}, headers=editor), editor)
        assert job["state"] == "done", job
        yield InsightServer(api.url, tokens, kb_dir, job["result"])


# ------------------------------------------------------------------------------------------------------------
# PostgreSQL (issue 11): one real server per test session (Debian's binaries, initdb into a temporary directory,
# run by an unprivileged user; or POLICYQA_TEST_DATABASE_URL's server), and a fresh database per test.
# ------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres():
    from pg_support import PostgresServer

    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres) -> str:
    """The SQLAlchemy URL of a new, empty PostgreSQL database."""
    return postgres.create_database()


# ------------------------------------------------------------------------------------------------------------
# Content safety and departments (issue 11): one `policyqa serve` over a private copy of curation_kb, with keys of
# two departments (市人社局, 市住建局), two reviewer keys of 市人社局 (张伟 and 张伟（审核）: two active keys may not share a name), and an admin.
# ------------------------------------------------------------------------------------------------------------
DEPT_A, DEPT_B = "市住建局", "市人社局"


@dataclass
class SafetyServer:
    url: str
    keys: dict[str, str]
    key_ids: dict[str, int]
    kb_dir: Path


@pytest.fixture(scope="session")
def safety_server(curation_kb, tmp_path_factory):
    from browser_support import ApiServer, copy_kb

    from knowledge_base.store import KnowledgeBase
    from qa_service.auth import KeyService, Role

    kb_dir = copy_kb(curation_kb, tmp_path_factory.mktemp("safety-served") / "kb")
    keys = KeyService(KnowledgeBase(kb_dir))
    made = {
        "operator": keys.create("周话务", Role.OPERATOR),
        "editor_a": keys.create("王编辑", Role.EDITOR, DEPT_A),
        "reviewer_a": keys.create("孙审核", Role.REVIEWER, DEPT_A),
        "editor_b": keys.create("刘编辑", Role.EDITOR, DEPT_B),
        "reviewer_b": keys.create("李审核", Role.REVIEWER, DEPT_B),
        "zhang_1": keys.create("张伟", Role.REVIEWER, DEPT_B),
        "zhang_2": keys.create("张伟（审核）", Role.REVIEWER, DEPT_B),
        "admin": keys.create("系统管理员", Role.ADMIN),
    }
    with ApiServer(kb_dir, name="safety") as api:
        yield SafetyServer(api.url, {k: v.token for k, v in made.items()}, {k: v.info.key_id for k, v in made.items()},
                           kb_dir)



@pytest.fixture(scope="module")
def safety_client(safety_server):
    import httpx

    with httpx.Client(base_url=safety_server.url, timeout=300) as client:
        yield client
