"""Regenerate the results block of README.md: the served configuration's figures, and the retrieval without a judge
on the demo and the full knowledge base (the block shows hybrid + FAQ; the saved files hold all four modes).

    python -m eval.readme_table --full-kb /work/devkb/full          # evaluate, save JSON, rewrite the block
    python -m eval.readme_table --demo-kb /work/devkb/demo --full-kb /work/devkb/full
    python -m eval.readme_table --from-results                      # only re-render from eval/results/

Runs (in process, all four modes, one run per knowledge base and gold file): the demo KB on
../shared/eval/dev.jsonl (its questions are about the demo's documents) and on the demo part of the held-out
eval/questions/test.jsonl (`--demo-subset`); the full KB on dev.jsonl and on all of test.jsonl, each saved as
eval/results/modes-<demo|full>-<gold>.json. A knowledge base not given keeps its last saved figures. The served
configuration's table is read from the summaries `policyqa eval` wrote (eval/results/eval-full-*.json and
multiturn-full-http.json; their commands are in eval/results/README.md); it is not re-run here. Only the text
between `<!-- results:start -->` and `<!-- results:end -->` is replaced; nothing else in README.md.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional

import typer

from qa_service.demo import open_kb

from .gold import load_gold, select_questions
from .report import run_to_dict, write_json
from .runner import MODES, InProcessBackend, run_eval

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "eval" / "results"
README = ROOT / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"
TEST = ROOT / "eval" / "questions" / "test.jsonl"
KB_LABELS = {"demo": "demo KB", "full": "full corpus"}


# The served configuration (hybrid+FAQ with the knowledge base's judge): (gold set, how it was asked, summary file).
SERVED = [("dev.jsonl", "in process", "eval-full-dev.json"), ("dev.jsonl", "over HTTP", "eval-full-dev-http.json"),
          ("test.jsonl", "in process", "eval-full-test.json"), ("test.jsonl", "over HTTP", "eval-full-test-http.json")]
RANKING = "eval-full-test-ranking.json"
MULTITURN = "multiturn-full-http.json"
SHOWN_MODE = "hybrid_faq"  # the no-judge table shows the served mode; the modes-*.json files hold all four


def result_path(label: str, gold: Path) -> Path:
    return RESULTS / f"modes-{label}-{gold.stem}.json"


def evaluate(label: str, kb_dir: Optional[Path], gold: Path, demo_subset: bool) -> Path:
    backend = InProcessBackend(open_kb(kb_dir, seed_demo=True))
    questions = select_questions(load_gold(gold), demo_subset=demo_subset)
    run = run_eval(backend, questions, gold_path=str(gold), modes=list(MODES), top_k=5)
    data = run_to_dict(run)
    data["label"] = label
    data["demo_subset"] = demo_subset
    out = result_path(label, gold)
    write_json(data, out)
    return out


def _rate(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def _counted(value, num: int, den: int) -> str:
    return "–" if value is None else f"{value:.3f} ({num}/{den})"


def served_lines() -> list[str]:
    """The served configuration on the full corpus, from the saved summaries (none saved: no lines)."""
    runs = [(gold, how, json.loads((RESULTS / name).read_text("utf-8"))) for gold, how, name in SERVED if (RESULTS / name).exists()]
    if not runs:
        return []
    first = runs[0][2]
    judge = next((r["backend"].get("judge") for _, _, r in runs if r["backend"].get("judge")), None)
    lines = [
        f"**Served configuration** (full corpus, {first['backend']['counts']['chunks']} chunks; hybrid + FAQ with the "
        f"judge `{judge}`; measured {first['machine']['date'][:10]}; files and commands: `eval/results/README.md`). "
        "precision: share of `answer` responses whose first citation is right; helpful: answerable questions "
        "answered right or suggested with a right article among the suggestions; ranking hit@1 / hit@5: the "
        "judge's ranking with every question answered (`eval-full-test-ranking.json`):",
        "",
        "| questions | asked | precision | helpful (A) | answered (A) | answered (U) | none (U) | p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for gold, how, r in runs:
        mr = next(iter(r["modes"].values()))
        x, c = mr["metrics"], mr["counts"]
        lines.append(
            f"| {gold} ({c['A']} A + {c['U']} U{', held out' if gold.startswith('test') else ''}) | {how} | "
            f"{_counted(x.get('precision'), c.get('right_answers'), c.get('answers'))} | "
            f"{_counted(x.get('helpful'), c.get('helpful'), c['A'])} | {_counted(x.get('answered'), c.get('answered_a'), c['A'])} | "
            f"{_rate(x.get('answered_unanswerable'))} | {_counted(x.get('none_unanswerable'), c.get('none_u'), c['U'])} | "
            f"{x['latency_p50_ms']:.0f} | {x['latency_p95_ms']:.0f} |"
        )
    if (RESULTS / RANKING).exists():
        rk = next(iter(json.loads((RESULTS / RANKING).read_text("utf-8"))["modes"].values()))["metrics"]
        lines += ["", f"Ranking (test.jsonl, every question answered): hit@1 {rk['hit_at_1']:.3f}, hit@5 "
                      f"{rk['hit_at_5']:.3f}, MRR@10 {rk['mrr_at_10']:.3f}."]
    if (RESULTS / MULTITURN).exists():
        mt = json.loads((RESULTS / MULTITURN).read_text("utf-8"))
        parts = [("all", mt["summary"]), *mt.get("splits", {}).items()]
        lines += ["", "Conversations (`eval/questions/multiturn.jsonl`, over HTTP), last turns: " + "; ".join(
            f"{name} {s['conversations']}: helpful {_rate(s.get('last_helpful'))} ({s['last_answerable']} A), "
            f"none {_rate(s.get('last_none_unanswerable'))} ({s['last_unanswerable']} U)"
            for name, s in parts) + f"; follow-ups understood {_rate(mt['summary'].get('follow_ups_understood'))}."]
    return [*lines, ""]


def render_block(files: list[Path]) -> str:
    runs = [json.loads(f.read_text("utf-8")) for f in files if f.exists()]
    if not runs:
        raise SystemExit("no saved results to render (run with --demo-kb/--full-kb first)")
    latest = max(runs, key=lambda r: r["machine"]["date"])
    m = latest["machine"]
    models = sorted({str(r["backend"].get("model")) for r in runs})
    lines = [
        START,
        *served_lines(),
        "**Without a judge** (the demo knowledge base has none; on the full corpus, the baseline the judge is measured "
        f"against), hybrid + FAQ; lexical, dense and hybrid alone are in `eval/results/modes-*.json`. Measured {m['date'][:10]} on {m['cores']} cores ({m['cpu']}), model `{', '.join(models)}`, in process, "
        f"top_k = 5; regenerate with `python -m eval.readme_table --full-kb DIR`. The machine is shared with other "
        f"work, so latencies are upper bounds. A = answerable, U = unanswerable questions; definitions: `policyqa eval`.",
        "",
        "| KB | questions | hit@1 | hit@5 | MRR@10 | answer-contains | refusal (U) | false-refusal (A) | p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        mr = r["modes"].get(SHOWN_MODE)
        if mr is None:
            continue
        kb = KB_LABELS.get(r.get("label"), r.get("label"))
        counts = r["backend"].get("counts") or {}
        x, c = mr["metrics"], mr["counts"]
        subset = " demo part" if r.get("demo_subset") else ""
        lines.append(
            f"| {kb} ({counts.get('chunks', '?')} chunks) | {Path(r['gold']).name}{subset} ({c['A']} A + {c['U']} U) | "
            f"{_rate(x['hit_at_1'])} | {_rate(x['hit_at_5'])} | {_rate(x['mrr_at_10'])} | {_rate(x['answer_contains'])} | "
            f"{_rate(x['refusal_rate'])} | {_rate(x['false_refusal_rate'])} | {x['latency_p50_ms']:.0f} | {x['latency_p95_ms']:.0f} |"
        )
    lines.append(END)
    return "\n".join(lines)


def replace_block(readme_text: str, block: str) -> str:
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(readme_text):
        raise SystemExit(f"README.md has no {START} … {END} block; add the two markers where the table belongs")
    return pattern.sub(lambda _: block, readme_text, count=1)


def main(
    demo_kb: Optional[Path] = typer.Option(None, "--demo-kb", help="Demo knowledge base (default: the bundled demo KB)."),
    full_kb: Optional[Path] = typer.Option(None, "--full-kb", help="Knowledge base of the whole corpus (skipped if absent)."),
    from_results: bool = typer.Option(False, "--from-results", help="Do not evaluate; re-render the saved results."),
    readme: Path = typer.Option(README, "--readme", help="The README whose results block is rewritten."),
    print_only: bool = typer.Option(False, "--print", help="Print the block instead of writing README.md."),
) -> None:
    """Evaluate (four modes, demo and full KB) and rewrite README.md's results block."""
    plan = [("demo", DEV), ("demo", TEST), ("full", DEV), ("full", TEST)]
    if not from_results:
        for label, gold in plan:
            if not gold.exists():
                typer.echo(f"skipping {label} on {gold}: no such file")
                continue
            if label == "full" and full_kb is None:
                continue
            # test.jsonl covers the whole corpus: on the demo KB only its demo-answerable part (+ unanswerable)
            out = evaluate(label, demo_kb if label == "demo" else full_kb, gold, demo_subset=label == "demo" and gold == TEST)
            typer.echo(f"wrote {out}")
    block = render_block([result_path(label, gold) for label, gold in plan])
    if print_only:
        typer.echo(block)
        return
    readme.write_text(replace_block(readme.read_text("utf-8"), block), "utf-8")
    typer.echo(f"rewrote the results block of {readme}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    typer.run(main)
