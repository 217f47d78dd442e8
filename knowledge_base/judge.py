"""The learned answer judge: orders a question's candidate passages and says how likely the first one answers it.

    judge = Judge.load(directory)                    # trained by `policyqa model train-judge` (qa_service.judge_train)
    x = passage_features(query, candidates, passages)   # one row per candidate
    order = np.argsort(-judge.rank(x))
    confidence = judge.confidence(question_features(query, candidates.take(order), passages_in_order, scores))

Two models, both fitted on this knowledge base's own data (see qa_service.judge_train):
- a LambdaMART ranker (LightGBM) over retrieval facts: BM25 and cosine with their ranks in each list, coverage of the
  question's words by the passage and by its title, the law's name in the question, article number, place and office
  matches, validity, document type, length, quantities, and how many candidates share the document. It replaces the
  hand-set fusion weights and boosts with fitted ones.
- a logistic regression over the ranked list (the top score and its margin, cosine, coverage, words the knowledge base
  never uses, quantities, an unknown place): the probability that the first passage is a right answer. Wrong top
  passages and unanswerable questions are its negatives, so its score is the answer's confidence and refusal is a
  threshold on it (chosen on questions it was not fitted on, stored with it).
The features are cheap (no model call): about 1 ms for 60 candidates. A judge may also carry a **query tower**
(knowledge_base.tower): the encoder's query side fine-tuned on the same labelled questions; its cosine with each
candidate's stored passage vector, that cosine's rank and its gap to the best are three more ranker features (one
more query encoding, about 10 ms). Without a tower those columns are zero. A judge with a tower also carries the
same two models fitted without it (`Judge.without_tower`): a completed follow-up ("关于《…》…：那费用怎么分摊？") is a
kind of question the tower never saw in training, and on the multi-turn tune split it answered follow-ups worse with
the tower than without (README "The answer judge", rounds 4–6), so the engine judges a completed follow-up with those;
so is the operator's search-as-you-type (`/v1/search`), where the tower's 7 ms would cost more than its ranking gain
(one rank-1 answer of 154 on the selection questions). Three more columns (round 7) are the candidate's **soft
coverage** of the question's words (HybridRetriever.soft_coverage: a word the passage lacks counts by the cosine of
the passage's nearest word, from knowledge_base.word_vectors), its soft part and its gap to the best candidate: the
colloquial word against the statute's word (辞退 / 解除劳动合同), which exact coverage and BM25 cannot see.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from .models import DocType
from .retrieval import Candidates
from .text import ARTICLE_LABEL, asks_quantity, coverage, fold, states_quantity, word_weights

JUDGE_FORMAT = 4  # 2: the query tower's three features; 3: the same models without the tower (Judge.without_tower); 4: soft coverage

PASSAGE_FEATURES = (
    "cos", "cos_gap", "dense_rank", "in_dense",
    "bm25_norm", "bm25_log", "lexical_rank", "in_lexical",
    "coverage", "title_coverage", "title_in_question", "article_match",
    "place_match", "place_mismatch", "foreign_local", "organization", "local",
    "expired", "superseded", "plan", "length_log",
    "quantity_stated", "quantity_missing", "same_doc", "doc_cos_gap",
    "fused_norm", "fused_rank",
    "tower_cos", "tower_rank", "tower_gap",
    "soft_coverage", "soft_missing", "soft_gap",
)
TOWER_FEATURES = ("tower_cos", "tower_rank", "tower_gap")
SOFT_FEATURES = ("soft_coverage", "soft_missing", "soft_gap")  # HybridRetriever.soft_coverage (round 7)
BASE_FEATURES = tuple(name for name in PASSAGE_FEATURES if name not in TOWER_FEATURES)  # a judge without a tower
QUESTION_FEATURES = (
    "top_score", "margin2", "margin5", "top_cos", "best_cos", "top_coverage", "max_coverage3", "top_title_coverage",
    "top_bm25_norm", "quantity_missing_top", "quantity_missing_top3", "unknown_share", "content_words",
    "place_unknown", "top_place_mismatch", "top_title_in_question",
)
_ARTICLE_ASKED = re.compile(r"第([零〇一二三四五六七八九十百千两\d]+)条")
_TITLE_NOISE = re.compile(r"^中华人民共和国|\(.*?\)|（.*?）|\s")


@dataclass(frozen=True)
class JudgeQuery:
    """What the judge needs to know of a question (built from qa_service.normalize.NormalizedQuery)."""

    text: str  # normalized question
    words: list[str]  # content words
    idf: Callable[[str], float]
    region: str | None = None
    organization: str | None = None

    @property
    def asks_quantity(self) -> bool:
        return asks_quantity(self.text)


@dataclass(frozen=True)
class Passage:
    """A candidate's text and document facts."""

    title: str
    section: str
    text: str
    doc_type: DocType = DocType.OTHER


