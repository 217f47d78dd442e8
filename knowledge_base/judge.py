"""The learned answer judge: orders a question's candidate passages and says how likely the first one answers it.

    judge = Judge.load(directory)          # trained by `policyqa model train-judge` (qa_service.training.judge)
    x = featurizer.passage_rows(query, candidates, passages)      # knowledge_base.featurize: one row per candidate
    order = np.argsort(-judge.rank(x))
    confidence = judge.confidence(JudgeFeaturizer.question_row(query, candidates.take(order), x[order], scores))

Two models, both fitted on this knowledge base's own data (see qa_service.training.judge):
- a LambdaMART ranker (LightGBM) over the passage features (knowledge_base.featurize.PASSAGE_FEATURES: retrieval
  facts, coverage and soft coverage, title, article, place and office matches, validity, length, quantities). It
  replaces the hand-set fusion weights and boosts with fitted ones.
- a logistic regression over the ranked list (QUESTION_FEATURES): the probability that the first passage is a right
  answer. Wrong top passages and unanswerable questions are its negatives, so its score is the answer's confidence
  and refusal is a threshold on it (chosen on questions it was not fitted on, stored with it).

A stored judge names its format and its features; one of another format, or trained on other features, is refused
with StaleJudgeError (retrain it): a judge is only served on exactly the features it was fitted on.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .db import JudgeRow
from .featurize import PASSAGE_FEATURES, QUESTION_FEATURES

# 5: the features of knowledge_base.featurize. Earlier formats (1-4: judges with or without the query tower that
# rounds 4-6 tried, README "The answer judge") are not read: StaleJudgeError.
JUDGE_FORMAT = 5
RETRAIN = "retrain with `policyqa model train-judge`"


class StaleJudgeError(ValueError):
    """A stored judge this code does not read (an earlier format, or other features)."""


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

    ranker: object  # lightgbm.Booster over rows of PASSAGE_FEATURES
    answerability: Answerability
    threshold: float  # refuse below this confidence (the operating point chosen on held-out questions)
    config: JudgeConfig = field(default_factory=JudgeConfig)
    info: dict = field(default_factory=dict)  # training sources and sizes, data hash, measurements
    # below `threshold`, suggest articles at or above this confidence, else say nothing relevant (None: the setting)
    suggest_threshold: float | None = None

    def rank(self, x: np.ndarray) -> np.ndarray:
        """Scores for rows of PASSAGE_FEATURES."""
        if len(x) == 0:
            return np.zeros(0, np.float32)
        return np.asarray(self.ranker.predict(x, num_threads=1), np.float32)

    def confidence(self, features: np.ndarray) -> float:
        return self.answerability(features)
    @property
    def judge_id(self) -> str:
        return self.info.get("judge_id", "")

    # ---------------------------------------------------------------- persistence
    def serialize(self) -> tuple[str, dict]:
        """(LightGBM's text model, judge.json body); sets info["judge_id"] from their hash."""
        ranker_text = self.ranker.model_to_string()
        body = {
            "format": JUDGE_FORMAT,
            "passage_features": list(PASSAGE_FEATURES),
            "question_features": list(QUESTION_FEATURES),
            "answerability": self.answerability.as_dict(),
            "threshold": self.threshold,
            "suggest_threshold": self.suggest_threshold,
            "config": self.config.__dict__,
        }
        digest = hashlib.sha256((ranker_text + json.dumps(body, sort_keys=True)).encode()).hexdigest()[:16]
        self.info["judge_id"] = f"judge-{digest}"
        body["info"] = self.info
        return ranker_text, body

    @classmethod
    def deserialize(cls, ranker_text: str, body: dict) -> "Judge":
        """The judge of a stored (ranker text, body); StaleJudgeError for one this code does not read."""
        import lightgbm  # lazy: lightgbm costs 0.7 s at start-up, only serving or training a judge needs it

        check_readable(body)
        return cls(lightgbm.Booster(model_str=ranker_text), Answerability.from_dict(body["answerability"]),
                   float(body["threshold"]), JudgeConfig(**body.get("config", {})), body.get("info", {}),
                   body.get("suggest_threshold"))

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


def check_readable(body: dict) -> None:
    """Raise StaleJudgeError unless a stored judge's body is of this format and these features."""
    name = (body.get("info") or {}).get("judge_id") or "the stored judge"
    if body.get("format") != JUDGE_FORMAT:
        raise StaleJudgeError(f"{name} is of format {body.get('format')}, which this version of policyqa no longer "
                              f"reads (it reads format {JUDGE_FORMAT}): {RETRAIN}")
    if body.get("passage_features") != list(PASSAGE_FEATURES) or body.get("question_features") != list(QUESTION_FEATURES):
        raise StaleJudgeError(f"{name} was trained on other features than this version of policyqa computes: {RETRAIN}")


def store_judge(kb, judge: Judge, data_hash: str) -> str:
    """Record the judge in the knowledge base (replacing any earlier one); returns its id."""
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
    with kb.session() as s:
        row = s.get(JudgeRow, 1)
        if row is None:
            return None
        return {"judge_id": row.judge_id, "data_hash": row.data_hash, "trained_at": row.trained_at.isoformat()}


def load_judge(kb) -> Judge | None:
    """The knowledge base's judge, or None when none was trained (today's fused ranking and confidence then serve);
    StaleJudgeError when the stored one is of a format or features this code does not read."""
    with kb.session() as s:
        row = s.get(JudgeRow, 1)
        if row is None:
            return None
        return Judge.deserialize(row.ranker, json.loads(row.body))


def remove_judge(kb) -> bool:
    with kb.session() as s:
        row = s.get(JudgeRow, 1)
        if row is None:
            return False
        s.delete(row)
        s.commit()
        return True
