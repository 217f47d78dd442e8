"""The metric definitions of issue 6, on hand-made citations: what counts as a hit, at which rank, over
which questions each rate is averaged."""
from __future__ import annotations

import json

import pytest

from conftest import SHARED
from eval.gold import GoldFileError, GoldQuestion, load_gold
from eval.metrics import (
    Returned,
    ReturnedCitation,
    choose_threshold,
    percentile,
    score_question,
    squash,
    summarize,
    sweep_thresholds,
)

HOLIDAY = GoldQuestion(
    "d016", "国庆节放几天假？", True, sources=("全国年节及纪念日放假办法",), evidence_any=("国庆节，放假3天", "国庆节放假3天")
)
UNANSWERABLE = GoldQuestion("x001", "社保卡丢了怎么补办？", False)


def cite(title="全国年节及纪念日放假办法", quote="（五）国庆节，放假3天（10月1日、2日、3日）。", source_titles=(), kind="document", rank=1):
    return ReturnedCitation(rank=rank, kind=kind, title=title, source_titles=list(source_titles), quote=quote)


def filler(rank=1):
    return cite(title="工伤保险条例", quote="第十四条 职工有下列情形之一的，应当认定为工伤", rank=rank)


def answered(*citations, answer="", confidence=0.9):
    return Returned(answered=True, answer=answer, confidence=confidence, citations=list(citations), latency_ms=10.0)


def test_hit_needs_title_and_evidence_in_the_same_citation():
    # right title with a wrong quote, and right quote under a wrong title: neither is a hit
    wrong_quote = cite(quote="（一）元旦，放假1天（1月1日）。")
    wrong_title = cite(title="工伤保险条例")
    s = score_question(HOLIDAY, answered(wrong_quote, wrong_title))
    assert s.hit_rank is None
    s = score_question(HOLIDAY, answered(wrong_quote, wrong_title, cite()))
    assert s.hit_rank == 3


def test_whitespace_is_removed_on_both_sides_before_comparing():
    spaced = cite(title="全国 年节及纪念日\n放假办法（2024）", quote="国庆节，\u3000放假 3 天\t（10月1日…）")
    assert score_question(HOLIDAY, answered(spaced)).hit_rank == 1
    gold_with_spaces = GoldQuestion("g", "q", True, sources=("全国年节 及纪念日",), evidence_any=("放假 3天",))
    assert score_question(gold_with_spaces, answered(cite())).hit_rank == 1


def test_comparison_is_otherwise_exact():
    # no full-width/half-width folding: 放假３天 (full-width 3) is not 放假3天
    full_width = cite(quote="国庆节，放假３天")
    assert score_question(HOLIDAY, answered(full_width)).hit_rank is None
    assert squash(" a\u3000b\n\tc\xa0d ") == "abcd"


def test_a_faq_citation_hits_through_its_source_titles():
    faq = cite(kind="faq", title="国庆放假几天？", source_titles=["全国年节及纪念日放假办法"], quote="国庆节，放假3天。")
    assert score_question(HOLIDAY, answered(faq)).hit_rank == 1


def test_rank_is_the_position_in_the_returned_list_and_cutoffs_apply():
    at_2 = score_question(HOLIDAY, answered(filler(), cite()))
    assert (at_2.hit_at(1), at_2.hit_at(5), at_2.reciprocal_rank) == (False, True, 0.5)
    at_6 = score_question(HOLIDAY, answered(*[filler() for _ in range(5)], cite()))
    assert at_6.hit_rank == 6 and not at_6.hit_at(5) and at_6.reciprocal_rank == pytest.approx(1 / 6)
    at_11 = score_question(HOLIDAY, answered(*[filler() for _ in range(10)], cite()))
    assert at_11.hit_rank == 11 and at_11.reciprocal_rank == 0.0  # MRR@10: beyond 10 counts 0


def test_only_the_first_hit_counts_for_mrr():
    s = score_question(HOLIDAY, answered(filler(), cite(), cite()))
    assert s.reciprocal_rank == 0.5


def test_answer_contains_looks_at_the_answer_text_only():
    s = score_question(HOLIDAY, answered(filler(), answer="根据《全国年节及纪念日放假办法》：国庆节， 放假3天。"))
    assert s.contains and s.hit_rank is None
    s = score_question(HOLIDAY, answered(cite(), answer="请拨打12345咨询。"))
    assert not s.contains and s.hit_rank == 1


def test_rates_are_averaged_over_the_right_questions():
    refused = Returned(answered=False, answer="知识库中没有找到答案，请拨打12345。", confidence=0.1, latency_ms=5.0)
    scored = [
        score_question(HOLIDAY, answered(cite(), answer="国庆节，放假3天")),  # hit@1, contains
        score_question(GoldQuestion("d2", "q", True, ("放假办法",), ("元旦",)), answered(filler(), cite(quote="元旦放假1天"))),  # hit@2
        score_question(GoldQuestion("d3", "q", True, ("放假办法",), ("元旦",)), refused),  # false refusal
        score_question(UNANSWERABLE, refused),  # correct refusal
        score_question(GoldQuestion("x2", "q", False), answered(filler())),  # answered an unanswerable one
    ]
    m = summarize(scored)
    assert (m.n_answerable, m.n_unanswerable) == (3, 2)
    assert m.hit_at_1 == pytest.approx(1 / 3)
    assert m.hit_at_5 == pytest.approx(2 / 3)
    assert m.mrr_at_10 == pytest.approx((1 + 0.5 + 0) / 3)
    assert m.answer_contains == pytest.approx(1 / 3)
    assert m.refusal_rate == pytest.approx(1 / 2)  # over unanswerable only
    assert m.false_refusal_rate == pytest.approx(1 / 3)  # over answerable only
    assert m.latency_p50_ms == 10.0  # over all five: 10, 10, 5, 5, 10