@dataclass(frozen=True)
class JudgeConfig:
    depth: int = 30  # candidates taken from each list (lexical, dense) before judging; their union is judged
    ranker_trees: int = 300
    ranker_leaves: int = 15
    ranker_learning_rate: float = 0.05
    ranker_min_child: int = 10
    answerability_c: float = 1.0  # inverse ridge strength of the answerability regression
    # The operating points (issue 21), chosen on the selection questions: answer where at most `max_wrong_answers` of
    # the answers cite a wrong first passage; below that, suggest articles where at least `min_none_unanswerable` of
    # the unanswerable questions still get `none`.
    max_wrong_answers: float = 0.05
    min_none_unanswerable: float = 0.85
    suggest_depth: int = 3  # a suggestion helps when a right passage is among this many of the ranking
    seed: int = 13
    # the query tower (knowledge_base.tower; qa_service.tower_train): 0 epochs trains none; 2 is its measured setting
    # (about 5 min on the full corpus). On by default in round 6; off again since round 7: with the soft-coverage
    # features the judge without it is ahead on the selection questions (hit@1 0.779 vs 0.766, refusal 0.750 vs
    # 0.662 at the same false refusal; README "The answer judge", round 7)
    tower_epochs: int = 0
    tower_learning_rate: float = 2e-5
    tower_temperature: float = 0.05  # of the contrastive softmax over positive, hard negatives and in-batch passages
    tower_batch: int = 32
    tower_negatives: int = 7  # hardest (by base cosine) non-answering candidates per question
    # A judge with a tower judges completed follow-ups with models fitted without it (Judge.without_tower); True:
    # the tower's models judge them too
    tower_follow_ups: bool = False


def feature_columns(features: tuple[str, ...]) -> list[int]:
    """Where `features` stand in a row of PASSAGE_FEATURES."""
    return [PASSAGE_FEATURES.index(name) for name in features]


@lru_cache(maxsize=16384)
def _title_key(title: str) -> str:
    return _TITLE_NOISE.sub("", fold(title))


