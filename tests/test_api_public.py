"""The public HTTP contract (issue 3): field names, 4xx with Chinese and English messages, 503 on an empty
knowledge base, documents with versions, public-only. Real app over small_kb."""
from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from knowledge_base.settings import Settings

ASK_FIELDS = {"query_id", "session_id", "answered", "answer", "confidence", "channel", "faq_id", "status", "citations",
              "suggestions", "related", "related_questions"}
CITATION_FIELDS = {"rank", "kind", "doc_id", "title", "source_titles", "doc_number", "publisher", "published_date",
                   "validity", "section", "quote", "url", "score"}


@pytest.fixture(scope="module")
def client(small_kb, tmp_path_factory):
    from knowledge_base.store import KnowledgeBase
    from qa_service.app import create_app

    kb_dir = shutil.copytree(small_kb, tmp_path_factory.mktemp("api") / "kb")  # asks write the query log
    settings = Settings(rate_limit_per_minute=0, public_base_url="")
    with TestClient(create_app(kb=KnowledgeBase(kb_dir), settings=settings)) as c:
        yield c


def bilingual(response) -> bool:
    text = response.text
    has_chinese = any("\u4e00" <= ch <= "\u9fff" for ch in text)
    has_english = any("a" <= ch.lower() <= "z" for ch in text.replace("error", "").replace("invalid_request", ""))
    return has_chinese and has_english