def test_an_error_scores_zero_everywhere():
    error = Returned(answered=None, error="HTTP 500: boom", latency_ms=3.0)
    m = summarize([score_question(HOLIDAY, error), score_question(UNANSWERABLE, error)])
    assert (m.hit_at_5, m.answer_contains, m.mrr_at_10) == (0.0, 0.0, 0.0)
    assert m.false_refusal_rate == 1.0  # the citizen got no answer
    assert m.refusal_rate == 0.0  # an error is not a clear refusal
    assert m.n_errors == 2 and m.latency_p50_ms is None


def test_undefined_rates_are_none_not_zero():
    m = summarize([score_question(UNANSWERABLE, Returned(answered=False, confidence=0.0))])
    assert m.hit_at_5 is None and m.false_refusal_rate is None and m.refusal_rate == 1.0


def test_percentiles_interpolate_linearly_like_numpy():
    xs = [10.0, 20.0, 30.0, 40.0]
    assert percentile(xs, 50) == 25.0
    assert percentile(xs, 95) == pytest.approx(38.5)
    assert percentile([], 50) is None


def test_sweep_refuses_below_the_threshold_and_chooses_within_the_false_refusal_budget():
    def q(i, answerable, conf):
        gq = GoldQuestion(f"q{i}", "q", answerable, ("放假办法",) if answerable else (), ("国庆节",) if answerable else ())
        return score_question(gq, answered(cite(), confidence=conf))

    scored = [q(i, True, c) for i, c in enumerate([0.9, 0.8, 0.7, 0.6, 0.35, 0.9, 0.8, 0.7, 0.6, 0.5])]
    scored += [q(100 + i, False, c) for i, c in enumerate([0.1, 0.2, 0.3, 0.4, 0.55])]
    rows = sweep_thresholds(scored, [0.0, 0.3, 0.4, 0.45, 0.5, 0.6])
    by_t = {r.threshold: r for r in rows}
    assert by_t[0.3].refusal_rate == pytest.approx(2 / 5)  # 0.1, 0.2 < 0.3; 0.3 itself is not refused
    assert by_t[0.45].false_refusal_rate == pytest.approx(1 / 10)
    assert by_t[0.45].hit_at_5_answered == pytest.approx(9 / 10)
    chosen = choose_threshold(rows, max_false_refusal=0.10)
    # 0.4, 0.45 and 0.5 all keep false refusals at 1/10; 0.45 and 0.5 refuse 4/5 unanswerable: middle of that run
    assert chosen.threshold in (0.45, 0.5) and chosen.refusal_rate == pytest.approx(4 / 5)


def test_gold_file_is_validated_with_line_numbers(tmp_path):
    good = {"id": "a", "question": "国庆节放几天假？", "sources": ["放假办法"], "evidence_any": ["放假3天"], "answerable": True}
    path = tmp_path / "gold.jsonl"
    path.write_text(
        "\n".join([
            json.dumps(good, ensure_ascii=False),
            json.dumps({**good, "id": "b", "evidence_any": []}, ensure_ascii=False),
            json.dumps({**good}, ensure_ascii=False),
            "{not json",
            json.dumps({"id": "x", "question": "笑话", "answerable": False, "category": "闲聊"}, ensure_ascii=False),
        ]),
        "utf-8",
    )
    with pytest.raises(GoldFileError) as e:
        load_gold(path)
    msg = str(e.value)
    assert "gold.jsonl:2" in msg and "evidence_any" in msg
    assert "gold.jsonl:3" in msg and "duplicate id 'a'" in msg
    assert "gold.jsonl:4" in msg
    path.write_text(json.dumps(good, ensure_ascii=False) + "\n\n" + json.dumps(
        {"id": "x", "question": "笑话", "answerable": False, "category": "闲聊"}, ensure_ascii=False), "utf-8")
    qs = load_gold(path)
    assert [q.id for q in qs] == ["a", "x"] and qs[1].tags == ["闲聊"]


def test_the_shared_dev_set_loads():
    dev = SHARED / "eval" / "dev.jsonl"
    assert dev.exists(), f"{dev}: the real data (../shared) is missing; the tests need it beside the checkout"
    qs = load_gold(dev)
    assert sum(q.answerable for q in qs) >= 20 and any(not q.answerable for q in qs)


def test_sweep_never_refuses_a_curated_faq_answer():
    # The engine answers a matched FAQ entry with its curated answer whatever the refusal threshold.
    faq = Returned(answered=True, answer="国庆节放假3天", confidence=0.92, faq_id="FAQ-007",
                   citations=[cite(kind="faq", title="国庆放几天", source_titles=["全国年节及纪念日放假办法"])])
    rows = sweep_thresholds([score_question(HOLIDAY, faq)], [0.5, 0.95])
    assert [r.false_refusal_rate for r in rows] == [0.0, 0.0]
