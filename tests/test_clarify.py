"""Clarifying choices (issue 10): a vague question whose best passages come from clearly different documents is
answered with choices, not a guess; a choice asked again is answered from its document; a precise question never
gets choices. Real engine over small_kb (two sister 济南 plans: 司法局 and 财政局)."""
from __future__ import annotations

import pytest

from knowledge_base.settings import Settings

VAGUE = "怎么公开？"  # names neither what nor whose: both 济南 plans speak to it
PLANS = {"济南市司法局2025年政务公开工作实施方案", "2024年济南市财政局政务公开工作要点实施方案"}


@pytest.fixture(scope="module")
def engine(small_kb):
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    return QAEngine(KnowledgeBase(small_kb), Settings(session_store="memory"))


def test_a_vague_question_gets_choices_instead_of_a_guess(engine):
    a = engine.ask(VAGUE, record=False)
    assert 2 <= len(a.choices) <= 3 and not a.answered and a.citations == []
    assert {c.split("《")[1].rstrip("》）") for c in a.choices} == PLANS
    assert a.answer.startswith("您想了解的是：1. ") and " 2. " in a.answer


def test_the_hotline_script_reads_the_choices_out(engine):
    a = engine.ask(VAGUE, channel="hotline", record=False)
    assert a.script.answer.startswith("第一，") and "第二，" in a.script.answer
    assert a.script.key_points == a.choices


def test_a_choice_asked_again_is_answered_from_its_document(engine):
    choice = engine.ask(VAGUE, record=False).choices[0]
    title = choice.split("《")[1].rstrip("》）")
    a = engine.ask(choice, record=False)
    assert not a.choices
    assert a.citations and a.citations[0].title == title


@pytest.mark.parametrize("question", ["失业保险金的标准由谁确定？", "春节放几天假？", "济南市财政局政务公开工作要点有哪些？"])
def test_a_precise_question_never_gets_choices(engine, question):
    assert engine.ask(question, record=False).choices == []


# ------------------------------------------------------------------------------------------------------------
# Issue 21 §3: clarify only between different subjects. A law and the regulation made under it, two laws whose
# articles say the same thing, a national law and the province's 条例 on the same matter are layers of one answer,
# not a choice for the citizen. Real engine over a small labour-law knowledge base (~330 passages, real encoder).
# ------------------------------------------------------------------------------------------------------------
LABOUR_FILES = (
    "national/行政法规/职工带薪年休假条例(2007-12-14).md",  # "根据劳动法和公务员法，制定本条例"
    "national/社会法/劳动法(2018-12-29).md",  # 第四十五条: 国家实行带薪年休假制度…具体办法由国务院规定
    "national/社会法/劳动合同法(2012-12-28).md",
    "national/行政法规/劳动合同法实施条例(2008-09-18).md",
    "local/山东/山东省劳动合同条例(2013-08-01).md",
    "national/行政法规/失业保险条例(1999-01-22).md",
    "national/社会法/就业促进法(2015-04-24).md",
)


@pytest.fixture(scope="module")
def labour_kb(tmp_path_factory):
    import shutil
    from pathlib import Path

    from conftest import SHARED
    from ingest.pipeline import IngestPipeline
    from knowledge_base.store import KnowledgeBase

    corpus = tmp_path_factory.mktemp("labour-corpus")
    for rel in LABOUR_FILES:
        shutil.copy(SHARED / "corpus" / rel, corpus / Path(rel).name)
    kb = KnowledgeBase(tmp_path_factory.mktemp("labour-kb"))
    report = IngestPipeline(kb).run([corpus])
    assert not report.failed, [o.error for o in report.failed]
    return kb


@pytest.fixture(scope="module")
def labour_engine(labour_kb):
    from qa_service.engine import QAEngine

    return QAEngine(labour_kb, Settings(session_store="memory"))


def chosen_titles(answer) -> set[str]:
    return {c.split("（《", 1)[1].rstrip("》）") for c in answer.choices}


def test_annual_leave_is_answered_from_the_regulation_not_asked_back(labour_engine):
    """Today: "您想了解的是：1. 年假有几天（《职工带薪年休假条例》） 2. 年假有几天（《中华人民共和国劳动法》）"."""
    a = labour_engine.ask("年假有几天？", record=False)
    assert a.choices == []
    assert a.answered and a.citations[0].title == "职工带薪年休假条例"
    assert "5天" in a.citations[0].quote


