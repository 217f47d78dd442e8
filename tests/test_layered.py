"""Layered answers: a national rule and the asker's local rule on the same point are stated and cited together."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from knowledge_base.settings import Settings

SHARED = Path(__file__).resolve().parents[2] / "shared"
FILES = ("national/行政法规/女职工劳动保护特别规定(2012-04-28).md",
         "local/山东/山东省人口与计划生育条例(2016-01-22).md",
         "local/浙江/浙江省人口与计划生育条例(2021-11-25).md",
         "national/行政法规/失业保险条例(1999-01-22).md")


@pytest.fixture(scope="module")
def maternity_kb(tmp_path_factory):
    from ingest.pipeline import IngestPipeline
    from knowledge_base.store import KnowledgeBase

    corpus = tmp_path_factory.mktemp("maternity-corpus")
    for rel in FILES:
        shutil.copy(SHARED / "corpus" / rel, corpus / Path(rel).name)
    kb = KnowledgeBase(tmp_path_factory.mktemp("maternity-kb"))
    report = IngestPipeline(kb).run([corpus])
    assert not report.failed
    return kb


def engine_for(kb, home: str = ""):
    from qa_service.engine import QAEngine

    return QAEngine(kb, Settings(home_region=home))


def test_maternity_leave_in_jinan_states_the_national_98_days_and_shandongs_60_more(maternity_kb):
    answer = engine_for(maternity_kb, home="济南").ask("产假有多少天？", mode="hybrid", record=False)
    assert answer.answered
    assert "98天" in answer.answer and "增加产假六十日" in answer.answer
    first, second = answer.citations[0], answer.citations[1]
    assert first.title == "女职工劳动保护特别规定" and first.section.endswith("第七条")
    assert second.title == "山东省人口与计划生育条例" and second.section.endswith("第二十五条")
    assert "[2]" in answer.answer  # the web answer marks the second rule with its citation


def test_the_hotline_script_reads_both_rules(maternity_kb):
    answer = engine_for(maternity_kb, home="济南").ask("产假有多少天？", channel="hotline", mode="hybrid", record=False)
    assert "98天" in answer.script.answer and "六十日" in answer.script.answer
    assert any("山东省人口与计划生育条例" in s for s in answer.script.sources)


def test_without_a_home_region_no_local_rule_is_added(maternity_kb):
    answer = engine_for(maternity_kb).ask("产假有多少天？", mode="hybrid", record=False)
    assert "98天" in answer.answer and "山东" not in answer.answer


def test_another_provinces_rule_is_not_layered_onto_a_jinan_answer(maternity_kb):
    answer = engine_for(maternity_kb, home="济南").ask("产假有多少天？", mode="hybrid", record=False)
    assert "浙江" not in answer.answer
