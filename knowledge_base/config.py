"""Every tuning knob of answering, in one place: frozen values injected into the retriever and the composer.
An experiment is `dataclasses.replace(config, field=value)` handed to a new engine or retriever, never an
assignment to a module (see `eval/tune_retrieval.py`). Each default carries the measurement that chose it.

    config = AnswerConfig()
    engine = QAEngine(kb, settings, config=dataclasses.replace(config, retrieval=replace(config.retrieval, coverage_weight=0.5)))
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum


class Fusion(StrEnum):
    ADDITIVE = "additive"  # raw cosine + w · BM25/best BM25: the cosine keeps its absolute scale
    WEIGHTED = "weighted"  # w · BM25/best BM25 + (1 − w) · cosine min-max scaled over the candidates
    RRF = "rrf"  # reciprocal rank fusion (k = rrf_k)


class RetrievalMode(StrEnum):
    LEXICAL = "lexical"
    DENSE = "dense"
    HYBRID = "hybrid"


class AnswerMode(StrEnum):
    """What `policyqa eval` compares and `/v1/ask` may be asked for: a retrieval mode, or hybrid with curated FAQs."""

    LEXICAL = "lexical"
    DENSE = "dense"
    HYBRID = "hybrid"
    HYBRID_FAQ = "hybrid_faq"

    @property
    def retrieval(self) -> RetrievalMode:
        return RetrievalMode.HYBRID if self is AnswerMode.HYBRID_FAQ else RetrievalMode(self.value)


# Fusion and preferences. First chosen on a 7,748-chunk slice of the corpus (every gold source plus 136 sister
# documents), then re-chosen on the full corpus (51,051 chunks) with `python -m eval.tune_retrieval` on the 98
# answerable questions of dev.jsonl + eval/questions/tune.jsonl (hit@1 / hit@5 / MRR@10, refusal disabled, top 10).
#   fusion, w        coverage 0             coverage 0.25          coverage 0.5           coverage 1.0
#   weighted 0.0     0.714 / 0.888          0.714 / 0.888          0.714 / 0.908
#   weighted 0.2     0.776 / 0.908          0.776 / 0.949          0.776 / 0.949
#   weighted 0.3     0.765 / 0.949 / .847   0.786 / 0.949 / .862   0.786 / 0.949 / .864   0.765 / 0.969 / .856
#   weighted 0.4     0.735 / 0.969          0.745 / 0.959          0.745 / 0.969          (the slice's choice)
#   rrf              0.714 / 0.969 / .820   0.724 / 0.969 / .827   0.735 / 0.980 / .832   0.735 / 0.959 / .831
#   additive 0.0     0.745 / 0.918 / .820   0.776 / 0.980 / .863   0.796 / 0.959 / .866   0.776 / 0.949 / .841
#   additive 0.02    0.796 / 0.959 / .869   0.786 / 0.980 / .871   0.796 / 0.949 / .866   0.765 / 0.949 / .842  ← 0.25
#   additive 0.05    0.755 / 0.969 / .855   0.786 / 0.969 / .868   0.796 / 0.949 / .866   0.765 / 0.949 / .845
#   additive 0.1     0.745 / 0.969 / .837   0.745 / 0.959 / .836   0.755 / 0.949 / .841   0.755 / 0.939 / .836
# Differences of one or two questions in 98 are noise; additive 0.02 with coverage 0.25 is best on hit@1 + hit@5 and
# on MRR. On the slice, the ablations of the preferences (each row changes one thing, hit@1 / hit@5):
#   all on 0.806 / 0.990 · no coverage rerank 0.786 / 0.969 · no unnamed-place penalty 0.755 / 0.980 ·
#   no named-place preference 0.776 / 0.990 · no organization boost 0.806 / 0.990 (its passages are still added
#   as candidates, which is what matters there).
DEFAULT_LEXICAL_WEIGHT = {Fusion.ADDITIVE: 0.02, Fusion.WEIGHTED: 0.3, Fusion.RRF: 0.0}


@dataclass(frozen=True)
class RetrievalConfig:
    fusion: Fusion = Fusion.ADDITIVE
    lexical_weight: float | None = None  # None: DEFAULT_LEXICAL_WEIGHT of the fusion (rrf ignores it)
    rrf_k: int = 60
    candidates: int = 100  # depth of each ranked list before fusion
    organization_candidates: int = 20  # the named office's own passages added to each list
    exact_subset_max: int = 10_000  # approximate index: a filter allowing at most this many chunks is searched exactly
    # Preference factors applied to the fused score (multiplicative).
    organization_boost: float = 1.0  # the question names this document's publisher (济南市司法局…): ×2. 0.0–2.0
    #   measured equal on the slice (adding the office's passages as candidates is what matters there); kept so the
    #   named office outranks its near-identical sister plans on a tie.
    place_match_boost: float = 0.25  # the question names the document's city or province: ×1.25
    place_mismatch_penalty: float = 0.5  # the question names another place than the document's: ×0.5
    unnamed_place_penalty: float = 0.2  # no place named: another place's local rule ranks below national ones
    coverage_weight: float = 0.25  # fused × (1 + 0.25 · share of the question's content words the passage contains)
    unknown_word_idf: float = 8.0  # a word the corpus never uses (股市, 摇号) weighs like the rarest: it is what was asked
    expired_penalty: float = 0.5  # 失效/废止 works remain findable but rank below current rules
    superseded_penalty: float = 0.1  # with superseded versions included, the in-force one still ranks first on a tie

    def __post_init__(self):
        object.__setattr__(self, "fusion", Fusion(self.fusion))

    @property
    def lexical(self) -> float:
        return DEFAULT_LEXICAL_WEIGHT[self.fusion] if self.lexical_weight is None else self.lexical_weight


@dataclass(frozen=True)
class ConfidenceModel:
    """confidence = logistic(bias + dense · best cosine + coverage · coverage), where "best cosine" is the highest
    cosine between the question and any allowed passage and "coverage" the idf-weighted share of the question's
    content words found in one of the top 3 passages (title and section included). Of the single features and pairs
    tried on a slice of the corpus (top-hit cosine, best cosine, coverage of top 1 / top 3, cosine gaps to the 10th /
    50th passage, BM25 / idf mass, missing-word idf), this pair separated best. Refitted on the full corpus with the
    chosen retrieval (`python -m eval.tune_retrieval`: logistic regression, answerable vs unanswerable, dev.jsonl +
    eval/questions/tune.jsonl, 98 answerable and 24 unanswerable): AUC 0.939 (best cosine alone 0.892, coverage alone
    0.889). The bias is shifted so that 0.5 (settings.refusal_threshold) sits at the operating point with the most
    refusals among those with at most 8 % false refusals: there refusal (U) 0.750, false refusal (A) 0.031."""

    bias: float = -63.59
    dense: float = 67.82
    coverage: float = 5.73
    no_vector_cosine: float = 0.90  # without a query vector, lean on coverage alone

    def __call__(self, best_cosine: float, cov: float) -> float:
        if math.isnan(best_cosine):
            best_cosine = self.no_vector_cosine
        z = self.bias + self.dense * best_cosine + self.coverage * cov
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


@dataclass(frozen=True)
class ComposeConfig:
    quote_candidates: int = 3  # passages considered for the quote (see compose.quote_first)
    quote_margin: float = 0.15  # how much more of the question a lower passage's best sentence must say to be quoted
    quantity_missing_confidence: float = 0.2  # confidence cap when a quantity was asked and no passage near the top
    #   states one. On dev.jsonl + tune.jsonl every unanswerable question that was answered asked for a quantity the
    #   quoted passage did not state (积分落户多少分, 停车费多少), and so did 6 of the answerable ones, all wrong quotes;
    #   on tune: refusal 0.632 → 0.842, false refusal 0.041 → 0.068, hit@1 0.757 → 0.784.
    excerpt_chars: int = 220  # what an extractive answer quotes at most (a citizen reads it on a phone)
    coverage_passages: int = 3  # the confidence's coverage is the best over this many top passages
    judged_reorder: bool = False  # with a judge: still move a better-covering passage first and cap quantity misses
    suggestions: int = 3  # articles a `suggest` outcome lists (and the hotline console's ranked candidates)


@dataclass(frozen=True)
class AnswerConfig:
    """Everything the engine's answering path is tuned by."""

    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    confidence: ConfidenceModel = field(default_factory=ConfidenceModel)
    compose: ComposeConfig = field(default_factory=ComposeConfig)
    related_margin: float = 0.08  # FAQ entries within this of the FAQ threshold are offered as related questions
    judge_confidence: bool = True  # with a judge: its answerability is the confidence (False: it only ranks, and the
    #   two-feature ConfidenceModel decides refusals; an ablation)
    layered: bool = True  # state a national and the asker's local rule together when both speak to the point
