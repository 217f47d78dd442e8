"""Train the learned answer judge (knowledge_base.judge) on this knowledge base's own data, on the CPU, in minutes.

    report = JudgeTrainer(kb, settings, TrainingSources(fit=[Path("eval/questions/train_local.jsonl")],
                                                         select=[Path("../shared/eval/dev.jsonl")])).run()
    report.judge_id, report.sizes, report.selection     # stored in the knowledge base: the engine serves it

Where the labels come from (every deployment has these):
- labelled questions on this corpus (the gold JSONL format: question, title substrings `sources`, passage
  substrings `evidence_any`): a candidate is a positive when its title contains a source and its passage an
  evidence string, the rule `policyqa eval` counts a hit by;
- the curated FAQ: each question and 相似问法 against the article it names (来源文件 + 条款); staff's "promote to FAQ"
  drafts count once they name their sources;
- 没帮助 feedback: the passage quoted first is a negative for that question;
- real layperson questions whose statutes are not in this corpus (`train/layperson_statutes.jsonl`, STARD, MIT): their
  articles are ingested into a side knowledge base (same chunker, encoder and retriever, so passages are formatted and
  scored exactly as at serving) and every other question's article is a negative there;
- leave-the-document-out: each answerable question asked again without the documents that answer it is an
  unanswerable near miss (the answerability model's negatives).
Fitting: the ranker (LightGBM LambdaMART) on the fit questions; the answerability regression on out-of-fold ranker
scores of the same questions (5 folds), so it sees rankings as good as unseen questions get; the refusal threshold is
chosen on the selection questions, which neither model saw. Deterministic for a seed. Every feature row is the one
the engine serves (QAEngine.judge_inputs, knowledge_base.featurize).

Training lives in this subpackage: the answering path (qa_service.engine and what it imports) never imports it, nor
`ingest`, which builds the side knowledge base here.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ingest.faq_sheet import read_faq_sheet
from ingest.pipeline import IngestPipeline
from knowledge_base.curation_signals import curated_faqs, unhelpful_answers
from knowledge_base.encoder_store import current_encoder_info
from knowledge_base.featurize import JudgeFeaturizer, JudgeQuery
from knowledge_base.judge import Answerability, Judge, JudgeConfig, store_judge
from knowledge_base.retrieval import Candidates
from knowledge_base.settings import Settings
from knowledge_base.store import KnowledgeBase
from knowledge_base.text import ARTICLE_LABEL, cn_to_int, fold

from ..compose import Evidence
from ..engine import JudgeInputs, QAEngine
from .split import for_encoder

log = logging.getLogger(__name__)
_WS = re.compile(r"\s+")

# The training data a checkout has: this repository's labelled questions and the shared data beside it.
PROJECT = Path(__file__).resolve().parents[2]
SHARED = PROJECT.parent / "shared"
# train_more.jsonl (round 5) is not in the default: on the selection questions it cost 4 of 68 refusals at the same
# false-refusal rate and moved hit@1 by one (README "The answer judge", round 5); `--fit` adds it.
DEFAULT_FIT = tuple(PROJECT / f"eval/questions/train_{name}.jsonl" for name in ("national", "local", "extra"))
DEFAULT_SELECT = (PROJECT / "eval/questions/tune.jsonl", SHARED / "eval/dev.jsonl", PROJECT / "eval/questions/select.jsonl")
DEFAULT_LAYPERSON = SHARED / "train/layperson_statutes.jsonl"
DEFAULT_FAQ_SHEETS = (SHARED / "faq/sample_faq.csv",)


def existing(paths) -> list[Path]:
    return [Path(p) for p in paths if Path(p).exists()]


def squash(text: str | None) -> str:
    return _WS.sub("", text or "")


@dataclass(frozen=True)
class LabelledQuestion:
    """A question with what answers it: title substrings and passage substrings (or article labels)."""

    id: str
    question: str
    answerable: bool
    sources: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # passage substrings (the gold format's evidence_any)
    articles: tuple[str, ...] = ()  # or article labels (第七条), for FAQ links
    rejected: tuple[tuple[str, str | None], ...] = ()  # (doc_id, anchor) passages known not to answer
    origin: str = "gold"

    def is_positive(self, ev: Evidence) -> bool:
        return self.answered_by(ev.document.meta.title, ev.chunk.text, ev.chunk.section_path)

    def cites(self, title: str) -> bool:
        """Whether a document of this title is one the question's sources name."""
        title = squash(fold(title))
        return any(squash(fold(s)) in title or title in squash(fold(s)) for s in self.sources)

    def answered_by(self, title: str, text: str, section_path: str) -> bool:
        """The rule `policyqa eval` counts a hit by: a cited document, and an evidence string (or article) in it."""
        if not self.cites(title):
            return False
        flat = squash(text)
        if any(squash(e) in flat for e in self.evidence):
            return True
        section = squash(section_path)
        return any(a and (a in section or flat.startswith(a) or f"\n{a}" in text) for a in self.articles)

    def is_rejected(self, ev: Evidence) -> bool:
        return any(ev.document.doc_id == d and (a is None or ev.chunk.anchor == a) for d, a in self.rejected)