def test_ask_returns_the_fixed_contract(client):
    r = client.post("/v1/ask", json={"question": "失业保险金的标准由谁确定？"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == ASK_FIELDS  # no script on the web channel
    assert body["answered"] is True and body["channel"] == "web" and body["faq_id"] is None
    assert body["answer"].startswith("根据《失业保险条例》第十八条") and "[1]" in body["answer"]
    top = body["citations"][0]
    assert set(top) == CITATION_FIELDS
    assert top["kind"] == "document" and top["rank"] == 1 and top["validity"] == "in_force"
    assert top["url"].startswith(f"/documents/{top['doc_id']}#")
    assert "Server-Timing" in r.headers and "encode;dur=" in r.headers["Server-Timing"]


def test_hotline_answer_carries_a_script(client):
    r = client.post("/v1/ask", json={"question": "失业保险金的标准由谁确定？", "channel": "hotline", "top_k": 3,
                                     "session_id": "call-1"})
    body = r.json()
    assert r.status_code == 200 and set(body) == ASK_FIELDS | {"script"}
    assert body["script"]["answer"] and body["script"]["sources"]
    assert len(body["citations"]) <= 3


def test_faq_answer_cites_the_entry_and_its_sources(client):
    body = client.post("/v1/ask", json={"question": "失业金领几个月"}).json()
    assert body["faq_id"] == "FAQ-004"
    faq, *docs = body["citations"]
    assert faq["kind"] == "faq" and faq["source_titles"] == ["失业保险条例"] and faq["doc_id"] is None
    assert docs and docs[0]["title"] == "失业保险条例" and "第十七条" in docs[0]["quote"]


def test_refusal_has_no_citations_but_a_confidence(client):
    body = client.post("/v1/ask", json={"question": "今天股市行情怎么样？", "channel": "newmedia"}).json()
    assert body["answered"] is False and body["citations"] == []
    assert isinstance(body["confidence"], float) and "12345" in body["answer"]


@pytest.mark.parametrize(
    "payload",
    [
        {"question": ""},
        {"question": "   \n\t"},
        {"question": "失" * 501},
        {"question": "春节放几天假", "channel": "fax"},
        {"question": "春节放几天假", "top_k": 0},
        {"question": "春节放几天假", "top_k": 21},
        {"question": "春节放几天假", "filters": {"publisher": 12}},
        {"question": "春节放几天假", "filters": {"include_superseded": "maybe"}},
        {"question": "春节放几天假", "filters": {"department": "x"}},
        {"question": "春节放几天假", "filters": "济南"},
        {"question": 42},
        {},
    ],
)
def test_bad_input_gets_a_4xx_with_chinese_and_english(client, payload):
    r = client.post("/v1/ask", json=payload)
    assert 400 <= r.status_code < 500, r.text
    assert bilingual(r), r.text


def test_malformed_json_gets_a_4xx(client):
    r = client.post("/v1/ask", content='{"question": "春节'.encode(), headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500 and bilingual(r)


def test_empty_knowledge_base_gives_503(tmp_path):
    from knowledge_base.store import KnowledgeBase
    from qa_service.app import create_app

    with TestClient(create_app(kb=KnowledgeBase(tmp_path / "empty"), settings=Settings(rate_limit_per_minute=0))) as c:
        for r in (c.post("/v1/ask", json={"question": "春节放几天假"}), c.get("/v1/search", params={"q": "春节"}),
                  c.get("/healthz"), c.get("/v1/documents")):
            assert r.status_code == 503 and bilingual(r), r.text


def test_search_returns_passages(client):
    r = client.get("/v1/search", params={"q": "失业保险金 期限", "k": 3})
    results = r.json()["results"]
    assert r.status_code == 200 and 1 <= len(results) <= 3 and set(results[0]) == CITATION_FIELDS
    assert client.get("/v1/search", params={"q": " "}).status_code == 422


def test_documents_list_versions_and_never_non_public(client):
    docs = client.get("/v1/documents", params={"title": "放假办法"}).json()["documents"]
    assert len(docs) == 2
    for d in docs:
        assert [v["date"] for v in d["versions"]] == ["2024-11-10", "2013-12-11"]
    old = next(d for d in docs if d["validity"] == "superseded")
    new = next(d for d in docs if d["validity"] == "in_force")
    assert old["superseded_by"] == new["doc_id"]
    all_titles = {d["title"] for d in client.get("/v1/documents").json()["documents"]}
    assert "失业保险条例" in all_titles and "居住证暂行条例" not in all_titles


def test_document_detail_has_sections_and_history(client):
    listing = client.get("/v1/documents", params={"title": "失业保险条例"}).json()["documents"]
    doc = client.get(f"/v1/documents/{listing[0]['doc_id']}").json()
    assert doc["title"] == "失业保险条例" and doc["validity"] == "in_force" and doc["text"]
    article = next(s for s in doc["sections"] if s["path"][-1] == "第十七条")
    assert article["anchor"] and article["text"].startswith("第十七条")
    assert [v["doc_id"] for v in doc["versions"]] == [doc["doc_id"]]


def test_unknown_or_non_public_document_is_404(client, small_kb):
    from knowledge_base.store import KnowledgeBase

    private = KnowledgeBase(small_kb).find_documents(title="居住证暂行条例")
    assert private, "the fixture stores the non-public document"
    for doc_id in ("nope", private[0].doc_id):
        r = client.get(f"/v1/documents/{doc_id}")
        assert r.status_code == 404 and bilingual(r)


def test_healthz_reports_counts(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["documents"] == 5 and body["chunks"] > 0 and body["faqs"] == 2


# ---------------------------------------------------------------------- conversations: the server issues session ids
def test_a_client_chosen_session_id_does_not_join_someone_elses_conversation(client):
    """Issue 23: a citizen asked under an id of the client's choosing; whoever sends the same id must not have their
    follow-up completed from that citizen's turns."""
    chosen = "visit-42"
    alice = client.post("/v1/ask", json={"question": "国庆节放几天假？", "session_id": chosen}).json()
    mallory = client.post("/v1/ask", json={"question": "那春节呢？", "session_id": chosen}).json()
    assert "understood_question" not in mallory  # nothing carried over from Alice's question
    # Never issued: each got a new conversation, under an id of the server's.
    assert chosen != alice["session_id"] != mallory["session_id"] != chosen


def test_the_issued_session_id_continues_the_conversation(client):
    first = client.post("/v1/ask", json={"question": "国庆节放几天假？"}).json()
    issued = first["session_id"]
    assert len(issued) >= 32 and issued != client.post("/v1/ask", json={"question": "国庆节放几天假？"}).json()["session_id"]
    follow = client.post("/v1/ask", json={"question": "那春节呢？", "session_id": issued}).json()
    assert follow["session_id"] == issued and follow["understood_question"] == "春节放几天假？"
