"""Choose the retrieval constants by measurement: grid over fusion settings on tuning questions, then refit the
refusal confidence on the same questions. Development tool; the chosen values are written into
`knowledge_base/config.py` (RetrievalConfig, ConfidenceModel) by hand, with the figures this prints. Every variant is
a configuration (`dataclasses.replace`) handed to a new engine; no module attribute is changed.

    python -m eval.tune_retrieval --kb /work/devkb/full --gold ../shared/eval/dev.jsonl --gold eval/questions/tune.jsonl

Part 1 (fusion): for each configuration, every answerable question is asked in process with refusal disabled
(so the citations always come back) and scored with the eval's own hit@1 / hit@5 / MRR@10.
Part 2 (confidence): with the chosen configuration, the two features the composer's confidence uses (the best
cosine over allowed passages, the coverage of the question's content words by the top passages) are recorded
for every question, answerable and not, and a logistic regression answerable-vs-unanswerable is fitted; the
bias is then shifted so that the configured refusal threshold sits at the operating point with the highest
refusal on unanswerable among those whose false refusal on answerable is at most --max-false-refusal.
The fit is scikit-learn's LogisticRegression, the AUC its roc_auc_score.
"""
from __future__ import annotations

import itertools
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import typer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from knowledge_base.config import AnswerConfig, Fusion

from .gold import load_gold
from .metrics import Returned, first_hit_rank
from .runner import InProcessBackend

os.environ.setdefault("HF_HUB_OFFLINE", "1")

app = typer.Typer(add_completion=False)


def _score(engine, questions, mode: str = "hybrid_faq") -> dict:
    ranks = []
    for q in questions:
        a = engine.ask(q.question, top_k=10, mode=mode, record=False)
        ranks.append(first_hit_rank(Returned.from_model(a, 0.0).citations, q))  # the ranked list, as eval scores it
    n = len(ranks) or 1
    return {
        "hit@1": sum(r == 1 for r in ranks if r) / n,
        "hit@5": sum(1 for r in ranks if r and r <= 5) / n,
        "mrr@10": sum(1 / r for r in ranks if r) / n,
    }


# over 60 lines: a typer command: its options are its signature
@app.command()
def main(
    kb: Path = typer.Option(..., "--kb"),
    gold: list[Path] = typer.Option(..., "--gold"),
    weights: str = typer.Option("0,0.1,0.2,0.3,0.4", "--weights", help="Lexical weights of the weighted fusion."),
    coverage: str = typer.Option("0,0.25,0.5", "--coverage", help="Coverage rerank weights."),
    additive: str = typer.Option("0,0.02,0.05,0.1", "--additive", help="BM25 bonus weights of the additive fusion."),
    max_false_refusal: float = typer.Option(0.08, "--max-false-refusal"),
) -> None:
    questions = [q for f in gold for q in load_gold(f)]
    answerable = [q for q in questions if q.answerable]
    base = AnswerConfig()
    backend = InProcessBackend(kb, refusal_threshold=0.0, judge="off")

    print(f"{len(answerable)} answerable of {len(questions)} questions from {', '.join(f.name for f in gold)}")
    print(f"{'fusion':>10} {'lex w':>6} {'cov w':>6} {'hit@1':>6} {'hit@5':>6} {'MRR@10':>7}")
    results = []
    configs = [("weighted", float(w), float(c)) for w, c in itertools.product(weights.split(","), coverage.split(","))]
    configs += [("rrf", math.nan, float(c)) for c in coverage.split(",")]
    configs += [("additive", float(w), float(c)) for w, c in itertools.product(additive.split(","), coverage.split(","))]
    engine = backend.engine
    for fusion, lw, cw in configs:
        retrieval = replace(base.retrieval, fusion=Fusion(fusion), coverage_weight=cw,
                            lexical_weight=None if math.isnan(lw) else lw)
        engine.use_config(replace(base, retrieval=retrieval))
        m = _score(engine, answerable)
        results.append(((fusion, lw, cw), m))
        print(f"{fusion:>10} {lw:>6.2f} {cw:>6.2f} {m['hit@1']:>6.3f} {m['hit@5']:>6.3f} {m['mrr@10']:>7.3f}", flush=True)
    (fusion, lw, cw), best = max(results, key=lambda r: (round(r[1]["hit@1"] + r[1]["hit@5"], 6), r[1]["mrr@10"]))
    print(f"best: fusion={fusion} lexical_weight={lw} coverage_weight={cw} → {best}")
    chosen = replace(base, retrieval=replace(base.retrieval, fusion=Fusion(fusion), coverage_weight=cw,
                                             lexical_weight=None if math.isnan(lw) else lw))

    # Part 2: the confidence features of every question under the chosen configuration, read off the engine's
    # public `confidence_features` (the same numbers the composer's confidence is computed from).
    engine.use_config(chosen)
    x, y = [], []
    for q in questions:
        features = engine.confidence_features(q.question)
        if features is None:
            continue  # answered from a curated FAQ (governed by the FAQ threshold) or nothing retrieved
        x.append(features)
        y.append(1 if q.answerable else 0)
    x, y = np.array(x), np.array(y)
    # C = 1000: a light ridge, so the two nearly separable features keep finite weights
    model = LogisticRegression(C=1000.0, max_iter=1000).fit(x, y)
    w = np.r_[model.intercept_, model.coef_[0]]
    z = model.decision_function(x)
    print(f"confidence fit on {len(y)} questions ({int(y.sum())} answerable): bias {w[0]:.2f}, "
          f"best cosine {w[1]:.2f}, coverage {w[2]:.2f}; AUC {roc_auc_score(y, z):.3f} "
          f"(best cosine alone {roc_auc_score(y, x[:, 0]):.3f}, coverage alone {roc_auc_score(y, x[:, 1]):.3f})")
    print(f"{'z cut':>7} {'refusal (U)':>12} {'false refusal (A)':>18}")
    rows = []
    for cut in np.unique(np.round(z, 3)):
        refused = z < cut
        ref_u = refused[y == 0].mean() if (y == 0).any() else math.nan
        fr_a = refused[y == 1].mean()
        rows.append((cut, ref_u, fr_a))
    ok = [r for r in rows if r[2] <= max_false_refusal]
    for cut, ref_u, fr_a in rows[:: max(1, len(rows) // 25)]:
        print(f"{cut:>7.2f} {ref_u:>12.3f} {fr_a:>18.3f}")
    if ok:
        cut, ref_u, fr_a = max(ok, key=lambda r: (r[1], -r[2]))
        print(f"operating point: z ≥ {cut:.3f} answered → refusal (U) {ref_u:.3f}, false refusal (A) {fr_a:.3f}; "
              f"ConfidenceModel(bias={w[0] - cut:.2f}, dense={w[1]:.2f}, coverage={w[2]:.2f}) "
              f"puts it at confidence 0.5")


if __name__ == "__main__":
    app()