@pytest.mark.parametrize("question", [
    "试用期多长？",  # 劳动法第二十一条 and 劳动合同法第十九条 both set the 试用期 limit
    "违约金？",  # 劳动合同法第二十五条 and its 实施条例第二十六条 (which cites it)
    "解除劳动合同？",  # 劳动法第二十六条 and 劳动合同法第四十条: the same grounds
])
def test_layers_of_one_answer_are_not_offered_as_choices(labour_engine, question):
    assert labour_engine.ask(question, record=False).choices == []


def test_a_law_and_its_implementing_regulation_are_one_choice(labour_engine):
    """"条件是什么？" is vague between subjects (职业中介机构's 条件 in 就业促进法, a labour contract's in 劳动合同法),
    so it asks back, but never between 劳动合同法 and the 实施条例 made under it."""
    a = labour_engine.ask("条件是什么？", record=False)
    titles = chosen_titles(a)
    assert len(titles) >= 2 and "中华人民共和国就业促进法" in titles
    assert not {"中华人民共和国劳动合同法", "中华人民共和国劳动合同法实施条例"} <= titles


@pytest.mark.parametrize("question, expected", [
    ("怎么申请？", {"中华人民共和国就业促进法", "中华人民共和国劳动法"}),  # 设立职业中介机构 / 劳动争议仲裁
    ("失业了怎么办？", {"中华人民共和国就业促进法", "失业保险条例"}),  # 就业援助 / 失业保险金
])
def test_candidates_that_answer_different_questions_still_get_choices(labour_engine, question, expected):
    assert chosen_titles(labour_engine.ask(question, record=False)) == expected


def test_the_province_rule_and_the_implementing_regulation_join_the_law_by_their_titles(labour_kb):
    """Without any passage vectors, the titles alone say 山东省劳动合同条例 and 劳动合同法实施条例 rule on the matter of
    劳动合同法; 失业保险条例 and 劳动法 rule on others."""
    from qa_service.clarify import Clarifier

    clarifier = Clarifier()
    documents = {d.meta.title: d for d in labour_kb.load_snapshot().documents.values()}
    order = ["山东省劳动合同条例", "失业保险条例", "中华人民共和国劳动合同法", "中华人民共和国劳动法",
             "中华人民共和国劳动合同法实施条例"]
    subjects = clarifier.subjects([clarifier.candidate(documents[t]) for t in order], vectors=None)
    assert [[c.title for c in s] for s in subjects] == [
        ["山东省劳动合同条例", "中华人民共和国劳动合同法", "中华人民共和国劳动合同法实施条例"],
        ["失业保险条例"], ["中华人民共和国劳动法"]]



def test_rules_that_bind_different_people_stay_a_choice_however_alike():
    """Another province's 条例 on the same matter, and two offices' 政务公开 plans, are whose-rule choices: they never
    join one subject, even when every two articles count as saying the same thing (real files parsed, their first
    articles embedded by the real encoder, `same_subject_cosine` at 0)."""
    from types import SimpleNamespace

    from conftest import SHARED
    from ingest.parse import parse_document
    from knowledge_base.encoder import get_embedder
    from qa_service.clarify import Clarifier, ClarifyConfig

    clarifier = Clarifier(ClarifyConfig(same_subject_cosine=0.0))

    def subjects(files: list[str]) -> list[list[str]]:
        documents = [parse_document(SHARED / "corpus" / f) for f in files]
        vectors = get_embedder().embed_passages([d.sections[0].text for d in documents])
        candidates = []
        for position, document in enumerate(documents):
            candidate = clarifier.candidate(document)
            candidate.passages.append(SimpleNamespace(hit=SimpleNamespace(position=position),
                                                      chunk=SimpleNamespace(text=document.sections[0].text)))
            candidates.append(candidate)
        return [[c.title for c in s] for s in clarifier.subjects(candidates, vectors=lambda positions: vectors[positions])]

    assert subjects(["national/社会法/残疾人保障法(2018-10-26).md", "local/山东/青岛市残疾人保障条例(2016-07-22).md",
                     "local/浙江/浙江省残疾人保障条例(2009-11-27).md",
                     "local/山东/山东省实施《残疾人保障法》办法(2017-03-29).md"]) == [
        ["中华人民共和国残疾人保障法", "青岛市残疾人保障条例", "山东省实施《中华人民共和国残疾人保障法》办法"],
        ["浙江省残疾人保障条例"]]
    assert subjects(["plans/000_e71e79a35d633e9d.txt", "plans/003_3946f67f285457c1.txt",
                     "national/社会法/残疾人保障法(2018-10-26).md"]) == [
        ["济南市司法局2025年政务公开工作实施方案", "中华人民共和国残疾人保障法"], ["2024年济南市财政局政务公开工作要点实施方案"]]
