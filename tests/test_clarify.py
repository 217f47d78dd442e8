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
