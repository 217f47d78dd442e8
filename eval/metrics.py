"""Answer-quality metrics, exactly as issue 6 and ../shared/README.md define them.

    scored = [score_question(q, returned) for q, returned in pairs]
    m = summarize(scored)          # m.hit_at_1, m.hit_at_5, m.mrr_at_10, m.refusal_rate, …
    print(DEFINITIONS)             # the definitions below, printed with every report

Comparison rule: every string (title, source title, quote, answer, and the gold `sources` /
`evidence_any` themselves) has ALL whitespace removed (str.split() semantics: spaces, tabs, newlines,
U+3000 ideographic space, NBSP …) and is then compared as an exact, case-sensitive substring.
Nothing else is normalized (no case folding, no NFKC, no traditional/simplified conversion).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from .gold import GoldQuestion

MRR_CUTOFF = 10

DEFINITIONS = """\
Metric definitions (A = answerable gold questions, U = unanswerable ones; strings compared with all whitespace removed):
  citation hit   a returned citation whose title, or one of whose source_titles, contains one of `sources`,
                 AND whose quote contains one of `evidence_any` (the same citation must satisfy both).
  rank           1-based position in the returned `citations` list (the order the engine/API returned).
  hit@1, hit@5   over A: share with a citation hit at rank <= 1 / <= 5 (a refused answer has no citations: 0).
  MRR@10         over A: mean of 1/rank of the first citation hit if rank <= 10, else 0
                 (only the citations actually returned count, so with --k 5 it looks at 5 at most).
  answer-contains over A: share whose `answer` text contains one of `evidence_any`, answered or not.
  refusal rate   over U: share with answered = false.
  false-refusal  over A: share with answered = false.
  wrong-top      over A and U: share answered (answered = true) whose citation 1 is not a hit; every answer to a
                 U question counts (a confident answer quoting the wrong text: the worst outcome).
  latency p50/p95 over A and U: per-question wall time of one ask (in process: QAEngine.ask; --url: the HTTP
                 round trip), after one untimed warm-up ask; percentiles by linear interpolation between
                 closest ranks (numpy's default).
  status         the answer contract's outcome: answer, suggest (参考条款: up to 3 articles) or none.
  precision      over A and U answered (status answer): share whose citation 1 is a hit (an answer to a U
                 question is wrong).
  helpful        over A: status answer with citation 1 a hit, or status suggest with a hit among its suggestions.
  answered       over A: share with status answer. answered (U): over U, share with status answer.
  none (U)       over U: share with status none.
  (Citations are an answer's sources followed by its `related` passages, in the order returned: the ranked list.)
  errors         a question whose ask raised or whose HTTP status was not 200 scores 0 on every metric above:
                 no hit, no answer-contains, counted as a false refusal if in A and as NOT refused if in U.
"""


def squash(text: str | None) -> str:
    """The comparison form: all whitespace removed (str.split() whitespace, incl. U+3000)."""
    return "".join((text or "").split())


@dataclass
class ReturnedCitation:
    """The fields of one returned citation that scoring and failure reports use (engine or HTTP alike)."""

    rank: int
    kind: str
    title: str
    source_titles: list[str]
    quote: str
    doc_id: str | None = None
    section: str = ""
    validity: str = ""
    score: float | None = None

    @classmethod
    def from_api(cls, c: dict) -> "ReturnedCitation":
        return cls(
            rank=int(c.get("rank") or 0),
            kind=str(c.get("kind") or ""),
            title=str(c.get("title") or ""),
            source_titles=[str(s) for s in (c.get("source_titles") or [])],
            quote=str(c.get("quote") or ""),
            doc_id=c.get("doc_id"),
            section=str(c.get("section") or ""),
            validity=str(c.get("validity") or ""),
            score=c.get("score"),
        )

    @classmethod
    def from_model(cls, c) -> "ReturnedCitation":
        validity = getattr(c.validity, "value", c.validity)
        return cls(c.rank, c.kind, c.title or "", list(c.source_titles or []), c.quote or "", c.doc_id,
                   c.section or "", str(validity or ""), c.score)


@dataclass
class Returned:
    """What came back for one question. `answered` is None when the ask failed (then `error` says why)."""

    answered: bool | None
    answer: str = ""
    confidence: float | None = None
    citations: list[ReturnedCitation] = field(default_factory=list)
    latency_ms: float | None = None
    error: str | None = None
    faq_id: str | None = None
    stages_ms: dict[str, float] | None = None
    status: str | None = None  # answer | suggest | none (None: a server before the three outcomes)
    suggestions: list[ReturnedCitation] = field(default_factory=list)

    @classmethod
    def from_model(cls, a, latency_ms: float, stages_ms: dict[str, float] | None = None) -> "Returned":
        """An engine Answer; `citations` is the ranked list: the answer's sources, then its related passages."""
        return cls(
            answered=bool(a.answered),
            answer=a.answer or "",
            confidence=None if a.confidence is None else float(a.confidence),
            citations=[ReturnedCitation.from_model(c) for c in (*a.citations, *a.related)],
            latency_ms=latency_ms,
            faq_id=a.faq_id,
            stages_ms=stages_ms,
            status=getattr(a.status, "value", a.status),
            suggestions=[ReturnedCitation.from_model(c) for c in a.suggestions],
        )

    @classmethod
    def from_api(cls, d: dict, latency_ms: float) -> "Returned":
        """A /v1/ask response body, read the same way (KeyError/TypeError/ValueError when it is not the contract)."""
        return cls(
            answered=bool(d["answered"]),
            answer=str(d.get("answer") or ""),
            confidence=None if d.get("confidence") is None else float(d["confidence"]),
            citations=[ReturnedCitation.from_api(c) for c in [*(d.get("citations") or []), *(d.get("related") or [])]],
            latency_ms=latency_ms,
            faq_id=d.get("faq_id"),
            status=d.get("status"),
            suggestions=[ReturnedCitation.from_api(c) for c in d.get("suggestions") or []],
        )


def citation_is_hit(c: ReturnedCitation, q: GoldQuestion) -> bool:
    titles = [squash(c.title)] + [squash(t) for t in c.source_titles]
    quote = squash(c.quote)
    title_ok = any(squash(s) in t for s in q.sources for t in titles)
    return title_ok and any(squash(e) in quote for e in q.evidence_any)


def first_hit_rank(citations: Sequence[ReturnedCitation], q: GoldQuestion) -> int | None:
    """1-based position of the first citation hit in the returned list, or None."""
    for pos, c in enumerate(citations, start=1):
        if citation_is_hit(c, q):
            return pos
    return None


def answer_contains(answer: str | None, q: GoldQuestion) -> bool:
    text = squash(answer)
    return any(squash(e) in text for e in q.evidence_any)


@dataclass
class QuestionScore:
    question: GoldQuestion
    returned: Returned
    hit_rank: int | None  # answerable only
    contains: bool  # answerable only
    refused: bool  # answered is False (an error is not a refusal)
    suggested_hit: bool = False  # status suggest with a citation hit among the suggestions

    @property
    def errored(self) -> bool:
        return self.returned.error is not None

    def hit_at(self, k: int) -> bool:
        return self.hit_rank is not None and self.hit_rank <= k

    @property
    def reciprocal_rank(self) -> float:
        return 1.0 / self.hit_rank if self.hit_at(MRR_CUTOFF) else 0.0

    @property
    def failure_reasons(self) -> list[str]:
        """Why this question counts as failed (empty: it passed every metric that applies to it)."""
        if self.errored:
            return ["error"]
        if not self.question.answerable:
            return [] if self.refused else ["answered an unanswerable question"]
        reasons = []
        if self.refused:
            reasons.append("false refusal")
        if not self.hit_at(5):
            reasons.append("no hit in top 5" if self.hit_rank is None else f"first hit at rank {self.hit_rank}")
        if not self.contains:
            reasons.append("answer lacks evidence")
        return reasons

    @property
    def answered_wrong_top(self) -> bool:
        """Answered with confidence, and the first citation is not a right one (the worst outcome)."""
        if self.errored or self.refused:
            return False
        return not self.question.answerable or not self.hit_at(1)

    @property
    def status(self) -> str | None:
        r = self.returned
        if self.errored:
            return None
        return r.status or ("answer" if r.answered else "none")

    @property
    def helpful(self) -> bool:
        """Answered with the right first article, or suggested articles among which is a right one."""
        return (self.status == "answer" and self.hit_at(1)) or (self.status == "suggest" and self.suggested_hit)

    @property
    def failed(self) -> bool:
        return bool(self.failure_reasons)


def score_question(q: GoldQuestion, r: Returned) -> QuestionScore:
    if r.error is not None:
        return QuestionScore(q, r, None, False, False)
    if q.answerable:
        return QuestionScore(q, r, first_hit_rank(r.citations, q), answer_contains(r.answer, q), r.answered is False,
                             first_hit_rank(r.suggestions, q) is not None)
    return QuestionScore(q, r, None, False, r.answered is False)


def percentile(values: Iterable[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy.percentile's default 'linear' method)."""
    xs = sorted(values)
    if not xs:
        return None
    pos = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _mean(flags: list[float]) -> float | None:
    return sum(flags) / len(flags) if flags else None


@dataclass
class Metrics:
    n: int
    n_answerable: int
    n_unanswerable: int
    n_errors: int
    hit_at_1: float | None
    hit_at_5: float | None
    mrr_at_10: float | None
    answer_contains: float | None
    refusal_rate: float | None  # over unanswerable
    false_refusal_rate: float | None  # over answerable
    wrong_top_rate: float | None  # over all: answered, but citation 1 is not a hit (every answer to an unanswerable)
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    precision: float | None = None  # over answered (status answer), A and U: citation 1 a hit
    helpful: float | None = None  # over A: answer with citation 1 a hit, or suggest with a hit among suggestions
    answered: float | None = None  # over A: status answer
    answered_unanswerable: float | None = None  # over U: status answer
    none_unanswerable: float | None = None  # over U: status none

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def summarize(scored: Sequence[QuestionScore]) -> Metrics:
    a = [s for s in scored if s.question.answerable]
    u = [s for s in scored if not s.question.answerable]
    lat = [s.returned.latency_ms for s in scored if s.returned.latency_ms is not None and not s.errored]
    return Metrics(
        n=len(scored),
        n_answerable=len(a),
        n_unanswerable=len(u),
        n_errors=sum(1 for s in scored if s.errored),
        hit_at_1=_mean([float(s.hit_at(1)) for s in a]),
        hit_at_5=_mean([float(s.hit_at(5)) for s in a]),
        mrr_at_10=_mean([s.reciprocal_rank for s in a]),
        answer_contains=_mean([float(s.contains) for s in a]),
        refusal_rate=_mean([float(s.refused) for s in u]),
        # an errored answerable question gave the citizen no answer: counted as refused
        false_refusal_rate=_mean([float(s.refused or s.errored) for s in a]),
        wrong_top_rate=_mean([float(s.answered_wrong_top) for s in scored]),
        latency_p50_ms=percentile(lat, 50),
        latency_p95_ms=percentile(lat, 95),
        precision=_mean([float(s.question.answerable and s.hit_at(1)) for s in scored if s.status == "answer"]),
        helpful=_mean([float(s.helpful) for s in a]),
        answered=_mean([float(s.status == "answer") for s in a]),
        answered_unanswerable=_mean([float(s.status == "answer") for s in u]),
        none_unanswerable=_mean([float(s.status == "none") for s in u]),
    )


# ---------------------------------------------------------------- threshold sweep

SWEEP_RULE = (
    "rule: a question is refused at threshold t when its confidence < t, except one answered with a curated FAQ "
    "answer (faq_id set), which the FAQ threshold governs instead. Default chosen = among thresholds with "
    "false-refusal <= {max_fr:.2f}, the one with the highest refusal rate on unanswerable; ties → the middle "
    "of the tied run; if none qualifies, the one maximizing refusal − false-refusal."
)


@dataclass
class SweepRow:
    threshold: float
    refusal_rate: float | None  # over U: confidence < t
    false_refusal_rate: float | None  # over A: confidence < t
    hit_at_5_answered: float | None  # over A: confidence >= t and a citation hit within 5


def sweep_thresholds(scored: Sequence[QuestionScore], thresholds: Sequence[float]) -> list[SweepRow]:
    """Simulated refusal rates from the returned confidences. Errored questions are left out.

    hit_at_5_answered needs the citations of questions the engine would have refused, so it is only
    meaningful on a run made with refusal disabled (the in-process sweep does that)."""
    ok = [s for s in scored if not s.errored and s.returned.confidence is not None]
    a = [s for s in ok if s.question.answerable]
    u = [s for s in ok if not s.question.answerable]
    def refused(s: QuestionScore, t: float) -> bool:
        return s.returned.faq_id is None and s.returned.confidence < t

    rows = []
    for t in thresholds:
        rows.append(
            SweepRow(
                threshold=t,
                refusal_rate=_mean([float(refused(s, t)) for s in u]),
                false_refusal_rate=_mean([float(refused(s, t)) for s in a]),
                hit_at_5_answered=_mean([float(not refused(s, t) and s.hit_at(5)) for s in a]),
            )
        )
    return rows


def default_thresholds(scored: Sequence[QuestionScore], steps: int = 20) -> list[float]:
    """0.00…1.00 in steps of 0.05 when confidences lie in [0, 1]; else an even grid over their range."""
    confs = [s.returned.confidence for s in scored if s.returned.confidence is not None]
    lo, hi = (min(confs), max(confs)) if confs else (0.0, 1.0)
    if lo >= 0.0 and hi <= 1.0:
        lo, hi = 0.0, 1.0
    return [round(lo + (hi - lo) * i / steps, 4) for i in range(steps + 1)]


def choose_threshold(rows: Sequence[SweepRow], max_false_refusal: float = 0.10) -> SweepRow | None:
    usable = [r for r in rows if r.refusal_rate is not None and r.false_refusal_rate is not None]
    if not usable:
        return None
    ok = [r for r in usable if r.false_refusal_rate <= max_false_refusal + 1e-12]
    if ok:
        best = max(r.refusal_rate for r in ok)
        tied = [r for r in ok if abs(r.refusal_rate - best) < 1e-12]
        # same refusal rate over a run of thresholds: the middle keeps a margin on both sides
        lowest_fr = min(r.false_refusal_rate for r in tied)
        tied = [r for r in tied if abs(r.false_refusal_rate - lowest_fr) < 1e-12]
        return tied[len(tied) // 2]
    return max(usable, key=lambda r: (r.refusal_rate - r.false_refusal_rate, -r.threshold))