def passage_features(query: JudgeQuery, cands: Candidates, passages: list[Passage],
                     tower_cos: np.ndarray | None = None, soft: np.ndarray | None = None) -> np.ndarray:
    """One row of PASSAGE_FEATURES per candidate; `tower_cos`: the query tower's cosine with each candidate, if the
    judge has a tower; `soft`: each candidate's soft coverage and its soft part (HybridRetriever.soft_coverage)."""
    n = len(cands)
    x = np.zeros((n, len(PASSAGE_FEATURES)), np.float32)
    if n == 0:
        return x
    words = list(dict.fromkeys(query.words))
    compact = fold(query.text).replace(" ", "")
    asked_article = _ARTICLE_ASKED.search(compact)
    need_quantity = query.asks_quantity
    top_lex = max(float(cands.lexical.max()), 1e-6)
    doc_best: dict[str, float] = {}
    for d, c in zip(cands.doc_ids, cands.dense):
        doc_best[d] = max(doc_best.get(d, -1.0), float(c))
    col = {name: i for i, name in enumerate(PASSAGE_FEATURES)}
    x[:, col["cos"]] = cands.dense
    x[:, col["cos_gap"]] = cands.best_dense - cands.dense
    x[:, col["dense_rank"]] = np.log1p(cands.dense_rank)
    x[:, col["in_dense"]] = cands.dense_rank < cands.depth
    x[:, col["bm25_norm"]] = cands.lexical / top_lex
    x[:, col["bm25_log"]] = np.log1p(cands.lexical)
    x[:, col["lexical_rank"]] = np.log1p(cands.lexical_rank)
    x[:, col["in_lexical"]] = cands.lexical_rank < cands.depth
    x[:, col["coverage"]] = cands.coverage
    for name in ("place_match", "place_mismatch", "foreign_local", "organization", "local", "expired", "superseded"):
        x[:, col[name]] = getattr(cands, name)
    x[:, col["same_doc"]] = np.log(np.maximum(cands.same_doc, 1))
    # today's fused score (stacking): the learned model decides how far to trust the hand-set fusion
    x[:, col["fused_norm"]] = cands.fused / max(float(cands.fused.max()), 1e-6)
    x[:, col["fused_rank"]] = np.log1p(np.argsort(np.argsort(-cands.fused, kind="stable"), kind="stable"))
    for i, p in enumerate(passages):
        title_key = _title_key(p.title)
        x[i, col["title_coverage"]] = coverage(words, p.title, query.idf)
        x[i, col["title_in_question"]] = bool(title_key) and len(title_key) >= 3 and (
            title_key in compact or title_key.removesuffix("条例") in compact or title_key.removesuffix("法") in compact
            and len(title_key) > 3)
        if asked_article:
            label = f"第{asked_article.group(1)}条"
            x[i, col["article_match"]] = label in p.section or label in p.text[:40]
        x[i, col["plan"]] = p.doc_type == DocType.PLAN
        x[i, col["length_log"]] = math.log1p(len(p.text))
        if need_quantity:
            stated = states_quantity(p.text)
            x[i, col["quantity_stated"]] = stated
            x[i, col["quantity_missing"]] = not stated
        x[i, col["doc_cos_gap"]] = doc_best[cands.doc_ids[i]] - float(cands.dense[i])
    if tower_cos is not None:
        set_tower_features(x, tower_cos)
    if soft is not None:
        x[:, col["soft_coverage"]] = soft[:, 0]
        x[:, col["soft_missing"]] = soft[:, 1]
        x[:, col["soft_gap"]] = soft[:, 0].max() - soft[:, 0]
    return x


def set_tower_features(x: np.ndarray, tower_cos: np.ndarray) -> None:
    """Fill the tower columns of passage rows `x` from the tower's cosine with each candidate."""
    c = np.asarray(tower_cos, np.float32)
    at = PASSAGE_FEATURES.index("tower_cos")
    x[:, at] = c
    x[:, at + 1] = np.log1p(np.argsort(np.argsort(-c, kind="stable"), kind="stable"))
    x[:, at + 2] = c.max() - c if len(c) else c


