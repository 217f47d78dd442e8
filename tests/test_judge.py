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


def _tower_config():
    import dataclasses

    from knowledge_base.judge import JudgeConfig

    return dataclasses.replace(JudgeConfig(), tower_epochs=2)  # the judge with its query tower (an option since round 7)


TOWER = _tower_config()


def write_gold(path: Path, rows: list[dict]) -> Path:
    lines = [json.dumps({**r, "answerable": "sources" in r}, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


@pytest.fixture(scope="module")
def judged_kb(small_kb, tmp_path_factory):
    """A private copy of small_kb with a judge trained on the questions above (no layperson file: seconds)."""
    from knowledge_base.store import KnowledgeBase
    from qa_service.judge_train import JudgeTrainer, TrainingSources

    root = tmp_path_factory.mktemp("judged")
    kb_dir = root / "kb"
    shutil.copytree(small_kb, kb_dir)
    sources = TrainingSources(fit=[write_gold(root / "fit.jsonl", FIT)], select=[write_gold(root / "select.jsonl", SELECT)],
                              faq_sheets=[SHARED / "faq" / "sample_faq.csv"])
    settings = Settings(cache_dir=root / "cache")
    report = JudgeTrainer(KnowledgeBase(kb_dir), settings, sources, TOWER).run()
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
    from qa_service.judge_train import JudgeTrainer

    kb_dir, report, sources, _ = judged_kb
    copy = tmp_path / "kb"
    shutil.copytree(kb_dir, copy)
    again = JudgeTrainer(KnowledgeBase(copy), Settings(cache_dir=tmp_path / "cache"), sources, TOWER).run()
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
    assert engine.state.tower is not None and "tower" in timings  # the judge's query tower encoded the question
    assert engine.state.judge.uses_soft_coverage and "soft" in timings  # soft coverage is one of its features
    assert any("失业保险条例" in c.title and "24个月" in c.quote for c in answer.citations[:3])
    refused = engine.ask("今天股市行情怎么样", mode="hybrid", record=False)
    assert not refused.answered and refused.citations == []


@pytest.mark.slow  # judged_kb trains a judge, a minute
def test_a_completed_follow_up_and_search_are_judged_without_the_tower(judged_kb):
    """A judge with a tower carries the models fitted without it; the engine judges a completed follow-up (with their
    own threshold) and the operator's search with those, without encoding the question a second time, and a first
    question with the tower's."""
    import uuid

    from knowledge_base.judge import BASE_FEATURES, load_judge
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    kb_dir, report, _, _ = judged_kb
    judge = load_judge(KnowledgeBase(kb_dir))
    plain = judge.without_tower
    assert judge.uses_tower and plain is not None and plain.features == BASE_FEATURES and not plain.uses_tower
    assert judge.judging(tower=False) is plain and judge.judging() is judge
    assert report.without_tower_selection["threshold"] == pytest.approx(plain.threshold)
    engine = QAEngine(KnowledgeBase(kb_dir), Settings())
    sid = uuid.uuid4().hex
    first: dict = {}
    engine.ask("失业保险金最长能领多久？", session_id=sid, mode="hybrid", record=False, timings=first)  # no FAQ answer
    follow: dict = {}
    answer = engine.ask("那失业保险金的标准由谁确定？", session_id=sid, mode="hybrid", record=False, timings=follow)
    assert answer.understood_question  # completed from the first question
    assert "tower" in first and "tower" not in follow and "judge" in follow
    searched: dict = {}
    assert engine.search("失业保险金最长能领多久", timings=searched) and "judge" in searched and "tower" not in searched


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


@pytest.mark.slow  # judged_kb trains a judge, a minute
def test_the_query_tower_is_stored_beside_the_judge_and_rebuilt_from_the_database(judged_kb, tmp_path):
    from safetensors.torch import load, load_file

    from knowledge_base.db import JudgeTowerRow
    from knowledge_base.encoder import encoder_folder
    from knowledge_base.judge import load_judge
    from knowledge_base.store import KnowledgeBase
    from knowledge_base.tower import FROZEN_PREFIXES, tower_folder

    kb_dir, report, _, settings = judged_kb
    kb = KnowledgeBase(kb_dir)
    judge = load_judge(kb)
    assert judge.tower_id.startswith("tower-") and judge.tower_id == report.judge.tower_id
    with kb.session() as s:
        rows = s.query(JudgeTowerRow).all()
        assert [r.tower_id for r in rows] == [judge.tower_id]  # earlier towers are not kept
        stored = load(bytes(rows[0].weights))
    assert stored and not any(k.startswith(FROZEN_PREFIXES) for k in stored)  # the frozen embeddings are not stored
    base = encoder_folder(kb.encoder().spec, settings.cache_dir)
    folder = tower_folder(kb, judge.tower_id, base, tmp_path / "elsewhere")  # another machine's cache
    rebuilt, original = load_file(str(folder / "model.safetensors")), load_file(str(base / "model.safetensors"))
    assert set(rebuilt) == set(original)
    assert all((rebuilt[k] == stored[k]).all() for k in stored)
    assert all((rebuilt[k] == original[k]).all() for k in original if k.startswith(FROZEN_PREFIXES))
    assert any(not (stored[k] == original[k]).all() for k in stored)  # training changed the layers


@pytest.mark.slow  # judged_kb trains a judge, a minute
def test_a_judge_whose_tower_is_missing_is_not_served(judged_kb, tmp_path):
    from knowledge_base.db import JudgeTowerRow
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    kb_dir, report, _, _ = judged_kb
    copy = tmp_path / "kb"
    shutil.copytree(kb_dir, copy)
    kb = KnowledgeBase(copy)
    with kb.session() as s:
        s.query(JudgeTowerRow).delete()
        s.commit()
    engine = QAEngine(kb, Settings(cache_dir=tmp_path / "cache"))  # a cache that has never seen the tower
    assert engine.state.judge is None and engine.state.judge_id == report.judge_id
    answer = engine.ask("失业保险金最长能领多长时间？", mode="hybrid", record=False)
    assert answer.answered and any("失业保险条例" in c.title for c in answer.citations[:3])  # the fused ranking answers


def test_tower_training_moves_questions_towards_their_passages(small_kb):
    """The contrastive fine-tuning works: on its training questions the tower ranks each answering passage above the
    question's hard negatives more often, and by a wider margin, than the encoder it started from."""
    import dataclasses

    import numpy as np

    from knowledge_base.encoder import encoder_folder
    from knowledge_base.judge import JudgeConfig
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine
    from qa_service.judge_train import LabelledQuestion
    from qa_service.tower_train import CrossFittedTowers, TowerExample, encode

    kb = KnowledgeBase(small_kb)
    engine = QAEngine(kb, Settings(judge="off"))
    examples = []
    for row in FIT[:6]:
        q = LabelledQuestion(row["id"], row["question"], True, tuple(row["sources"]), tuple(row["evidence_any"]))
        jq, cands, evidence = engine.judge_inputs(q.question, depth=20)
        labels = np.array([q.is_positive(ev) for ev in evidence], np.int8)
        assert labels.any(), row["question"]
        examples.append(TowerExample(q.id, jq.text, engine.candidate_vectors(cands), labels, cands.dense, True))

    def margin(cos: np.ndarray, e: TowerExample) -> float:
        return float(cos[e.labels == 1].max() - cos[e.labels == 0].max())

    config = dataclasses.replace(JudgeConfig(), tower_epochs=6, tower_learning_rate=1e-4, tower_batch=6)
    towers = CrossFittedTowers(encoder_folder(kb.encoder().spec, Settings().cache_dir), config)
    towers.towers = [towers._train(examples, 0)]
    tuned = encode(towers.towers[0], [e.text for e in examples])
    before = [margin(e.base_cos, e) for e in examples]
    after = [margin(e.vectors @ v, e) for e, v in zip(examples, tuned)]
    assert sum(a > 0 for a in after) >= sum(b > 0 for b in before)
    assert np.mean(after) > np.mean(before) + 0.01


def test_tower_features_are_the_cosine_its_rank_and_gap():
    import numpy as np

    from knowledge_base.judge import PASSAGE_FEATURES, set_tower_features

    x = np.zeros((3, len(PASSAGE_FEATURES)), np.float32)
    set_tower_features(x, np.array([0.5, 0.9, 0.7]))
    col = {n: i for i, n in enumerate(PASSAGE_FEATURES)}
    assert x[:, col["tower_cos"]].tolist() == pytest.approx([0.5, 0.9, 0.7])
    assert x[:, col["tower_rank"]].tolist() == pytest.approx(np.log1p([2, 0, 1]).tolist())
    assert x[:, col["tower_gap"]].tolist() == pytest.approx([0.4, 0.0, 0.2])


def test_train_judge_without_a_tower(small_kb, tmp_path):
    from typer.testing import CliRunner

    from knowledge_base.judge import BASE_FEATURES
    from knowledge_base.judge import load_judge
    from knowledge_base.store import KnowledgeBase
    from qa_service.cli import app
    from qa_service.engine import QAEngine

    copy = tmp_path / "kb"
    shutil.copytree(small_kb, copy)
    result = CliRunner().invoke(app, ["model", "train-judge", "--kb", str(copy), "--no-layperson", "--tower-epochs", "0",
                                      "--fit", str(write_gold(tmp_path / "fit.jsonl", FIT)),
                                      "--select", str(write_gold(tmp_path / "select.jsonl", SELECT))])
    assert result.exit_code == 0, result.output
    judge = load_judge(KnowledgeBase(copy))
    assert judge is not None and judge.tower_id == ""
    assert judge.features == BASE_FEATURES  # its ranker takes no tower columns: the judge as before towers existed
    engine = QAEngine(KnowledgeBase(copy), Settings())
    assert engine.state.judge_id == judge.judge_id and engine.state.tower is None
    timings: dict = {}
    engine.ask("国庆节一共放几天", mode="hybrid", record=False, timings=timings)
    assert "judge" in timings and "tower" not in timings


def test_soft_coverage_counts_a_word_the_passage_lacks_by_its_nearest_word(small_kb, tmp_path):
    """Exact coverage gives 辞退 nothing in the 失业保险条例's article on who is paid (it says 非因本人意愿中断就业);
    soft coverage gives it the cosine of the article's nearest word, more than a 放假 article's nearest word gets, and
    a word the passage has counts fully. The vocabulary's vectors are kept on disk and read back, not encoded again."""
    import numpy as np

    from knowledge_base.store import KnowledgeBase
    from knowledge_base.word_vectors import WordVectorCache
    from qa_service.engine import QAEngine

    settings = Settings(cache_dir=tmp_path / "cache", judge="off")
    engine = QAEngine(KnowledgeBase(small_kb), settings)
    jq, cands, evidence = engine.judge_inputs("我被辞退了，要满足什么条件才能领失业金")
    soft = engine.soft_coverage(["辞退"], cands)
    exact = engine.state.retriever.coverage(["辞退"], cands.positions)
    texts = [ev.chunk.text for ev in evidence]
    unpaid = next(i for i, t in enumerate(texts) if "非因本人意愿中断就业" in t)
    holiday = next((i for i, ev in enumerate(evidence) if "放假办法" in ev.document.meta.title), None)
    assert exact[unpaid] == 0 and 0.5 < soft[unpaid, 0] < 1 and soft[unpaid, 1] == soft[unpaid, 0]
    if holiday is not None:
        assert soft[unpaid, 0] > soft[holiday, 0]
    assert "失业" in engine.state.retriever.vocabulary()
    full = engine.soft_coverage(["失业"], cands)
    has = engine.state.retriever.coverage(["失业"], cands.positions) == 1  # the indexed text (title included) has it
    assert has.any() and (~has).any()
    assert np.allclose(full[has, 0], 1.0) and np.allclose(full[has, 1], 0.0) and (full[~has, 0] < 1).all()

    vocabulary = engine.state.retriever.vocabulary()
    cache = WordVectorCache(settings.cache_dir, engine.embedder.model_id)
    assert cache.path.is_file()

    def no_encoding(words):
        raise AssertionError(f"encoded again: {words[:3]}")

    table = cache.lookup(vocabulary[:50], no_encoding)
    assert table.shape == (50, engine.embedder.dim) and np.allclose(np.linalg.norm(table.astype(np.float32), axis=1), 1, atol=1e-2)


def test_a_judge_stored_before_towers_still_serves():
    """A format-1 judge (its ranker takes the passage features without the tower's) loads and ranks rows of today's
    features by its own columns; a judge naming a feature that is no longer computed is refused clearly."""
    import lightgbm
    import numpy as np

    from knowledge_base.judge import BASE_FEATURES, PASSAGE_FEATURES, SOFT_FEATURES, Answerability, Judge

    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, len(PASSAGE_FEATURES))).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 4] > 0).astype(int)
    base = [PASSAGE_FEATURES.index(n) for n in BASE_FEATURES]
    ranker = lightgbm.LGBMRanker(n_estimators=20, min_child_samples=5, verbose=-1).fit(x[:, base], y, group=[20] * 10)
    answerability = Answerability(np.zeros(2, np.float32), np.ones(2, np.float32), np.ones(2, np.float32), 0.0)
    judge = Judge(ranker.booster_, answerability, 0.3, features=BASE_FEATURES)
    text, body = judge.serialize()
    body["format"] = 1
    body.pop("tower_id")
    old = Judge.deserialize(text, body)
    assert old.features == BASE_FEATURES and old.tower_id == ""
    before_soft = tuple(n for n in BASE_FEATURES if n not in SOFT_FEATURES)  # a judge trained before round 7
    assert not Judge(ranker.booster_, answerability, 0.3, features=before_soft).uses_soft_coverage and old.uses_soft_coverage
    assert np.allclose(old.rank(x), ranker.booster_.predict(x[:, base]))
    # a judge carrying its models without the tower round-trips with them (and other such models make another judge)
    judge.without_tower = Judge(ranker.booster_, answerability, 0.2, features=BASE_FEATURES)
    both = Judge.deserialize(*judge.serialize())
    assert both.without_tower is not None and both.judging(tower=False).threshold == pytest.approx(0.2)
    assert np.allclose(both.judging(tower=False).rank(x), ranker.booster_.predict(x[:, base]))
    first_id = both.judge_id
    judge.without_tower.threshold = 0.25
    judge.serialize()
    assert judge.judge_id != first_id
    body["passage_features"] = [*BASE_FEATURES, "a_feature_gone"]
    with pytest.raises(ValueError, match="retrain"):
        Judge.deserialize(text, body)
