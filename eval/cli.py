"""`policyqa eval` and `policyqa bench …`: answer quality on gold questions, and the benchmarks.

    policyqa eval --gold ../shared/eval/dev.jsonl --kb /work/devkb/demo          # four modes side by side
    policyqa eval --gold eval/questions/tune.jsonl --kb KB --sweep                # + refusal threshold sweep
    policyqa eval --gold ../shared/eval/dev.jsonl --url http://127.0.0.1:8000     # a running server, public API
    policyqa bench ingest|query|scale …                                           # = python -m eval.bench_…

`eval_command` and `bench_app` are the `policyqa.commands` entry points `eval` and `bench` (pyproject.toml), which
`qa_service.cli` mounts without importing this package; this module imports nothing from the CLI (the knowledge base
is opened by `qa_service.demo.open_kb`, the public API).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from knowledge_base.store import KnowledgeBaseError
from qa_service.demo import open_kb

from . import bench_ingest, bench_query, bench_scale
from .gold import GoldFileError, load_gold, select_questions
from .multiturn import run_cli
from .report import print_run, run_records, run_to_dict, sweep_for, write_json
from .runner import DISABLED_REFUSAL, MODES, HttpBackend, InProcessBackend, run_eval

console = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


# over 60 lines: a typer command: its options are its signature
def eval_command(
    gold: Path = typer.Option(..., "--gold", help="Gold questions (JSONL: id, question, sources, evidence_any, answerable)."),
    kb: Optional[Path] = typer.Option(None, "--kb", help="Knowledge-base directory, evaluated in process (default: POLICYQA_KB or the demo KB)."),
    url: Optional[str] = typer.Option(None, "--url", help="Evaluate a running server over HTTP (public API only) instead."),
    k: int = typer.Option(5, "--k", min=1, max=20, help="top_k asked for; hit@5 and MRR@10 look only at what comes back."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the summary here: metrics, counts and sweeps per mode."),
    records_out: Optional[Path] = typer.Option(
        None, "--records", help="Also write every question's record here (what came back, how it scored)."
    ),
    modes: Optional[str] = typer.Option(
        None, "--modes", help="Comma-separated retrieval modes (in process; default all four: lexical,dense,hybrid,hybrid_faq)."
    ),
    sweep: bool = typer.Option(False, "--sweep", help="Sweep the refusal threshold; choose the default from it."),
    refusal_threshold: Optional[float] = typer.Option(
        None, "--refusal-threshold", help="In process: answer with this refusal threshold instead of the configured one."
    ),
    failures: str = typer.Option("last", "--failures", help="Which modes' failed questions to list: last, all or none."),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", envvar="POLICYQA_EVAL_API_KEY", help="With --url: a staff key, so the public rate limit does not apply."
    ),
    tag: Optional[str] = typer.Option(None, "--tag", help="Only the gold questions carrying this tag."),
    demo_subset: bool = typer.Option(
        False, "--demo-subset", help="Only answerable questions tagged 'demo', plus every unanswerable one (for the demo KB)."
    ),
    multiturn: bool = typer.Option(
        False, "--multiturn", help="The gold file holds conversations (eval/multiturn.py): each asked turn by turn under one session_id."
    ),
) -> None:
    """Answer quality on gold questions: hit@1, hit@5, MRR@10, answer-contains, refusals, latency; every failure listed."""
    if multiturn:  # issue 10
        if kb is not None and url is not None:
            _fail("give --kb or --url, not both")
        try:
            run_cli(gold, kb, url, k, json_out, api_key, console, records_out=records_out)
        except GoldFileError as e:
            _fail(str(e))
        return

    if kb is not None and url is not None:
        _fail("give --kb or --url, not both")
    if failures not in ("last", "all", "none"):
        _fail("--failures must be last, all or none")
    try:
        questions = load_gold(gold)
    except GoldFileError as e:
        _fail(str(e))
    questions = select_questions(questions, tag=tag, demo_subset=demo_subset)
    if not questions:
        _fail("no gold question left after --tag/--demo-subset")
    mode_list = [m.strip() for m in modes.split(",") if m.strip()] if modes else None
    if mode_list:
        bad = [m for m in mode_list if m not in MODES]
        if bad:
            _fail(f"unknown mode(s) {bad}; choose from {', '.join(MODES)}")
    sweep_backend = None
    if url:
        if mode_list:
            _fail("--modes needs the in-process engine: over HTTP the server answers in its own mode")
        if refusal_threshold is not None:
            _fail("--refusal-threshold needs the in-process engine (the server uses its own setting)")
        backend = HttpBackend(url, api_key=api_key)
    else:
        kbase = open_kb(kb, seed_demo=True)
        try:
            backend = InProcessBackend(kbase, refusal_threshold=refusal_threshold)
            if sweep:
                sweep_backend = InProcessBackend(kbase, refusal_threshold=DISABLED_REFUSAL)
        except KnowledgeBaseError as e:
            _fail(str(e))
        mode_list = mode_list or list(MODES)
    a = sum(q.answerable for q in questions)
    err.print(f"{len(questions)} questions ({a} answerable, {len(questions) - a} unanswerable) × "
              f"{len(mode_list or backend.modes())} mode(s) via {backend.kind} …", highlight=False)

    n_modes = len(mode_list or backend.modes())
    with Progress(TextColumn("asking"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                  transient=True) as progress:
        task = progress.add_task("asking", total=len(questions) * n_modes)
        try:
            run = run_eval(backend, questions, gold_path=str(gold), modes=mode_list, top_k=k, sweep_backend=sweep_backend,
                           on_done=lambda q, r: progress.advance(task))
        finally:
            backend.close()
    sweeps = [sweep_for(mr) for mr in run.modes.values()] if sweep else []
    print_run(console, run, sweeps=sweeps, failures=failures)
    if json_out:
        write_json(run_to_dict(run, sweeps), json_out)
        console.print(f"wrote {json_out}", highlight=False)
    if records_out:
        write_json(run_records(run), records_out)
        console.print(f"wrote {records_out}", highlight=False)
    if all(s.errored for mr in run.modes.values() for s in mr.scored):
        _fail("every ask failed (see the errors above)", code=1)


bench_app = typer.Typer(help="Benchmarks (each prints figures beside a floor measured in the same run).", no_args_is_help=True)
bench_app.command("ingest")(bench_ingest.main)
bench_app.command("query")(bench_query.main)
bench_app.command("scale")(bench_scale.main)
