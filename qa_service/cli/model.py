"""`policyqa model …`: train, show and remove the knowledge base's learned answer judge; fine-tune its encoder.

    policyqa model train-judge --kb kb          # ≈ minutes on 2 cores; progress bar; stored in the knowledge base
    policyqa model show --kb kb                 # identity, training data hash, sizes, calibration
    policyqa model remove-judge --kb kb         # back to today's fused ranking and two-feature confidence
    policyqa model train-encoder --kb kb        # ≈ 30 min training + one re-embedding of the corpus, then train-judge
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from knowledge_base.encoder import get_embedder
from knowledge_base.encoder_store import record_encoder, spec_for
from knowledge_base.judge import JudgeConfig, StaleJudgeError, judge_record, load_judge, remove_judge
from knowledge_base.settings import get_settings
from knowledge_base.store import EncoderIdentity, KnowledgeBaseError

from ..training.judge import (DEFAULT_FAQ_SHEETS, DEFAULT_FIT, DEFAULT_LAYPERSON, DEFAULT_SELECT, JudgeTrainer,
                              TrainingSources, existing as _existing)
from .common import console, err, fail, open_kb

app = typer.Typer(help="The learned answer judge (ranking and refusal), trained on this knowledge base.",
                        no_args_is_help=True)


def open_served_kb(kb: Optional[Path]):
    """The knowledge base at `kb`, or the CLI error when nothing has been ingested into it yet."""
    kbase = open_kb(kb)
    if kbase.state().generation == 0:
        fail(f"the knowledge base in {kbase.directory} is empty: run `policyqa ingest` first")
    return kbase


@contextlib.contextmanager
def stage_progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar per training stage on stderr: yields `on_progress(stage, done, total)`."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as progress:
        tasks: dict[str, int] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield on_progress


@app.command("train-judge")
def train_judge(
    kb: Optional[Path] = typer.Option(None, "--kb", help="Knowledge-base directory."),
    fit: list[Path] = typer.Option(None, "--fit", help="Labelled questions to fit on (gold JSONL); default eval/questions/train_{national,local,extra}.jsonl (train_more.jsonl with --fit)."),
    select: list[Path] = typer.Option(None, "--select", help="Labelled questions to choose the threshold on; default tune.jsonl + ../shared/eval/dev.jsonl + select.jsonl."),
    layperson: Optional[Path] = typer.Option(None, "--layperson", help="Layperson questions with their statutes (default ../shared/train/layperson_statutes.jsonl)."),
    faq_sheet: list[Path] = typer.Option(None, "--faq-sheet", help="FAQ spreadsheets to learn from besides the KB's entries (default ../shared/faq/sample_faq.csv)."),
    no_layperson: bool = typer.Option(False, "--no-layperson", help="Leave the layperson questions out."),
    no_leave_out: bool = typer.Option(False, "--no-leave-out", help="No leave-the-document-out negatives."),
    seed: int = typer.Option(13, "--seed"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the training report here."),
) -> None:
    """Build the training set from this knowledge base, train the judge, choose its refusal threshold, store it."""
    fit_files = _existing(fit or DEFAULT_FIT)
    select_files = _existing(select or DEFAULT_SELECT)
    if not fit_files:
        fail("no labelled questions to fit on (--fit FILE)")
    missing = [str(p) for p in (fit or []) + (select or []) if not Path(p).exists()]
    if missing:
        fail(f"not found: {', '.join(missing)}")
    lay = None if no_layperson else (layperson or (DEFAULT_LAYPERSON if DEFAULT_LAYPERSON.exists() else None))
    if lay is not None and not Path(lay).exists():
        fail(f"not found: {lay}")
    sources = TrainingSources(fit=fit_files, select=select_files, layperson=lay,
                              faq_sheets=_existing(faq_sheet or DEFAULT_FAQ_SHEETS),
                              leave_document_out=not no_leave_out)
    kbase = open_served_kb(kb)
    err.print(f"training the judge on {kbase.directory}: fit {', '.join(p.name for p in fit_files)}; "
              f"select {', '.join(p.name for p in select_files)}; layperson {'yes' if lay else 'no'}", highlight=False)
    with stage_progress() as on_progress:

        trainer = JudgeTrainer(kbase, get_settings(), sources, dataclasses.replace(JudgeConfig(), seed=seed),
                               progress=on_progress)
        try:
            report = trainer.run()
        except ValueError as e:
            fail(str(e))
    console.print(f"judge [bold]{report.judge_id}[/] stored in the knowledge base (data hash {report.data_hash})")
    for k, v in report.sizes.items():
        console.print(f"  {k}: {v}", highlight=False)
    if report.selection:
        print_calibration(report.selection, report.calibration[4::5])
    console.print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in report.seconds.items()), highlight=False)
    if json_out:
        body = {f.name: getattr(report, f.name) for f in dataclasses.fields(report) if f.name != "judge"}
        json_out.write_text(json.dumps(body, ensure_ascii=False, indent=1), "utf-8")


# over 60 lines: a typer command: its options are its signature, then the four stages it reports on
@app.command("train-encoder")
def train_encoder(
    kb: Optional[Path] = typer.Option(None, "--kb", help="Knowledge-base directory."),
    minutes: float = typer.Option(30.0, "--minutes", help="Time budget of the training steps (pairs, re-embedding and the judge come on top)."),
    cloze_pairs: int = typer.Option(2500, "--cloze-pairs", help="Inverse-cloze pairs mined from the corpus."),
    force: bool = typer.Option(False, "--force", help="Switch to the fine-tuned encoder even if it ranks the selection questions worse."),
    no_judge: bool = typer.Option(False, "--no-judge", help="Do not retrain the judge after re-embedding (the old one is then not served)."),
    seed: int = typer.Option(13, "--seed"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the training report here."),
) -> None:
    """Fine-tune the encoder on this knowledge base's domain, re-embed the corpus with it as a new generation (the
    current one serves meanwhile), then retrain the judge on top."""
    from ..training.encoder import EncoderConfig, EncoderTrainer  # lazy: sentence-transformers and torch, 3.7 s


    kbase = open_served_kb(kb)
    if minutes <= 0:
        fail("--minutes must be positive")
    settings = get_settings()
    config = dataclasses.replace(EncoderConfig(), minutes=minutes, cloze_pairs=cloze_pairs, seed=seed)
    with stage_progress() as on_progress:

        report = EncoderTrainer(kbase, settings, config=config).run(on_progress)
        console.print(f"encoder [bold]{report.encoder_id}[/]: {report.steps} steps; pairs "
                      + ", ".join(f"{k} {v}" for k, v in report.sizes.items()), highlight=False)
        for name, figures in report.selection.items():
            console.print(f"  selection {name}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                          for k, v in figures.items()), highlight=False)
        better = not report.selection or report.selection["fine_tuned"]["mrr@10"] >= report.selection["base"]["mrr@10"]
        if not better and not force:
            fail("the fine-tuned encoder ranks the selection questions worse than the current one; nothing switched "
                 "(--force switches anyway)")
        record_encoder(kbase, report.encoder_id, report.base_spec, report.tensors, report.info())
        spec = spec_for(report.encoder_id)
        backend = kbase.encoder().backend
        embedder = get_embedder(kbase.encoder_source(spec), backend)
        identity = EncoderIdentity(embedder.model_id, spec, backend, embedder.dim)
        started = time.perf_counter()
        total, done = kbase.counts()["chunks"], 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            on_progress("re-embedding the corpus", done, total)

        try:
            generation = kbase.reembed(identity, embedder.embed_passages, embedder.embed_queries, progress=advance)
        except KnowledgeBaseError as e:
            fail(str(e))
        report.seconds["reembed"] = time.perf_counter() - started
    console.print(f"re-embedded {total} chunks with {embedder.model_id} in {report.seconds['reembed'] / 60:.1f} min: "
                  f"generation {generation} serves", highlight=False)
    console.print("seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in report.seconds.items()), highlight=False)
    if json_out:
        json_out.write_text(json.dumps({"encoder_id": report.encoder_id, **report.info()}, ensure_ascii=False, indent=1), "utf-8")
    if not no_judge:
        console.print("retraining the judge on the new vectors: policyqa model train-judge", highlight=False)
        train_judge(kb=kbase.directory, fit=None, select=None, layperson=None, faq_sheet=None, no_layperson=False,
                    no_leave_out=False, seed=seed, json_out=None)


@app.command("show")
def show(kb: Optional[Path] = typer.Option(None, "--kb", help="Knowledge-base directory.")) -> None:
    """The knowledge base's judge: identity, training data hash and sizes, chosen threshold."""
    kbase = open_kb(kb)
    record = judge_record(kbase)
    if record is None:
        console.print("no judge: answers are ranked by fused BM25 + cosine (train one with `policyqa model train-judge`)")
        return
    try:
        judge = load_judge(kbase)
    except StaleJudgeError as e:  # served as no judge (the fused ranking) until it is retrained
        fail(f"{e} (until then answers are ranked by fused BM25 + cosine)")
    info = {k: v for k, v in judge.info.items() if k != "calibration"}
    console.print_json(json.dumps({**record, "threshold": judge.threshold, "suggest_threshold": judge.suggest_threshold,
                                   "info": info}, ensure_ascii=False))
    if judge.info.get("selection") and judge.info.get("calibration"):
        print_calibration(judge.info["selection"], judge.info["calibration"])


