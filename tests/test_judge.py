"""The learned answer judge: trained here on a small real knowledge base in seconds, stored in it, served by the
engine, deterministic for a seed, removable (the full-corpus figures are `policyqa eval`'s, not a test's)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from knowledge_base.settings import Settings

SHARED = Path(__file__).resolve().parents[2] / "shared"

FIT = [
    {"id": "j1", "question": "失业保险金最长能领多长时间？", "sources": ["失业保险条例"], "evidence_any": ["最长为24个月"]},
    {"id": "j2", "question": "我被辞退了，要满足什么条件才能领失业金", "sources": ["失业保险条例"], "evidence_any": ["非因本人意愿中断就业的"]},
    {"id": "j3", "question": "国庆节一共放几天", "sources": ["全国年节及纪念日放假办法"], "evidence_any": ["国庆节，放假3天"]},
    {"id": "j4", "question": "五一劳动节休几天", "sources": ["全国年节及纪念日放假办法"], "evidence_any": ["劳动节，放假2天"]},
    {"id": "j5", "question": "领失业金期间生病了医药费怎么办", "sources": ["失业保险条例"], "evidence_any": ["医疗补助金"]},
    {"id": "j6", "question": "济南市司法局的政务公开培训计划谁来定", "sources": ["济南市司法局2025年政务公开"], "evidence_any": ["制定年度政务公开培训计划"]},
    {"id": "j7", "question": "济南市车牌摇号每个月几号开奖？"},
    {"id": "j8", "question": "护照工本费要交多少钱"},
    {"id": "j9", "question": "今天股市行情怎么样"},
]
SELECT = [
    {"id": "s1", "question": "失业了能领多少个月的失业保险金", "sources": ["失业保险条例"], "evidence_any": ["最长为24个月", "最长为12个月"]},
    {"id": "s2", "question": "清明节放假吗", "sources": ["全国年节及纪念日放假办法"], "evidence_any": ["清明节，放假1天"]},
    {"id": "s3", "question": "公积金贷款最多能贷多少"},
]


def write_gold(path: Path, rows: list[dict]) -> Path:
    lines = [json.dumps({**r, "answerable": "sources" in r}, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


@pytest.fixture(scope="module")
def judged_kb(small_kb, tmp_path_factory):
    """A private copy of small_kb with a judge trained on the questions above (no layperson file: seconds)."""
    from knowledge_base.store import KnowledgeBase
    from qa_service.training.judge import JudgeTrainer, TrainingSources

    root = tmp_path_factory.mktemp("judged")
    kb_dir = root / "kb"
    shutil.copytree(small_kb, kb_dir)
    sources = TrainingSources(fit=[write_gold(root / "fit.jsonl", FIT)], select=[write_gold(root / "select.jsonl", SELECT)],
                              faq_sheets=[SHARED / "faq" / "sample_faq.csv"])
    settings = Settings(cache_dir=root / "cache")
    report = JudgeTrainer(KnowledgeBase(kb_dir), settings, sources).run()  # the shipped default configuration
    return kb_dir, report, sources, settings


@pytest.mark.slow  # judged_kb trains a judge, a minute
def test_training_records_the_judge_with_its_data_hash_and_sizes(judged_kb):
    from knowledge_base.judge import judge_record
    from knowledge_base.store import KnowledgeBase

    kb_dir, report, _, settings = judged_kb
    record = judge_record(KnowledgeBase(kb_dir))
    assert record["judge_id"] == report.judge_id and report.judge_id.startswith("judge-")
    assert record["data_hash"] == report.data_hash
    assert report.sizes["fit: ranked"] >= 5  # the six answerable fit questions whose passages are candidates
    assert report.sizes["fit: answerability only"] >= 3  # the unanswerable ones and leave-the-document-out copies
    assert report.sizes["faq: ranked"] >= 1  # sample_faq.csv's questions linked to their articles
    assert (settings.cache_dir / "judges" / report.judge_id / "ranker.txt").exists()
    assert [r["threshold"] for r in report.calibration] == sorted(r["threshold"] for r in report.calibration)


@pytest.mark.slow  # judged_kb trains a judge, a minute
def test_training_is_deterministic_for_a_seed(judged_kb, tmp_path):
    from knowledge_base.store import KnowledgeBase
    from qa_service.training.judge import JudgeTrainer

    kb_dir, report, sources, _ = judged_kb
    copy = tmp_path / "kb"
    shutil.copytree(kb_dir, copy)
    again = JudgeTrainer(KnowledgeBase(copy), Settings(cache_dir=tmp_path / "cache"), sources).run()
    assert (again.judge_id, again.data_hash) == (report.judge_id, report.data_hash)


@pytest.mark.slow  # judged_kb trains a judge, a minute
def test_the_engine_ranks_and_refuses_with_the_trained_judge(judged_kb):
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    kb_dir, report, _, _ = judged_kb
    engine = QAEngine(KnowledgeBase(kb_dir), Settings())
    assert engine.state.judge_id == report.judge_id
    assert engine.refusal_threshold == pytest.approx(report.threshold)
    timings: dict = {}
    answer = engine.ask("失业保险金最长能领多长时间？", mode="hybrid", record=False, timings=timings)
    assert "judge" in timings and "candidates" in timings
    assert "soft" in timings  # soft coverage is one of its features
    assert any("失业保险条例" in c.title and "24个月" in c.quote for c in answer.citations[:3])
    refused = engine.ask("今天股市行情怎么样", mode="hybrid", record=False)
    assert not refused.answered and refused.citations == []


@pytest.mark.slow  # judged_kb trains a judge, a minute
def test_a_completed_follow_up_and_search_are_judged_by_the_served_judge(judged_kb):
    import uuid

    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    kb_dir, _, _, _ = judged_kb
    engine = QAEngine(KnowledgeBase(kb_dir), Settings())
    sid = uuid.uuid4().hex
    engine.ask("失业保险金最长能领多久？", session_id=sid, mode="hybrid", record=False)  # no FAQ answer
    follow: dict = {}
    answer = engine.ask("那失业保险金的标准由谁确定？", session_id=sid, mode="hybrid", record=False, timings=follow)
    assert answer.understood_question and "judge" in follow  # completed from the first question, then judged
    searched: dict = {}
    assert engine.search("失业保险金最长能领多久", timings=searched) and "judge" in searched


@pytest.mark.slow  # judged_kb trains a judge, a minute
def test_removing_the_judge_brings_back_the_fused_ranking(judged_kb, tmp_path):
    from typer.testing import CliRunner

    from knowledge_base.store import KnowledgeBase
    from qa_service.cli import app
    from qa_service.engine import QAEngine

    kb_dir, report, _, _ = judged_kb
    copy = tmp_path / "kb"
    shutil.copytree(kb_dir, copy)
    shown = CliRunner().invoke(app, ["model", "show", "--kb", str(copy)])
    assert shown.exit_code == 0 and report.judge_id in shown.output
    removed = CliRunner().invoke(app, ["model", "remove-judge", "--kb", str(copy)])
    assert removed.exit_code == 0 and "removed" in removed.output
    assert QAEngine(KnowledgeBase(copy), Settings()).state.judge is None


def test_train_judge_without_labelled_questions_is_a_clear_error(tmp_path):
    from typer.testing import CliRunner

    from qa_service.cli import app

    result = CliRunner().invoke(app, ["model", "train-judge", "--kb", str(tmp_path / "kb"),
                                      "--fit", str(tmp_path / "missing.jsonl")])
    assert result.exit_code != 0 and "error" in result.output


def _store_as_format_4(kb_dir: Path) -> None:
    """Rewrite the stored judge's body as the previous version stored the shipped default: format 4 (the query
    tower's fields, switched off) over the same features."""
    import sqlite3

    db = sqlite3.connect(kb_dir / "policyqa.sqlite3")
    body = json.loads(db.execute("SELECT body FROM judge").fetchone()[0])
    body["format"], body["tower_id"] = 4, ""
    body["config"].update(tower_epochs=0, tower_learning_rate=2e-5, tower_temperature=0.05, tower_batch=32,
                          tower_negatives=7, tower_follow_ups=False)
    db.execute("UPDATE judge SET body = ?", (json.dumps(body, ensure_ascii=False),))
    db.commit()
    db.close()