def question_features(query: JudgeQuery, cands: Candidates, x: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """QUESTION_FEATURES of a ranked list (`cands`, its passage features `x` and judge `scores`, best first)."""
    col = {name: i for i, name in enumerate(PASSAGE_FEATURES)}
    out = np.zeros(len(QUESTION_FEATURES), np.float32)
    q = {name: i for i, name in enumerate(QUESTION_FEATURES)}
    words = list(dict.fromkeys(query.words))
    if words:
        idfs = [query.idf(w) for w in words]
        weights = word_weights(words, query.idf)
        out[q["unknown_share"]] = sum(w for w, i in zip(weights, idfs) if not i) / max(sum(weights), 1e-9)
    out[q["content_words"]] = math.log1p(len(words))
    out[q["place_unknown"]] = not cands.place_known
    out[q["best_cos"]] = cands.best_dense
    if len(cands) == 0:
        out[q["top_score"]] = -10.0
        return out
    out[q["top_score"]] = scores[0]
    out[q["margin2"]] = scores[0] - scores[1] if len(scores) > 1 else 5.0
    out[q["margin5"]] = scores[0] - float(np.mean(scores[1:5])) if len(scores) > 1 else 5.0
    out[q["top_cos"]] = x[0, col["cos"]]
    out[q["top_coverage"]] = x[0, col["coverage"]]
    out[q["max_coverage3"]] = float(x[:3, col["coverage"]].max())
    out[q["top_title_coverage"]] = x[0, col["title_coverage"]]
    out[q["top_bm25_norm"]] = float(cands.lexical[0]) / max(cands.best_lexical, 1e-6)
    out[q["quantity_missing_top"]] = x[0, col["quantity_missing"]]
    out[q["quantity_missing_top3"]] = float(x[:3, col["quantity_missing"]].min()) if query.asks_quantity else 0.0
    out[q["top_place_mismatch"]] = x[0, col["place_mismatch"]]
    out[q["top_title_in_question"]] = x[0, col["title_in_question"]]
    return out


@dataclass
class Answerability:
    """A standardized logistic regression, kept as numbers (no pickles): P(the first passage answers)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def __call__(self, features: np.ndarray) -> float:
        z = float(((features - self.mean) / self.scale) @ self.coef + self.intercept)
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def as_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept}

    @classmethod
    def from_dict(cls, d: dict) -> "Answerability":
        return cls(np.asarray(d["mean"], np.float32), np.asarray(d["scale"], np.float32),
                   np.asarray(d["coef"], np.float32), float(d["intercept"]))


@dataclass
class Judge:
    """A trained judge: `rank(passage rows) -> scores`, `confidence(question row) -> probability`, `threshold`."""

    ranker: object  # lightgbm.Booster
    answerability: Answerability
    threshold: float  # refuse below this confidence (the operating point chosen on held-out questions)
    config: JudgeConfig = field(default_factory=JudgeConfig)
    info: dict = field(default_factory=dict)  # training sources and sizes, data hash, measurements
    features: tuple[str, ...] = PASSAGE_FEATURES  # the passage features its ranker takes, in its order
    # the same models fitted on the same data without the query tower's columns: what judges a completed follow-up
    # and /v1/search (None: this judge judges every question)
    without_tower: "Judge | None" = None
    # below `threshold`, suggest articles at or above this confidence, else say nothing relevant (None: the setting)
    suggest_threshold: float | None = None

    def __post_init__(self) -> None:
        self._columns = feature_columns(self.features)

    def judging(self, tower: bool = True) -> "Judge":
        """This judge, or (`tower` False) its models fitted without the query tower when it carries them."""
        return self if tower or self.without_tower is None else self.without_tower

    @property
    def uses_tower(self) -> bool:
        """Whether its ranker takes the query tower's columns (the question is then encoded by the tower too)."""
        return any(name in TOWER_FEATURES for name in self.features)

    @property
    def uses_soft_coverage(self) -> bool:
        """Whether its ranker takes the soft-coverage columns (judges trained before round 7 do not)."""
        return any(name in SOFT_FEATURES for name in self.features)

    def rank(self, x: np.ndarray) -> np.ndarray:
        """Scores for rows of PASSAGE_FEATURES (a judge trained on fewer features takes its own columns)."""
        if len(x) == 0:
            return np.zeros(0, np.float32)
        return np.asarray(self.ranker.predict(x[:, self._columns], num_threads=1), np.float32)

    def confidence(self, features: np.ndarray) -> float:
        return self.answerability(features)

    @property
    def judge_id(self) -> str:
        return self.info.get("judge_id", "")

    @property
    def tower_id(self) -> str:
        """The query tower this judge was trained with ("" for none); its weights are stored beside it."""
        return self.info.get("tower_id", "")

    # ---------------------------------------------------------------- persistence
    def serialize(self) -> tuple[str, dict]:
        """(LightGBM's text model, judge.json body); sets info["judge_id"] from their hash."""
        ranker_text = self.ranker.model_to_string()
        body = self._body()
        if self.without_tower is not None:
            plain = self.without_tower
            body["without_tower"] = {"ranker": plain.ranker.model_to_string(), "body": {**plain._body(), "info": plain.info}}
        digest = hashlib.sha256((ranker_text + json.dumps(body, sort_keys=True)).encode()).hexdigest()[:16]
        self.info["judge_id"] = f"judge-{digest}"
        body["info"] = self.info
        return ranker_text, body

    def _body(self) -> dict:
        return {
            "format": JUDGE_FORMAT,
            "passage_features": list(self.features),
            "question_features": list(QUESTION_FEATURES),
            "answerability": self.answerability.as_dict(),
            "threshold": self.threshold,
            "suggest_threshold": self.suggest_threshold,
            "config": self.config.__dict__,
            "tower_id": self.tower_id,
        }

    @classmethod
    def deserialize(cls, ranker_text: str, body: dict) -> "Judge":
        import lightgbm

        # a judge of an earlier format serves as long as every feature it takes is still computed (format 1: all
        # but the query tower's)
        features = tuple(body.get("passage_features") or ())
        if body.get("format") not in (1, 2, 3, JUDGE_FORMAT) or not features or not set(features) <= set(PASSAGE_FEATURES) \
                or body.get("question_features") != list(QUESTION_FEATURES):
            raise ValueError("the stored judge was trained on other features: retrain it (policyqa model train-judge)")
        ranker = lightgbm.Booster(model_str=ranker_text)
        plain = body.get("without_tower")
        return cls(ranker, Answerability.from_dict(body["answerability"]), float(body["threshold"]),
                   JudgeConfig(**body.get("config", {})), body.get("info", {}), features,
                   cls.deserialize(plain["ranker"], plain["body"]) if plain else None,
                   suggest_threshold=body.get("suggest_threshold"))

    def save(self, directory: Path) -> Path:
        """Write ranker.txt and judge.json into `directory` (the training cache)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        ranker_text, body = self.serialize()
        (directory / "ranker.txt").write_text(ranker_text, "utf-8")
        (directory / "judge.json").write_text(json.dumps(body, ensure_ascii=False, indent=1), "utf-8")
        return directory

    @classmethod
    def load(cls, directory: Path) -> "Judge":
        directory = Path(directory)
        return cls.deserialize((directory / "ranker.txt").read_text("utf-8"),
                               json.loads((directory / "judge.json").read_text("utf-8")))


def store_judge(kb, judge: Judge, data_hash: str) -> str:
    """Record the judge in the knowledge base (replacing any earlier one); returns its id."""
    from .db import JudgeRow

    ranker_text, body = judge.serialize()
    with kb.session() as s:
        row = s.get(JudgeRow, 1) or JudgeRow(id=1)
        row.judge_id, row.data_hash = judge.judge_id, data_hash
        row.ranker, row.body = ranker_text, json.dumps(body, ensure_ascii=False)
        row.trained_at = datetime.now(timezone.utc).replace(tzinfo=None)
        s.merge(row)
        s.commit()
    return judge.judge_id


def judge_record(kb) -> dict | None:
    """The stored judge's identity (judge_id, data_hash, trained_at), or None."""
    from .db import JudgeRow

    with kb.session() as s:
        row = s.get(JudgeRow, 1)
        if row is None:
            return None
        return {"judge_id": row.judge_id, "data_hash": row.data_hash, "trained_at": row.trained_at.isoformat()}


def load_judge(kb) -> Judge | None:
    """The knowledge base's judge, or None when none was trained (today's fused ranking and confidence then serve)."""
    from .db import JudgeRow

    with kb.session() as s:
        row = s.get(JudgeRow, 1)
        if row is None:
            return None
        return Judge.deserialize(row.ranker, json.loads(row.body))


def remove_judge(kb) -> bool:
    from .db import JudgeRow

    with kb.session() as s:
        row = s.get(JudgeRow, 1)
        if row is None:
            return False
        s.delete(row)
        s.commit()
        return True