def print_calibration(s: dict, table: list[dict]) -> None:
    """The operating points and the calibration table on the selection questions (issue 21)."""
    def pct(v) -> str:
        return "   -" if v is None else f"{v:.3f}"

    console.print(f"selection ({s['questions']} questions, {s['answerable']} answerable): hit@1 {pct(s.get('hit@1'))}; "
                  f"answer at confidence ≥ {s['threshold']:.2f} (precision {pct(s.get('precision'))}, answered "
                  f"{pct(s.get('answered'))} of answerable, {pct(s.get('answer_u'))} of unanswerable); suggest at ≥ "
                  f"{s.get('suggest_threshold', s['threshold']):.2f} (none on unanswerable {pct(s.get('none_u'))}); "
                  f"helpful {pct(s.get('helpful'))}", highlight=False)
    console.print("  threshold  precision  answered(A)  answered(U)  none(U) if suggest  helpful(A) if suggest",
                  highlight=False)
    for r in table:
        console.print(f"  {r['threshold']:>9.2f}  {pct(r.get('precision')):>9}  {pct(r.get('answered_a')):>11}  "
                      f"{pct(r.get('answer_u')):>11}  {pct(r.get('none_u')):>18}  {pct(r.get('helpful_a')):>21}",
                      highlight=False)


@app.command("remove-judge")
def remove(kb: Optional[Path] = typer.Option(None, "--kb", help="Knowledge-base directory.")) -> None:
    """Forget the judge: answering goes back to the fused ranking and two-feature confidence."""
    console.print("judge removed" if remove_judge(open_kb(kb)) else "there was no judge")