@pytest.mark.slow  # judged_kb trains a judge, a minute
def test_a_judge_stored_by_an_earlier_version_is_refused_with_what_to_do(judged_kb, tmp_path, caplog):
    """A judge of a format this code no longer reads (1-4: with or without the removed query tower) is not served:
    `policyqa model show` fails with an error line saying to retrain; the engine starts without it, logs the same
    advice and answers with the fused ranking."""
    import logging

    from typer.testing import CliRunner

    from knowledge_base.judge import RETRAIN, StaleJudgeError, load_judge
    from knowledge_base.store import KnowledgeBase
    from qa_service.cli import app
    from qa_service.engine import QAEngine

    kb_dir, report, _, _ = judged_kb
    copy = tmp_path / "kb"
    shutil.copytree(kb_dir, copy)
    _store_as_format_4(copy)
    assert RETRAIN == "retrain with `policyqa model train-judge`"
    with pytest.raises(StaleJudgeError, match="format 4.*retrain with `policyqa model train-judge`"):
        load_judge(KnowledgeBase(copy))
    shown = CliRunner().invoke(app, ["model", "show", "--kb", str(copy)])
    assert shown.exit_code != 0 and "error" in shown.output and RETRAIN in shown.output
    with caplog.at_level(logging.ERROR, logger="qa_service.engine"):
        engine = QAEngine(KnowledgeBase(copy), Settings())
    assert engine.state.judge is None and engine.state.judge_id == report.judge_id
    assert any(RETRAIN in r.getMessage() for r in caplog.records)
    timings: dict = {}
    answer = engine.ask("失业保险金最长能领多长时间？", mode="hybrid", record=False, timings=timings)
    assert "judge" not in timings  # the fused ranking answers
    assert answer.answered and any("失业保险条例" in c.title for c in answer.citations[:3])