def load_labelled(path: Path, origin: str | None = None) -> list[LabelledQuestion]:
    """Questions in the gold JSONL format (eval/questions/*.jsonl, ../shared/eval/dev.jsonl)."""
    out = []
    for n, line in enumerate(Path(path).read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        d = json.loads(line)
        out.append(LabelledQuestion(str(d.get("id", f"{Path(path).stem}-{n}")), d["question"], bool(d["answerable"]),
                                    tuple(d.get("sources") or ()), tuple(d.get("evidence_any") or ()),
                                    origin=origin or Path(path).stem))
    return out


@dataclass
class Example:
    """One question's candidates as the judge sees them, with labels."""

    question: LabelledQuestion
    query: JudgeQuery
    cands: Candidates
    x: np.ndarray  # passage features (knowledge_base.featurize, as served)
    y: np.ndarray  # 1: answers the question
    answerable: bool  # False for unanswerable questions and leave-the-document-out copies
    rankable: bool = True  # used by the ranker (has a positive)
    left_out: bool = False  # a leave-the-document-out copy

    @property
    def group(self) -> str:
        """Questions that must fall on one side of a split: an FAQ entry's question and its 相似问法 are one."""
        return self.question.id.rsplit("-", 1)[0] if self.question.origin == "faq" else self.question.id


@dataclass
class TrainingSources:
    fit: list[Path] = field(default_factory=list)  # labelled questions the models are fitted on
    select: list[Path] = field(default_factory=list)  # labelled questions the threshold is chosen on (never fitted)
    layperson: Path | None = None  # ../shared/train/layperson_statutes.jsonl
    faq_sheets: list[Path] = field(default_factory=list)  # FAQ spreadsheets beyond the knowledge base's own entries
    use_curation: bool = True  # the knowledge base's FAQ entries and 没帮助 feedback
    leave_document_out: bool = True
    layperson_limit: int = 0  # 0: all
    layperson_answerability: bool = False  # also fit the answerability model on the layperson questions


@dataclass
class TrainingReport:
    judge_id: str
    data_hash: str
    sizes: dict[str, int]
    selection: dict
    calibration: list[dict]
    threshold: float
    seconds: dict[str, float]
    judge: Judge | None = field(default=None, repr=False)


def _progress_noop(stage: str, done: int, total: int) -> None:
    pass


class JudgeTrainer:
    def __init__(self, kb: KnowledgeBase, settings: Settings, sources: TrainingSources,
                 config: JudgeConfig | None = None, progress: Callable[[str, int, int], None] | None = None,
                 cache_dir: Path | None = None):
        self.kb = kb
        self.settings = settings
        self.sources = sources
        self.config = config or JudgeConfig()
        self.progress = progress or _progress_noop
        self.cache_dir = Path(cache_dir or settings.cache_dir)
        encoder = current_encoder_info(kb)  # a fine-tuned encoder: fit only on what it did not learn from
        self.encoder_share = float(encoder["info"]["config"]["encoder_share"]) if encoder else 0.0

    # ---------------------------------------------------------------- data
    def _engine(self, kb: KnowledgeBase) -> QAEngine:
        return QAEngine(kb, self.settings.model_copy(update={"judge": "off"}))

    def examples(self, engine: QAEngine, questions: list[LabelledQuestion], stage: str,
                 leave_out: bool = False) -> list[Example]:
        """Each question's candidates with their feature rows as the engine serves them (QAEngine.judge_inputs),
        labelled; with `leave_out`, an answerable question again without the documents that answer it."""
        out = []
        for i, q in enumerate(questions):
            self.progress(stage, i, len(questions))
            inputs = engine.judge_inputs(q.question, depth=self.config.depth)
            if inputs is None:
                continue
            y = np.array([q.answerable and q.is_positive(ev) for ev in inputs.evidence], np.int8)
            rejected = np.array([q.is_rejected(ev) for ev in inputs.evidence], bool)
            if rejected.any():
                y[rejected] = 0
            out.append(_example(q, inputs, y, q.answerable and bool(y.any()), rankable=bool(y.any())))
            if leave_out and q.answerable and y.any():
                answering = {ev.document.doc_id for ev, label in zip(inputs.evidence, y) if label}
                left = engine.judge_inputs(q.question, exclude_docs=answering, depth=self.config.depth)
                if left is not None:
                    # another document may answer too (a local rule beside a national one): those stay positives
                    y2 = np.array([q.is_positive(ev) for ev in left.evidence], np.int8)
                    out.append(_example(q, left, y2, bool(y2.any()), rankable=False, left_out=True))
        self.progress(stage, len(questions), len(questions))
        return out

    def faq_questions(self) -> list[LabelledQuestion]:
        entries = curated_faqs(self.kb) if self.sources.use_curation else []
        if self.sources.faq_sheets:
            for sheet in self.sources.faq_sheets:
                entries += list(read_faq_sheet(Path(sheet).read_bytes(), Path(sheet).name).entries)
        out = []
        for e in entries:
            if self.encoder_share and for_encoder(e.faq_id, self.encoder_share):
                continue  # the fine-tuned encoder learnt from this entry
            for j, text in enumerate([e.question, *e.variants]):
                out.append(LabelledQuestion(f"{e.faq_id}-{j}", text, True, tuple(e.source_titles),
                                            articles=tuple(e.source_articles), origin="faq"))
        return out

    def feedback_questions(self) -> list[LabelledQuestion]:
        if not self.sources.use_curation:
            return []
        return [LabelledQuestion(f"feedback-{i}", r.question, False, rejected=((r.doc_id, r.anchor),), origin="feedback")
                for i, r in enumerate(unhelpful_answers(self.kb))]

    def layperson_examples(self) -> list[Example]:
        """Layperson questions against a side knowledge base of their own statutes' articles."""
        path = self.sources.layperson
        if path is None or not Path(path).exists():
            return []
        rows = [json.loads(line) for line in Path(path).read_text("utf-8").splitlines() if line.strip()]
        if self.encoder_share:  # the fine-tuned encoder's share is not fitted on here
            rows = [r for r in rows if not for_encoder(str(r["id"]), self.encoder_share)]
        if self.sources.layperson_limit:
            rows = rows[: self.sources.layperson_limit]
        side = self._side_kb(rows)
        engine = self._engine(side)
        questions = []
        for r in rows:
            arts = r["articles"]
            questions.append(LabelledQuestion(
                str(r["id"]), r["question"], True, tuple(_law_title(a["law"]) for a in arts),
                evidence=tuple(squash(a["text"])[:40] for a in arts if a.get("text")), origin="layperson"))
        return self.examples(engine, questions, "layperson", leave_out=self.sources.leave_document_out)

    def _side_kb(self, rows: list[dict]) -> KnowledgeBase:
        """Their articles as one Markdown file per law, ingested once into a cached side knowledge base."""
        laws: dict[str, dict[str, str]] = {}
        for r in rows:
            for a in r["articles"]:
                laws.setdefault(_law_title(a["law"]), {})[a["article"]] = a.get("text", "")
        blob = json.dumps(laws, ensure_ascii=False, sort_keys=True)
        key = hashlib.sha256(blob.encode()).hexdigest()[:12]
        encoder = self.kb.encoder()
        directory = self.cache_dir / "judge-side" / f"layperson-{key}-{hashlib.sha256((encoder.model_id if encoder else '').encode()).hexdigest()[:8]}"
        kb = KnowledgeBase(directory / "kb")
        if kb.state().generation > 0:
            return kb
        corpus = directory / "corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        for i, (law, articles) in enumerate(sorted(laws.items())):
            def number(label: str) -> int:
                m = ARTICLE_LABEL.match(label)
                return cn_to_int(m.group(2)) if m else 10**6

            body = "\n\n".join(f"{label} {text.strip()}" for label, text in sorted(articles.items(), key=lambda kv: number(kv[0])))
            (corpus / f"law{i:03d}.md").write_text(f"# {law}\n\n<!-- INFO END -->\n\n{body}\n", "utf-8")
        report = IngestPipeline(kb, encoder=(encoder.spec, encoder.backend) if encoder else None).run([corpus])
        if report.failed:
            raise RuntimeError(f"building the layperson side knowledge base failed: {report.failed[0].error}")
        return kb

    # ---------------------------------------------------------------- fitting
    def _fit_ranker(self, examples: list[Example]):
        import lightgbm  # lazy: lightgbm costs 0.7 s at start-up of every `policyqa` command, only training needs it

        rankable = [e for e in examples if e.rankable]
        x = np.vstack([e.x for e in rankable])
        y = np.concatenate([e.y for e in rankable])
        groups = [len(e.y) for e in rankable]
        c = self.config
        ranker = lightgbm.LGBMRanker(
            objective="lambdarank", n_estimators=c.ranker_trees, num_leaves=c.ranker_leaves,
            learning_rate=c.ranker_learning_rate, min_child_samples=c.ranker_min_child, subsample=0.8,
            subsample_freq=1, colsample_bytree=0.8, random_state=c.seed, n_jobs=2, verbose=-1,
            lambdarank_truncation_level=10, deterministic=True, force_row_wise=True,
        )
        ranker.fit(x, y, group=groups)
        return ranker.booster_

    def _question_rows(self, booster, examples: list[Example], depth: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Question features under `booster`'s ranking, whether its first passage is a positive, and whether one of
        its first `depth` passages is."""
        rows, labels, found = [], [], []
        for e in examples:
            scores = np.asarray(booster.predict(e.x, num_threads=1), np.float32)
            order = np.argsort(-scores, kind="stable")
            rows.append(JudgeFeaturizer.question_row(e.query, e.cands.take(order), e.x[order], scores[order]))
            labels.append(int(e.answerable and e.y[order[0]] == 1))
            found.append(int(e.answerable and bool((e.y[order[:depth]] == 1).any())))
        return np.array(rows, np.float32), np.array(labels, np.int8), np.array(found, np.int8)

    def _fit_answerability(self, examples: list[Example], folds: int = 5) -> Answerability:
        """P(the first passage answers), fitted on out-of-fold rankings of the same questions."""
        rng = np.random.default_rng(self.config.seed)
        qids = sorted({e.group for e in examples})
        fold_of = {q: int(f) for q, f in zip(qids, rng.integers(0, folds, len(qids)))}
        rows, labels = [], []
        for f in range(folds):
            train = [e for e in examples if fold_of[e.group] != f]
            held = [e for e in examples if fold_of[e.group] == f]
            if not held:
                continue
            booster = self._fit_ranker(train)
            r, l, _ = self._question_rows(booster, held)
            rows.append(r)
            labels.append(l)
            self.progress("answerability folds", f + 1, folds)
        return self._logistic(np.vstack(rows), np.concatenate(labels))

    def _logistic(self, x: np.ndarray, y: np.ndarray) -> Answerability:
        from sklearn.linear_model import LogisticRegression  # lazy: scikit-learn costs 0.7 s at start-up, only training needs it

        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale < 1e-6] = 1.0
        model = LogisticRegression(C=self.config.answerability_c, max_iter=2000).fit((x - mean) / scale, y)
        return Answerability(mean, scale, model.coef_[0].astype(np.float32), float(model.intercept_[0]))

    # ---------------------------------------------------------------- the whole run
    def collect(self) -> tuple[list[Example], list[Example], dict[str, float]]:
        """(fit examples from every source, selection examples, seconds per stage)."""
        times: dict[str, float] = {}
        t = time.perf_counter()
        engine = self._engine(self.kb)
        fit_q = [q for p in self.sources.fit for q in load_labelled(p)]
        select_q = [q for p in self.sources.select for q in load_labelled(p)]
        ids = {q.id for q in select_q}
        if any(q.id in ids for q in fit_q):
            raise ValueError("a question is both in the fit and the selection set")
        leave_out = self.sources.leave_document_out
        fit = self.examples(engine, fit_q, "gold questions", leave_out=leave_out)
        fit += self.examples(engine, self.faq_questions(), "FAQ questions", leave_out=leave_out)
        fit += self.examples(engine, self.feedback_questions(), "feedback")
        times["collect"] = time.perf_counter() - t
        t = time.perf_counter()
        fit += self.layperson_examples()
        times["layperson"] = time.perf_counter() - t
        t = time.perf_counter()
        selection = self.examples(engine, select_q, "selection questions") if select_q else []
        times["select_collect"] = time.perf_counter() - t
        return fit, selection, times

    def fit(self, fit: list[Example], selection: list[Example]) -> tuple[Judge, list[dict], dict]:
        """Fit both models on `fit`, choose the threshold on `selection`: (judge, calibration table, summary)."""
        if not any(e.rankable for e in fit):
            raise ValueError("no training question has a positive passage in this knowledge base")
        # Layperson questions are asked of a side knowledge base of ~700 passages: they teach the ranker how citizens
        # word a question against statute text, but their lists' shape (scores, margins) is not this knowledge
        # base's, so the answerability model learns from this knowledge base's questions only.
        answerability_examples = [e for e in fit if e.question.origin != "layperson" or self.sources.layperson_answerability]
        answerability = self._fit_answerability(answerability_examples)
        booster = self._fit_ranker(fit)
        judge = Judge(booster, answerability, threshold=0.5, config=self.config)
        calibration, threshold, summary = self.choose_threshold(judge, selection)
        judge.threshold = threshold
        return judge, calibration, summary

    def run(self, store: bool = True) -> TrainingReport:
        fit, selection, times = self.collect()
        sizes = _sizes(fit)
        data_hash = _data_hash(fit)
        t = time.perf_counter()
        judge, calibration, summary = self.fit(fit, selection)
        times["fit"] = time.perf_counter() - t
        judge.info.update({"sizes": sizes, "data_hash": data_hash, "model_id": self.kb.encoder().model_id, "selection": summary, "seed": self.config.seed,
                           "calibration": calibration[4::5],
                           "fit_files": [str(p) for p in self.sources.fit],
                           "select_files": [str(p) for p in self.sources.select]})
        if store:
            judge_id = store_judge(self.kb, judge, data_hash)
            judge.save(self.cache_dir / "judges" / judge_id)
        else:
            judge.serialize()
        return TrainingReport(judge.judge_id, data_hash, sizes, summary, calibration, judge.threshold, times, judge)

    def choose_threshold(self, judge: Judge, selection: list[Example]) -> tuple[list[dict], float, dict]:
        """The calibration table on the selection questions and the two operating points (issue 21): the answer
        threshold (`judge.threshold`) and the suggest threshold (`judge.suggest_threshold`, set here)."""
        if not selection:
            return [], 0.5, {}
        rows, labels, found = self._question_rows(judge.ranker, selection, self.config.suggest_depth)
        conf = np.array([judge.confidence(r) for r in rows])
        answerable = np.array([e.question.answerable for e in selection])
        correct, found = labels.astype(bool), found.astype(bool)
        table = calibration_table(conf, answerable, correct, found)
        answer_t, suggest_t = operating_points(table, self.config.max_wrong_answers, self.config.min_none_unanswerable)
        judge.suggest_threshold = suggest_t
        at = next(r for r in table if r["threshold"] == answer_t)
        helpful = helpful_share(conf, answerable, correct, found, answer_t, suggest_t)
        correct = labels.astype(bool)
        summary = {"questions": len(selection), "answerable": int(answerable.sum()),
                   "answerable_with_positive": int(sum(e.answerable for e in selection)),
                   "hit@1": float(correct[answerable].mean()) if answerable.any() else None,
                   "threshold": answer_t, "suggest_threshold": suggest_t,
                   "precision": at["precision"], "answered": at["answered_a"], "answer_u": at["answer_u"],
                   "helpful": helpful, "none_u": float((conf[~answerable] < suggest_t).mean()) if (~answerable).any() else None,
                   # the old operating point's figures, at the answer threshold
                   "refusal_u": at["none_u"], "false_refusal_a": at["false_refusal_a"], "wrong_top": at["wrong_top"]}
        return table, answer_t, summary


THRESHOLDS = np.round(np.arange(0.01, 1.0, 0.01), 2)


def calibration_table(conf: np.ndarray, answerable: np.ndarray, correct: np.ndarray, found: np.ndarray) -> list[dict]:
    """Per confidence threshold t, on labelled questions: `precision` of answering at t (the first passage right,
    an unanswerable question answered counts wrong), `answered_a` (share of the answerable ones answered),
    `answer_u` (share of the unanswerable ones answered), `none_u` (1 − answer_u: what `none` gets with t as the
    suggest threshold), `helpful_a` (answerable ones whose ranking has a right passage in its first few, at or
    above t), `false_refusal_a` and `wrong_top` (the single-threshold contract's figures)."""
    unanswerable = ~answerable
    table = []
    for t in THRESHOLDS:
        answered = conf >= t
        n = int(answered.sum())
        table.append({
            "threshold": float(t),
            "precision": float(correct[answered].mean()) if n else None,
            "answered_a": float(answered[answerable].mean()) if answerable.any() else None,
            "answer_u": float(answered[unanswerable].mean()) if unanswerable.any() else None,
            "none_u": float((~answered[unanswerable]).mean()) if unanswerable.any() else None,
            "helpful_a": float((answered & found)[answerable].mean()) if answerable.any() else None,
            "false_refusal_a": float((~answered[answerable]).mean()) if answerable.any() else None,
            "wrong_top": float((answered & ~correct).mean()),
        })
    return table


def operating_points(table: list[dict], max_wrong: float, min_none_u: float) -> tuple[float, float]:
    """(answer threshold, suggest threshold). Answer: the lowest threshold from which on every higher one keeps the
    precision of answering at least 1 − `max_wrong` (the share of wrong answers only falls as the bar rises);
    without one, nothing is answered. Suggest: the lowest threshold at which at least `min_none_u` of the
    unanswerable questions still get `none`: the most suggestions that bound allows."""
    answer_t = 1.0
    for row in reversed(table):
        if row["precision"] is not None and row["precision"] < 1 - max_wrong:
            break
        answer_t = row["threshold"]
    suggest_t = next((r["threshold"] for r in table if r["none_u"] is None or r["none_u"] >= min_none_u), 1.0)
    return answer_t, suggest_t


def helpful_share(conf: np.ndarray, answerable: np.ndarray, correct: np.ndarray, found: np.ndarray,
                  answer_t: float, suggest_t: float) -> float | None:
    """Answerable questions helped: answered with the right first passage, or suggested with a right one among them."""
    if not answerable.any():
        return None
    helped = ((conf >= answer_t) & correct) | ((conf < answer_t) & (conf >= suggest_t) & found)
    return float(helped[answerable].mean())


def _example(q: LabelledQuestion, inputs: JudgeInputs, y: np.ndarray, answerable: bool, **flags) -> Example:
    return Example(q, inputs.query, inputs.cands, inputs.x, y, answerable, **flags)


def _law_title(name: str) -> str:
    return name.removeprefix("中华人民共和国")


def _sizes(examples: list[Example]) -> dict[str, int]:
    """Questions per source: ranked (with a positive passage) and answerability-only (unanswerable, left out,
    rejected by feedback, or no positive among the candidates)."""
    out: dict[str, int] = {}
    for e in examples:
        key = f"{e.question.origin}: {'ranked' if e.rankable else 'answerability only'}"
        out[key] = out.get(key, 0) + 1
    out["candidate rows"] = int(sum(len(e.y) for e in examples))
    out["positive rows"] = int(sum(int(e.y.sum()) for e in examples))
    return dict(sorted(out.items()))


def _data_hash(examples: list[Example]) -> str:
    h = hashlib.sha256()
    for e in examples:
        h.update(e.question.id.encode())
        h.update(e.y.tobytes())
        h.update(np.round(e.x, 4).tobytes())
    return h.hexdigest()[:16]
