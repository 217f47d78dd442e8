"""Clarifying choices (issue 10): when a vague question's best passages come from clearly different documents (other
topics, other places), ask back with up to three choices instead of guessing.

    clarifier = Clarifier(ClarifyConfig())
    clarifier.run(nq, evidence)   # -> ["补贴怎么领（《失业保险条例》）", "补贴怎么领（《济南市既有多层住宅增设电梯规定》）"] or []

Only a question with very few content words of its own and no place can be vague enough ("补贴怎么领" names neither
what nor where); a choice is the question itself scoped to one document, so choosing it asks again and is answered
from that document.
"""
from __future__ import annotations

from dataclasses import dataclass

from knowledge_base.versions import normalize_title


@dataclass(frozen=True)
class ClarifyConfig:
    candidates: int = 5  # passages looked at
    max_choices: int = 3
    max_content_words: int = 2  # a question with more content words says what it is about
    # Documents whose best passage is within this cosine of the best one are tied: the encoder cannot tell which
    # is meant. On the demo KB it fired on 0 of the 65 answerable questions of eval/questions/tune.jsonl (demo subset) +
    # ../shared/eval/dev.jsonl with any margin from 0.015 to 0.05, and on 4 of 10 vague ones (需要什么材料？, 条件是什么？);
    # `python -m eval.multiturn --clarify-rate KB FILE…` measures it.
    dense_margin: float = 0.02
    min_coverage: float = 0.99  # every tied document must speak to every content word (else it is not a candidate)


class Clarifier:
    """NormalizedQuery + ranked evidence in, up to `max_choices` clarifying questions out ([] when not vague)."""

    def __init__(self, config: ClarifyConfig | None = None):
        self.config = config or ClarifyConfig()

    def run(self, nq, evidence: list) -> list[str]:
        cfg = self.config
        if len(nq.content) > cfg.max_content_words or nq.region or nq.organization or len(evidence) < 2:
            return []
        top = evidence[: cfg.candidates]
        best = max((ev.hit.dense for ev in top if ev.hit.dense == ev.hit.dense), default=None)
        if best is None:
            return []
        works: dict[str, str] = {}
        for ev in top:
            if best - ev.hit.dense > cfg.dense_margin or ev.hit.coverage < cfg.min_coverage:
                continue
            title = ev.document.meta.title
            works.setdefault(normalize_title(title), title)
        if len(works) < 2:
            return []
        question = nq.original.rstrip("？?。 ")
        return [f"{question}（《{title}》）" for title in list(works.values())[: cfg.max_choices]]
