"""The judge's ablation: today's pipeline, each judge part and training source alone and together, on gold files.

    python -m eval.ablation --kb DIR --gold eval/questions/tune.jsonl --gold ../shared/eval/dev.jsonl \
        --gold eval/questions/select.jsonl --gold eval/questions/test.jsonl --json eval/results/ablation-full.json

Training examples are collected once (the expensive part: asking every training question of the knowledge base),
then each variant is fitted on its subset with the same seed and threshold rule (chosen on the selection files,
tune + dev + select by default, never on the files reported). Every variant answers the same questions in process, in the
hybrid+FAQ mode, top_k 5; the figures are `policyqa eval`'s. Which variant ships is decided on the selection
columns; the held-out columns are only reported.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Optional

import typer

from knowledge_base.config import AnswerConfig, ComposeConfig
from knowledge_base.featurize import SOFT_FEATURES, feature_columns
from knowledge_base.settings import get_settings
from qa_service.training.judge import (DEFAULT_FAQ_SHEETS, DEFAULT_FIT, DEFAULT_LAYPERSON, DEFAULT_SELECT, JudgeTrainer,
                                       TrainingSources, existing as _existing)

from .gold import load_gold
from .runner import InProcessBackend, run_eval

os.environ.setdefault("HF_HUB_OFFLINE", "1")

app = typer.Typer(add_completion=False)


def _variants_of_data(fit):
    return {
        "all sources": fit,
        "− layperson questions": [e for e in fit if e.question.origin != "layperson"],
        "− leave-the-document-out": [e for e in fit if not e.left_out],
        "− curated FAQ": [e for e in fit if e.question.origin != "faq"],
        "gold questions only": [e for e in fit if e.question.origin not in ("layperson", "faq") and not e.left_out],
    }


def _without_columns(examples, features):
    """Copies of `examples` whose `features` columns are zero (a ranker then cannot use them)."""
    out = []
    for e in examples:
        x = e.x.copy()
        x[:, feature_columns(features)] = 0.0
        out.append(replace(e, x=x))
    return out


@app.command()
def main(
    kb: Path = typer.Option(..., "--kb"),
    gold: list[Path] = typer.Option(..., "--gold", help="Gold files to report on (each its own columns)."),
    json_out: Optional[Path] = typer.Option(None, "--json"),
    data_variants: bool = typer.Option(True, "--data-variants/--no-data-variants"),
) -> None:
    questions = {g.name: load_gold(g) for g in gold}
    backend = InProcessBackend(kb, judge="off")
    engine = backend.engine
    sources = TrainingSources(fit=_existing(DEFAULT_FIT), select=_existing(DEFAULT_SELECT),
                              layperson=DEFAULT_LAYPERSON if DEFAULT_LAYPERSON.exists() else None,
                              faq_sheets=_existing(DEFAULT_FAQ_SHEETS))

    trainer = JudgeTrainer(backend.kb, get_settings(), sources)
    fit, selection, times = trainer.collect()
    print(f"collected {len(fit)} fit and {len(selection)} selection examples in "
          + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()), flush=True)

    rows = []

    def measure(name: str, judge, config: AnswerConfig, note: str = "") -> None:
        engine.use_judge(judge)
        engine.use_config(config)
        row = {"variant": name, "note": note, "threshold": engine.refusal_threshold}
        for file, qs in questions.items():
            m = run_eval(backend, qs, gold_path=file, modes=["hybrid_faq"], top_k=5).modes["hybrid_faq"].metrics
            row[file] = {k: getattr(m, k) for k in ("hit_at_1", "hit_at_5", "mrr_at_10", "answer_contains",
                                                     "refusal_rate", "false_refusal_rate", "wrong_top_rate",
                                                     "latency_p50_ms")}
        rows.append(row)
        print(_line(row, list(questions)), flush=True)

    base = AnswerConfig()
    print(_header(list(questions)))
    measure("today's pipeline (fused BM25 + cosine, boosts, two-feature confidence)", None, replace(base, layered=False))
    measure("  + layered answers", None, base)
    judge, _, summary = trainer.fit(fit, selection)
    measure("judge ranks, two-feature confidence refuses", judge, replace(base, judge_confidence=False, layered=False))
    measure("judge ranks and refuses", judge, replace(base, layered=False), f"threshold {judge.threshold:.2f}")
    measure("judge + quote reordering and quantity cap", judge,
            replace(base, layered=False, compose=replace(ComposeConfig(), judged_reorder=True)))
    measure("judge + layered answers (shipped, round 7)", judge, base, f"threshold {judge.threshold:.2f}")
    j, _, _ = trainer.fit(_without_columns(fit, SOFT_FEATURES), _without_columns(selection, SOFT_FEATURES))
    measure("judge without soft coverage (round 6's features) + layered answers", j, base, f"threshold {j.threshold:.2f}")
    if data_variants:
        for name, subset in _variants_of_data(fit).items():
            if name == "all sources":
                continue
            j, _, _ = trainer.fit(subset, selection)
            measure(f"judge trained on {name}", j, base, f"threshold {j.threshold:.2f}")
    if json_out:
        json_out.write_text(json.dumps({"rows": rows, "collect_seconds": times}, ensure_ascii=False, indent=1), "utf-8")
        print(f"wrote {json_out}")


def _header(files: list[str]) -> str:
    cols = ["variant"] + [f"{f}: {c}" for f in files for c in ("hit@1", "hit@5", "refusal (U)", "false ref. (A)", "wrong-top")]
    return "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols)


def _line(row: dict, files: list[str]) -> str:
    def f(v):
        return "n/a" if v is None else f"{v:.3f}"

    cells = [row["variant"]]
    for file in files:
        m = row[file]
        cells += [f(m["hit_at_1"]), f(m["hit_at_5"]), f(m["refusal_rate"]), f(m["false_refusal_rate"]), f(m["wrong_top_rate"])]
    return "| " + " | ".join(cells) + " |"


if __name__ == "__main__":
    app()
