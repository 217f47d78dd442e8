"""Tables and files from an evaluation run: the modes side by side, the threshold sweep, the failures.

    print_run(console, run, sweep=True)        # definitions, one table of all modes, sweep, failures
    write_json(run_to_dict(run, sweeps), Path("eval/results/x.json"))   # the summary: metrics, no per-question records
    write_json(run_records(run), Path("/tmp/x-records.json"))            # every question's record, on demand
    markdown_modes_table(run)                  # the same side-by-side table as Markdown

Every rate is printed with its numerator/denominator so a reader can recompute it.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from rich.console import Console
from rich.table import Table

from .metrics import (
    DEFINITIONS,
    SWEEP_RULE,
    QuestionScore,
    choose_threshold,
    default_thresholds,
    sweep_thresholds,
)
from .runner import EvalRun, ModeRun

MAX_FALSE_REFUSAL = 0.10  # issue 3's target: false refusals <= 0.1


def fmt_rate(value: float | None, num: int | None = None, den: int | None = None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" ({num}/{den})" if num is not None and den is not None else "")


def fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _counts(scored: Sequence[QuestionScore]) -> dict[str, int]:
    a = [s for s in scored if s.question.answerable]
    u = [s for s in scored if not s.question.answerable]
    return {
        "A": len(a),
        "U": len(u),
        "hit1": sum(s.hit_at(1) for s in a),
        "hit5": sum(s.hit_at(5) for s in a),
        "contains": sum(s.contains for s in a),
        "refused_u": sum(s.refused for s in u),
        "refused_a": sum(s.refused or s.errored for s in a),
        "wrong_top": sum(s.answered_wrong_top for s in scored),
        "all": len(scored),
        "answers": sum(s.status == "answer" for s in scored),
        "right_answers": sum(s.status == "answer" and s.question.answerable and s.hit_at(1) for s in scored),
        "helpful": sum(s.helpful for s in a),
        "answered_a": sum(s.status == "answer" for s in a),
        "none_u": sum(s.status == "none" for s in u),
    }


def mode_row(mr: ModeRun) -> list[str]:
    m, c = mr.metrics, _counts(mr.scored)
    return [
        mr.mode,
        fmt_rate(m.hit_at_1, c["hit1"], c["A"]),
        fmt_rate(m.hit_at_5, c["hit5"], c["A"]),
        fmt_rate(m.mrr_at_10),
        fmt_rate(m.answer_contains, c["contains"], c["A"]),
        fmt_rate(m.refusal_rate, c["refused_u"], c["U"]),
        fmt_rate(m.false_refusal_rate, c["refused_a"], c["A"]),
        fmt_rate(m.wrong_top_rate, c["wrong_top"], c["all"]),
        fmt_rate(m.precision, c["right_answers"], c["answers"]),
        fmt_rate(m.helpful, c["helpful"], c["A"]),
        fmt_rate(m.answered, c["answered_a"], c["A"]),
        fmt_rate(m.none_unanswerable, c["none_u"], c["U"]),
        fmt_ms(m.latency_p50_ms),
        fmt_ms(m.latency_p95_ms),
        str(m.n_errors),
    ]


MODE_COLUMNS = ["mode", "hit@1", "hit@5", "MRR@10", "answer-contains", "refusal (U)", "false-refusal (A)",
                "wrong-top", "precision", "helpful (A)", "answered (A)", "none (U)", "p50 ms", "p95 ms", "errors"]


def modes_table(run: EvalRun) -> Table:
    where = run.backend.get("url") or run.backend.get("kb")
    table = Table(title=f"{Path(run.gold_path).name} on {where} (top_k={run.top_k})")
    for i, col in enumerate(MODE_COLUMNS):
        table.add_column(col, justify="left" if i == 0 else "right")
    for mr in run.modes.values():
        table.add_row(*mode_row(mr))
    return table


def markdown_modes_table(run: EvalRun) -> str:
    lines = ["| " + " | ".join(MODE_COLUMNS) + " |", "|" + "---|" * len(MODE_COLUMNS)]
    lines += ["| " + " | ".join(mode_row(mr)) + " |" for mr in run.modes.values()]
    return "\n".join(lines)


def tag_table(mr: ModeRun) -> Table | None:
    """hit@5 and refusals per gold tag (a question counts under each of its tags)."""
    tags = sorted({t for s in mr.scored for t in s.question.tags})
    if not tags:
        return None
    table = Table(title=f"{mr.mode}: by tag")
    for col in ("tag", "n", "hit@5 (A)", "refusal (U)", "false-refusal (A)"):
        table.add_column(col, justify="right" if col != "tag" else "left")

    def rate(group, flag) -> str:
        if not group:
            return "–"
        n = sum(1 for s in group if flag(s))
        return fmt_rate(n / len(group), n, len(group))

    for tag in tags:
        group = [s for s in mr.scored if tag in s.question.tags]
        a = [s for s in group if s.question.answerable]
        u = [s for s in group if not s.question.answerable]
        table.add_row(tag, str(len(group)), rate(a, lambda s: s.hit_at(5)), rate(u, lambda s: s.refused),
                      rate(a, lambda s: s.refused or s.errored))
    return table


# ---------------------------------------------------------------- sweep


def sweep_for(mr: ModeRun, thresholds: Sequence[float] | None = None) -> dict:
    """Sweep on the refusal-disabled pass if there is one (citations of would-be refusals are then known)."""
    scored = mr.sweep_scored or mr.scored
    ts = list(thresholds) if thresholds else default_thresholds(scored)
    current = mr.refusal_threshold
    if current is not None and current not in ts and all(t is not None for t in ts):
        ts = sorted([*ts, current])
    rows = sweep_thresholds(scored, ts)
    chosen = choose_threshold(rows, MAX_FALSE_REFUSAL)
    result = {
        "mode": mr.mode,
        "source": "confidences of this run; refused questions re-asked with refusal disabled" if mr.sweep_scored else "returned confidences of this run",
        "rule": SWEEP_RULE.format(max_fr=MAX_FALSE_REFUSAL),
        "rows": [asdict(r) for r in rows],
        "chosen": asdict(chosen) if chosen else None,
        "current_threshold": current,
    }
    if current is not None:
        # A check that the engine refuses exactly when confidence < threshold: the simulated rates at the
        # configured threshold must equal the ones the normal pass produced.
        sim = sweep_thresholds(mr.scored, [current])[0]
        result["check_at_current"] = {
            "simulated_refusal_rate": sim.refusal_rate,
            "actual_refusal_rate": mr.metrics.refusal_rate,
            "simulated_false_refusal_rate": sim.false_refusal_rate,
            "actual_false_refusal_rate": mr.metrics.false_refusal_rate,
        }
    return result


def sweep_table(sweep: dict) -> Table:
    table = Table(title=f"{sweep['mode']}: refusal threshold sweep ({sweep['source']})")
    for col in ("threshold", "refusal (U)", "false-refusal (A)", "answered & hit@5 (A)", ""):
        table.add_column(col, justify="right")
    chosen = (sweep.get("chosen") or {}).get("threshold")
    for r in sweep["rows"]:
        mark = []
        if r["threshold"] == chosen:
            mark.append("← chosen")
        if r["threshold"] == sweep.get("current_threshold"):
            mark.append("← current")
        table.add_row(f"{r['threshold']:.3f}", fmt_rate(r["refusal_rate"]), fmt_rate(r["false_refusal_rate"]),
                      fmt_rate(r["hit_at_5_answered"]), " ".join(mark))
    return table


# ---------------------------------------------------------------- failures


def _clip(text: str, n: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def failure_record(s: QuestionScore, max_citations: int = 5) -> dict:
    r = s.returned
    return {
        "id": s.question.id,
        "question": s.question.question,
        "answerable": s.question.answerable,
        "reasons": s.failure_reasons,
        "expected_sources": list(s.question.sources),
        "expected_evidence": list(s.question.evidence_any),
        "answered": r.answered,
        "confidence": r.confidence,
        "error": r.error,
        "answer": r.answer,
        "citations": [asdict(c) for c in r.citations[:max_citations]],
    }


def print_failures(console: Console, mr: ModeRun, width: int = 90) -> None:
    failed = [s for s in mr.scored if s.failed]
    console.print(f"\n[bold]{mr.mode}: {len(failed)} failed question(s)[/] of {len(mr.scored)}", highlight=False)
    for s in failed:
        q, r = s.question, s.returned
        head = f"[{q.id}] {q.question}  — {', '.join(s.failure_reasons)}"
        console.print(head, style="bold", highlight=False, markup=False)
        if q.answerable:
            console.print(f"    expected: sources {list(q.sources)} evidence {list(q.evidence_any)}", highlight=False, markup=False)
        if r.error:
            console.print(f"    error: {_clip(r.error, width)}", highlight=False, markup=False)
            continue
        conf = "n/a" if r.confidence is None else f"{r.confidence:.3f}"
        console.print(f"    answered={r.answered} confidence={conf} faq={r.faq_id or '-'}", highlight=False, markup=False)
        console.print(f"    answer: {_clip(r.answer, width)}", highlight=False, markup=False)
        for pos, c in enumerate(r.citations[:5], start=1):
            src = f" ← {'; '.join(c.source_titles)}" if c.source_titles else ""
            console.print(f"    {pos}. [{c.kind}] {_clip(c.title, 40)}{_clip(src, 40)} | {_clip(c.section, 24)} | "
                          f"{_clip(c.quote, 60)}", highlight=False, markup=False)


# ---------------------------------------------------------------- whole run


def print_run(console: Console, run: EvalRun, *, sweeps: list[dict] | None = None, failures: str = "last") -> None:
    console.print(DEFINITIONS, highlight=False, markup=False)
    b, m = run.backend, run.machine
    console.print(
        f"backend {b.get('backend')} · {b.get('url') or b.get('kb')} · model {b.get('model') or '?'} · "
        f"refusal_threshold {b.get('refusal_threshold', 'as served')} · {m['cores']} cores ({m['cpu']}) · "
        f"load average {m.get('load_average')} → {m.get('load_average_end')} · {m['date']}",
        highlight=False,
    )
    console.print(modes_table(run))
    for note in run.notes:
        console.print(f"note: {note}", highlight=False)
    last = list(run.modes.values())[-1] if run.modes else None
    if last is not None:
        by_tag = tag_table(last)
        if by_tag is not None:
            console.print(by_tag)
    for sweep in sweeps or []:
        console.print(sweep_table(sweep))
        console.print(sweep["rule"], highlight=False)
        ch = sweep.get("chosen")
        if ch:
            console.print(
                f"[bold]{sweep['mode']}: chosen refusal_threshold = {ch['threshold']:.3f}[/] → refusal (U) "
                f"{fmt_rate(ch['refusal_rate'])}, false-refusal (A) {fmt_rate(ch['false_refusal_rate'])}, "
                f"answered & hit@5 {fmt_rate(ch['hit_at_5_answered'])}",
                highlight=False,
            )
        chk = sweep.get("check_at_current")
        if chk and (chk["simulated_refusal_rate"] != chk["actual_refusal_rate"]
                    or chk["simulated_false_refusal_rate"] != chk["actual_false_refusal_rate"]):
            console.print(f"note: at the current threshold the engine's refusals differ from 'confidence < threshold' "
                          f"({chk}); it also refuses for other reasons", highlight=False)
    if failures == "none":
        return
    for mr in run.modes.values():
        if failures == "all" or mr is last:
            print_failures(console, mr)


def question_record(s: QuestionScore) -> dict:
    r = s.returned
    return {
        "id": s.question.id,
        "question": s.question.question,
        "answerable": s.question.answerable,
        "tags": s.question.tags,
        "answered": r.answered,
        "confidence": r.confidence,
        "hit_rank": s.hit_rank,
        "answer_contains": s.contains if s.question.answerable else None,
        "refused": s.refused,
        "failure_reasons": s.failure_reasons,
        "latency_ms": r.latency_ms,
        "stages_ms": r.stages_ms,
        "error": r.error,
        "faq_id": r.faq_id,
        "answer": r.answer,
        "citations": [asdict(c) for c in r.citations],
    }


def run_to_dict(run: EvalRun, sweeps: list[dict] | None = None) -> dict:
    """The run's summary: metrics, counts and sweeps per mode, no per-question record (`run_records` has those)."""
    return {
        "gold": run.gold_path,
        "top_k": run.top_k,
        "backend": run.backend,
        "machine": run.machine,
        "notes": run.notes,
        "definitions": DEFINITIONS,
        "modes": {
            name: {"metrics": mr.metrics.as_dict(), "counts": _counts(mr.scored), "refusal_threshold": mr.refusal_threshold}
            for name, mr in run.modes.items()
        },
        "sweeps": sweeps or [],
    }


def run_records(run: EvalRun) -> dict:
    """Every question's record per mode (what was returned and how it scored), for `policyqa eval --records FILE`."""
    return {
        "gold": run.gold_path,
        "top_k": run.top_k,
        "backend": run.backend,
        "modes": {
            name: {
                "questions": [question_record(s) for s in mr.scored],
                "failures": [failure_record(s) for s in mr.scored if s.failed],
                "sweep_pass": [
                    {"id": s.question.id, "confidence": s.returned.confidence, "hit_rank": s.hit_rank,
                     "answered": s.returned.answered, "error": s.returned.error}
                    for s in mr.sweep_scored
                ] if mr.sweep_scored else None,
            }
            for name, mr in run.modes.items()
        },
    }


def write_json(data: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str) + "\n", "utf-8")