def test_a_judge_trained_on_other_features_is_refused():
    import lightgbm
    import numpy as np

    from knowledge_base.featurize import PASSAGE_FEATURES
    from knowledge_base.judge import Answerability, Judge, StaleJudgeError

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, len(PASSAGE_FEATURES))).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 4] > 0).astype(int)
    ranker = lightgbm.LGBMRanker(n_estimators=20, min_child_samples=5, verbose=-1).fit(x, y, group=[20] * 10)
    answerability = Answerability(np.zeros(2, np.float32), np.ones(2, np.float32), np.ones(2, np.float32), 0.0)
    text, body = Judge(ranker.booster_, answerability, 0.3).serialize()
    again = Judge.deserialize(text, body)  # today's format round-trips
    assert again.threshold == pytest.approx(0.3) and np.allclose(again.rank(x), ranker.booster_.predict(x))
    with pytest.raises(StaleJudgeError, match="other features.*retrain with `policyqa model train-judge`"):
        Judge.deserialize(text, {**body, "passage_features": [*PASSAGE_FEATURES, "tower_cos"]})


def test_train_judge_from_the_command_line(small_kb, tmp_path):
    from typer.testing import CliRunner

    from knowledge_base.judge import load_judge
    from knowledge_base.store import KnowledgeBase
    from qa_service.cli import app
    from qa_service.engine import QAEngine

    copy = tmp_path / "kb"
    shutil.copytree(small_kb, copy)
    result = CliRunner().invoke(app, ["model", "train-judge", "--kb", str(copy), "--no-layperson",
                                      "--fit", str(write_gold(tmp_path / "fit.jsonl", FIT)),
                                      "--select", str(write_gold(tmp_path / "select.jsonl", SELECT))])
    assert result.exit_code == 0, result.output
    judge = load_judge(KnowledgeBase(copy))
    assert judge is not None and judge.judge_id in result.output
    engine = QAEngine(KnowledgeBase(copy), Settings())
    assert engine.state.judge_id == judge.judge_id
    timings: dict = {}
    engine.ask("国庆节一共放几天", mode="hybrid", record=False, timings=timings)
    assert "judge" in timings


def test_soft_coverage_counts_a_word_the_passage_lacks_by_its_nearest_word(small_kb, tmp_path):
    """Exact coverage gives 辞退 nothing in the 失业保险条例's article on who is paid (it says 非因本人意愿中断就业);
    soft coverage gives it the cosine of the article's nearest word, more than a 放假 article's nearest word gets, and
    a word the passage has counts fully. The vocabulary's vectors are kept on disk and read back, not encoded again."""
    import numpy as np

    from knowledge_base.featurize import PASSAGE_FEATURES, WordVectorCache
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    settings = Settings(cache_dir=tmp_path / "cache", judge="off")
    engine = QAEngine(KnowledgeBase(small_kb), settings)
    inputs = engine.judge_inputs("我被辞退了，要满足什么条件才能领失业金")
    cands, evidence, featurizer = inputs.cands, inputs.evidence, engine.state.featurizer
    soft = featurizer.soft_coverage(["辞退"], cands.positions)
    exact = engine.state.retriever.coverage(["辞退"], cands.positions)
    texts = [ev.chunk.text for ev in evidence]
    unpaid = next(i for i, t in enumerate(texts) if "非因本人意愿中断就业" in t)
    holiday = next((i for i, ev in enumerate(evidence) if "放假办法" in ev.document.meta.title), None)
    assert exact[unpaid] == 0 and 0.5 < soft[unpaid, 0] < 1 and soft[unpaid, 1] == soft[unpaid, 0]
    if holiday is not None:
        assert soft[unpaid, 0] > soft[holiday, 0]
    vocabulary = engine.state.retriever.terms.words()
    assert "失业" in vocabulary
    full = featurizer.soft_coverage(["失业"], cands.positions)
    has = engine.state.retriever.coverage(["失业"], cands.positions) == 1  # the indexed text (title included) has it
    assert has.any() and (~has).any()
    assert np.allclose(full[has, 0], 1.0) and np.allclose(full[has, 1], 0.0) and (full[~has, 0] < 1).all()
    # the judge's rows carry the question's soft coverage (its content words) and its gap to the best candidate
    question = featurizer.soft_coverage(inputs.query.words, cands.positions)
    col = {n: i for i, n in enumerate(PASSAGE_FEATURES)}
    assert np.array_equal(inputs.x[:, col["soft_coverage"]], question[:, 0])
    assert np.array_equal(inputs.x[:, col["soft_gap"]], question[:, 0].max() - question[:, 0])

    cache = WordVectorCache(settings.cache_dir, engine.embedder.model_id)
    assert cache.path.is_file()

    def no_encoding(words):
        raise AssertionError(f"encoded again: {words[:3]}")

    table = cache.lookup(vocabulary[:50], no_encoding)
    assert table.shape == (50, engine.embedder.dim) and np.allclose(np.linalg.norm(table.astype(np.float32), axis=1), 1, atol=1e-2)
