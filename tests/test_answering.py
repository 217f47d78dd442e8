"""Answering as a citizen or an operator sees it: cited, current, public-only, honest refusals, three channels.
Real encoder, real corpus files (small_kb)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from knowledge_base.models import Validity
from knowledge_base.settings import Settings

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="module")
def engine(small_kb):
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    return QAEngine(KnowledgeBase(small_kb), Settings())


def ask(engine, question, **kw):
    kw.setdefault("record", False)
    return engine.ask(question, **kw)


def document_citations(answer):
    return [c for c in answer.citations if c.kind == "document"]


def passages(answer):
    """Everything an answer shows: its sources, the related passages, the suggestions."""
    return [*answer.citations, *answer.related, *answer.suggestions]


# ---------------------------------------------------------------------- versions
def test_spring_festival_cites_the_2024_version(engine):
    for mode in ("hybrid_faq", "hybrid"):
        answer = ask(engine, "春节放几天假", mode=mode)
        assert answer.answered
        docs = document_citations(answer)
        assert docs and all(c.validity == Validity.IN_FORCE for c in docs)
        assert docs[0].title == "全国年节及纪念日放假办法"
        assert "4天" in docs[0].quote and docs[0].published_date.startswith("2024")


def test_superseded_version_is_not_cited_for_current_rules(engine):
    answer = ask(engine, "国庆节放几天假？", top_k=10)
    assert answer.answered and answer.faq_id is None  # the 春节 FAQ entry must not answer 国庆节
    assert "国庆节，放假3天" in answer.answer
    assert all(c.validity != Validity.SUPERSEDED for c in passages(answer))


def test_include_superseded_filter_shows_the_old_version(engine):
    answer = ask(engine, "全体公民放假的节日有哪些", mode="hybrid", top_k=10, filters={"include_superseded": True})
    validities = {c.validity for c in passages(answer)}
    assert Validity.SUPERSEDED in validities and Validity.IN_FORCE in validities
    assert answer.citations[0].validity == Validity.IN_FORCE


# ---------------------------------------------------------------------- public channels serve public content only
def test_non_public_document_is_never_served(engine):
    for question in ("申领居住证需要什么条件？", "居住证的有效期限是多久", "居住证持有人享有哪些权利"):
        answer = ask(engine, question, top_k=20)
        assert all(c.title != "居住证暂行条例" for c in passages(answer)), question
        assert all("居住证暂行条例" not in t for c in passages(answer) for t in c.source_titles)
        results = engine.search(question, k=50, filters={"include_superseded": True})
        assert all(c.title != "居住证暂行条例" for c in results)


def test_faq_is_answered_only_when_published(engine):
    published = ask(engine, "交了三年失业险失业了能领几个月钱")
    assert published.faq_id == "FAQ-004"
    assert published.citations[0].kind == "faq"
    assert published.citations[0].source_titles == ["失业保险条例"]
    assert any(c.kind == "document" and c.title == "失业保险条例" and "第十七条" in c.quote for c in published.citations)
    draft = ask(engine, "济南12345热线反映的问题多久回复？")  # FAQ-008 is still a draft
    assert draft.faq_id is None
    assert "五个工作日内回复来电人" not in draft.answer


def test_publishing_and_retiring_an_faq_takes_effect_without_restart(small_kb, tmp_path):
    from knowledge_base.encoder import get_embedder
    from knowledge_base.faqs import FaqService
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    kb = KnowledgeBase(shutil.copytree(small_kb, tmp_path / "kb"))
    engine = QAEngine(kb, Settings(reload_interval=0))
    question = "年假有几天？"  # FAQ-005, a draft
    assert ask(engine, question).faq_id is None
    faqs = FaqService(kb)
    faqs.review("FAQ-005", actor="reviewer", confidentiality_checked=True)
    faqs.publish("FAQ-005", actor="reviewer", embed=get_embedder().embed_queries)
    assert ask(engine, question).faq_id == "FAQ-005"
    faqs.retire("FAQ-005", actor="reviewer")
    assert ask(engine, question).faq_id is None


def test_an_ingested_document_is_answered_without_restart(small_kb, tmp_path):
    from ingest.pipeline import IngestPipeline
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    kb = KnowledgeBase(shutil.copytree(small_kb, tmp_path / "kb"))
    engine = QAEngine(kb, Settings(reload_interval=0))
    question = "济南市国防动员办公室年内组织几次政务公开培训？"
    before = ask(engine, question)
    assert all("国防动员办公室" not in c.title for c in before.citations)
    report = IngestPipeline(kb).run([SHARED / "corpus" / "plans" / "004_362f7b72cf697821.txt"])  # 国防动员办公室
    assert not report.failed
    after = ask(engine, question)  # the next request sees the new generation; no restart, no explicit refresh
    assert after.answered and "国防动员办公室" in after.citations[0].title
    assert "年内至少组织1次政务公开专题培训" in after.citations[0].quote


# ---------------------------------------------------------------------- answers and refusals
def test_extractive_answer_names_the_document_and_article(engine):
    answer = ask(engine, "失业保险金的标准由谁确定？")
    assert answer.answered
    assert answer.answer.startswith("根据《失业保险条例》第十八条：")
    assert "由省、自治区、直辖市人民政府确定" in answer.answer
    assert "丧葬补助金" not in answer.answer  # trimmed to the sentence that answers
    top = answer.citations[0]
    assert top.kind == "document" and "第十八条" in top.quote
    assert top.url == f"/documents/{top.doc_id}#a-18" and top.anchor == "a-18"
    assert 0.0 <= answer.confidence <= 1.0


def test_citation_links_to_the_quoted_article_inside_a_merged_passage(engine):
    # 第十八条–第二十条 of 失业保险条例 are short and share one passage; the quote is 第二十条, so is the link.
    answer = ask(engine, "失业人员在领取失业保险金期间死亡的，家属可以领取什么？")
    assert answer.answered and answer.answer.startswith("根据《失业保险条例》第二十条：")
    top = answer.citations[0]
    assert "第十八条" in top.quote and "第二十条" in top.quote  # still the merged passage
    assert top.anchor == "a-20" and top.url.endswith("#a-20")
    assert top.section.endswith("> 第二十条")


def test_traditional_character_question_is_answered(engine):
    answer = ask(engine, "失業保險金的標準由誰確定？")
    assert answer.answered and answer.citations[0].title == "失业保险条例"
    assert "第十八条" in answer.answer


@pytest.mark.parametrize("question", ["今天股市行情怎么样？", "给我讲个笑话", "济南市车牌摇号每月几号开奖？"])
def test_unrelated_question_is_refused(engine, question):
    answer = ask(engine, question)
    assert not answer.answered
    assert answer.citations == []
    assert engine.settings.hotline_number in answer.answer  # the citizen is told where to ask instead
    assert "没有" in answer.answer or "未找到" in answer.answer
    assert 0.0 <= answer.confidence < engine.settings.refusal_threshold


def test_named_publisher_is_cited_not_its_sister_plan(engine):
    answer = ask(engine, "济南市司法局政策解读材料不达标会怎样？")
    assert answer.answered
    assert answer.citations[0].publisher == "济南市司法局"
    assert "解读材料不达标不运转" in answer.citations[0].quote


# ---------------------------------------------------------------------- channels
def test_newmedia_is_plain_text_within_300_characters_with_source_and_link(engine):
    for question in ("失业保险金的标准由谁确定？", "春节放几天假", "给我讲个笑话", "济南市司法局政策解读材料不达标会怎样？"):
        answer = ask(engine, question, channel="newmedia")
        text = answer.answer
        assert len(text) <= 300, (question, len(text))
        body = text.split("详见：")[0]
        assert not re.search(r"\[\d+\]|[*#`<>]|\]\(|<[a-z]", body), text
        if answer.answered:
            assert "\n来源：《" in text and "\n详见：/documents/" in text


def test_hotline_gives_a_script_to_read_out(engine):
    answer = ask(engine, "失业保险金的标准由谁确定？", channel="hotline")
    script = answer.script
    assert script.opening and script.closing and script.key_points
    assert script.answer.startswith("根据《失业保险条例》第十八条")
    assert script.answer.count("。") == 1  # one sentence
    assert any("国务院令第258号" in s and "第十八条" in s for s in script.sources)
    refused = ask(engine, "今天股市行情怎么样？", channel="hotline")
    assert refused.script.sources == [] and refused.script.suggestion
    assert ask(engine, "失业保险金的标准由谁确定？").script is None


def test_every_ask_is_logged_with_its_embedding(small_kb, tmp_path):
    from sqlalchemy import select

    from knowledge_base.db import QueryLogRow
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    kb = KnowledgeBase(shutil.copytree(small_kb, tmp_path / "kb"))
    engine = QAEngine(kb, Settings())
    answer = engine.ask("  失业金能领多久？ ", channel="newmedia", session_id="s-1")
    with kb.session() as s:
        row = s.scalars(select(QueryLogRow).where(QueryLogRow.query_id == answer.query_id)).one()
    assert row.question == "失业金能领多久？" and row.normalized == "失业保险金能领多久?"
    assert row.channel == "newmedia" and row.session_id == "s-1" and row.answered == answer.answered
    assert row.confidence == pytest.approx(answer.confidence) and row.latency_ms > 0
    assert row.citations and set(row.citations[0]) == {"doc_id", "title", "section", "anchor"}
    vector = np.frombuffer(row.embedding, dtype=np.float32)
    assert vector.shape == (engine.embedder.dim,) and abs(np.linalg.norm(vector) - 1) < 1e-3


# ---------------------------------------------------------------------- questions that ask for a quantity
@pytest.mark.parametrize("question", ["济南积分落户需要多少分？", "工伤停工留薪期最长多久？", "年假能休几天？",
                                      "住院能报销百分之几？", "孩子满几周岁必须上小学？"])
def test_questions_asking_for_a_quantity_are_recognised(question):
    from knowledge_base.text import asks_quantity

    assert asks_quantity(question)


@pytest.mark.parametrize("question", ["失业保险金的标准由谁确定？", "哪些情况应当认定为工伤？", "社保卡怎么补办？"])
def test_other_questions_are_not_quantity_questions(question):
    from knowledge_base.text import asks_quantity

    assert not asks_quantity(question)


@pytest.mark.parametrize("text, states", [
    ("累计缴费满1年不足5年的，领取失业保险金的期限最长为12个月", True),
    ("职工累计工作已满1年不满10年的，年休假5天", True),
    ("停工留薪期一般不超过十二个月", True),
    ("经专有部分占建筑物总面积三分之二以上的业主同意", True),
    ("第十八条 失业保险金的标准，由省、自治区、直辖市人民政府确定。", False),  # article numbers do not count
    ("（二）按照规定缴纳停车费用；", False),
    ("市、区县人民政府应当建立可兑换积分奖励制度", False),
])
def test_a_passage_states_a_quantity_only_with_a_number_and_unit(text, states):
    from knowledge_base.text import states_quantity

    assert states_quantity(text) is states


def test_a_quantity_question_quotes_the_sentence_with_the_number(engine):
    answer = ask(engine, "失业保险金最长能领多少个月？", mode="hybrid")  # the text, not the published FAQ entry
    assert answer.answered and answer.citations[0].title == "失业保险条例"
    assert re.search(r"\d+个月", answer.answer), answer.answer
