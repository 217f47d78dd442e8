"""Retrieval: query normalization and hybrid retrieval over a real snapshot (small_kb, real encoder)."""
from __future__ import annotations

import pytest

from knowledge_base.models import Validity
from knowledge_base.retrieval import HybridRetriever, RetrievalFilters, RetrievalQuery, organizations_in_title, place_of
from qa_service.normalize import QueryNormalizer


# ---------------------------------------------------------------------- normalization (no model needed)
def test_traditional_and_full_width_questions_are_folded():
    q = QueryNormalizer().run("失業保險金能領多久？１２個月")
    assert q.text == "失业保险金能领多久?12个月"


def test_filler_words_are_removed():
    q = QueryNormalizer().run("你好，我想问一下，失业保险金能领多久？谢谢")
    assert q.text == "失业保险金能领多久?"
    assert "请问" not in QueryNormalizer().run("请问年休假有几天").text


@pytest.mark.parametrize(
    "asked, official",
    [
        ("公积金交多少", "住房公积金"),
        ("年假有几天", "年休假"),
        ("失业金怎么领", "失业保险金"),
        ("济南老楼加装电梯要几户同意", "既有住宅增设电梯"),
        ("养狗要办证吗", "养犬"),
    ],
)
def test_colloquial_terms_become_the_official_wording(asked, official):
    assert official in QueryNormalizer().run(asked).text


@pytest.mark.parametrize("official", ["住房公积金缴存比例", "基本养老金怎么算", "政府信息公开申请", "政务信息公开的程序"])
def test_official_wording_is_left_alone(official):
    assert QueryNormalizer().run(official).text == official


def test_named_organization_and_place_are_detected():
    normalizer = QueryNormalizer(["济南市司法局", "济南市财政局"])
    q = normalizer.run("济南司法局政策解读材料不达标会怎样？")
    assert q.organization == "济南市司法局"
    assert q.region == "济南"
    assert normalizer.run("淄博市对政务新媒体有什么要求").region == "淄博"
    assert normalizer.run("春节放几天假").organization is None


def test_offices_and_places_are_read_from_titles():
    assert organizations_in_title("济南市国防动员办公室2025年度政务公开工作实施方案") == ["济南市国防动员办公室"]
    assert organizations_in_title("2024年济南市财政局政务公开工作要点实施方案") == ["济南市财政局"]
    assert place_of("关于印发《台州市司法局2017年政务公开工作实施方案》的通知") == "台州"


# ---------------------------------------------------------------------- hybrid retrieval over small_kb
@pytest.fixture(scope="module")
def retriever(small_kb):
    from knowledge_base.store import KnowledgeBase

    return HybridRetriever(KnowledgeBase(small_kb).load_snapshot())


@pytest.fixture(scope="module")
def encode():
    from knowledge_base.encoder import get_embedder

    embedder = get_embedder()
    return lambda text: embedder.embed_query(text)


def run(retriever, encode, question, **kw):
    normalizer = QueryNormalizer(retriever.organizations())
    q = normalizer.run(question)
    query = RetrievalQuery(tokens=q.tokens, vector=encode(q.text), organization=q.organization, region=q.region, **kw)
    return [(h, retriever.documents[h.doc_id]) for h in retriever.run(query).hits]


@pytest.mark.parametrize("mode", ["lexical", "dense", "hybrid"])
def test_each_mode_finds_the_article(retriever, encode, mode):
    hits = run(retriever, encode, "失业保险金的标准由谁确定", mode=mode, k=5)
    assert hits and hits[0][1].meta.title == "失业保险条例"


def test_non_public_documents_are_never_candidates(retriever, encode):
    for filters in (RetrievalFilters(), RetrievalFilters(include_superseded=True), RetrievalFilters(publisher="国务院")):
        for mode in ("lexical", "dense", "hybrid"):
            hits = run(retriever, encode, "居住证申领条件和有效期限", mode=mode, k=50, filters=filters)
            assert all(doc.meta.title != "居住证暂行条例" for _, doc in hits)


def test_superseded_versions_are_excluded_unless_included(retriever, encode):
    current = run(retriever, encode, "全体公民放假的节日有哪些", k=50)
    assert current and all(doc.validity != Validity.SUPERSEDED for _, doc in current)
    with_history = run(retriever, encode, "全体公民放假的节日有哪些", k=50, filters=RetrievalFilters(include_superseded=True))
    assert any(doc.validity == Validity.SUPERSEDED for _, doc in with_history)
    # The version in force still ranks first.
    assert with_history[0][1].validity == Validity.IN_FORCE


def test_publisher_and_region_filters_restrict_results(retriever, encode):
    hits = run(retriever, encode, "政策解读", k=20, filters=RetrievalFilters(publisher="济南市财政局"))
    assert hits and {doc.meta.publisher for _, doc in hits} == {"济南市财政局"}
    hits = run(retriever, encode, "政策解读", k=20, filters=RetrievalFilters(region="济南"))
    assert hits and all("济南" in doc.meta.title for _, doc in hits)
    assert run(retriever, encode, "政策解读", k=20, filters=RetrievalFilters(region="台州")) == []


def test_named_publisher_is_preferred_over_its_sister_plan(retriever, encode):
    for question, publisher in (
        ("济南市司法局政策解读材料不达标会怎样？", "济南市司法局"),
        ("济南市财政局的政务公开工作由谁牵头？", "济南市财政局"),
    ):
        hits = run(retriever, encode, question, k=5)
        assert hits[0][1].meta.publisher == publisher, question
