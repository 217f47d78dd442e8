"""Layered answers: a national rule and the asker's local rule on the same point are stated and cited together."""
from __future__ import annotations

import re
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


# ---------------------------------------------------------------------- issue 23, item 10: the whole rule is read out
def article_items(rel: str, article: str, next_article: str) -> list[str]:
    """The sentences of one article of a corpus file, as a reader counts them (each ends in ；or 。)."""
    text = (SHARED / "corpus" / rel).read_text(encoding="utf-8")
    body = text[text.index(article + " ") + len(article) + 1: text.index(next_article + " ")]
    return [s.strip() for s in re.findall(r"[^；。]+[；。]", body)]


MATERNITY = "national/行政法规/女职工劳动保护特别规定(2012-04-28).md"


@pytest.mark.parametrize("home", ["", "济南"])
def test_the_hotline_script_reads_every_item_of_the_maternity_leave_article(maternity_kb, home):
    answer = engine_for(maternity_kb, home=home).ask("产假有多少天？", channel="hotline", mode="hybrid", record=False)
    items = article_items(MATERNITY, "第七条", "第八条")
    assert "怀孕满4个月流产的，享受42天产假。" in items and len(items) == 5
    points = answer.script.key_points
    assert [p for p in points if p in items] == items, points  # all five, in the article's order
    if home:  # the local rule follows the national one, and what it leaves out is announced
        assert any("增加产假六十日" in p for p in points), points
        assert points[-1].endswith("项，见原文。"), points


def test_a_script_quoting_part_of_an_article_says_how_many_items_are_left(maternity_kb):
    answer = engine_for(maternity_kb).ask("难产增加多少天产假", channel="hotline", mode="hybrid", record=False)
    items = article_items(MATERNITY, "第七条", "第八条")
    points = answer.script.key_points
    read = [p for p in points if p in items]
    assert read and len(read) < len(items), points
    assert points[-1] == f"《女职工劳动保护特别规定》第七条还有{len(items) - len(read)}项，见原文。", points
