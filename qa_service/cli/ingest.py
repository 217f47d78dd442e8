"""`policyqa ingest` and `policyqa remove`: files into the knowledge base, documents out of it.

    policyqa ingest ../shared/corpus --kb kb      # progress bars, then a summary table; exit 1 if a file failed
    policyqa ingest /data/corpus --shard 2/4      # this machine's share, staged for `policyqa kb publish`
    policyqa remove 失业保险条例 --kb kb
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest.pipeline import IngestPipeline
from ingest.progress import ProgressLines
from knowledge_base.shards import ShardError, ShardRun, ShardSpec
from knowledge_base.store import KnowledgeBaseError

from .common import KbOption, console, err, fail, open_kb

SUMMARY_COLUMNS = ("added", "new version", "unchanged", "failed", "faq sheets", "chunks", "seconds")


class IngestProgress:
    """Two bars on stderr: files seen, chunks embedded (with the embedding rate). Not on a terminal (a log, a pipe,
    CI) the bars cannot draw: plain lines every few seconds instead (ingest.progress.ProgressLines)."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.lines = None if err.is_terminal else ProgressLines(
            write=lambda line: err.print(line, highlight=False, soft_wrap=True))
        self.files = progress.add_task("files", total=None, rate="")
        self.embedded = progress.add_task("chunks embedded", total=None, rate="", visible=False)
        self.done = 0
        self.t0 = time.perf_counter()

    def on_file(self, outcome) -> None:
        self.progress.advance(self.files)
        if self.lines:
            self.lines.file(outcome)
        elif outcome.status == "failed":
            self.progress.console.print(f"[red]failed:[/] {outcome.error}", highlight=False)

    def on_plan(self, n_docs: int, n_chunks: int) -> None:
        self.progress.update(self.embedded, total=n_chunks, visible=n_chunks > 0)
        self.t0 = time.perf_counter()
        if self.lines:
            self.lines.plan(n_docs, n_chunks)

    def on_embedded(self, n: int) -> None:
        self.done += n
        elapsed = time.perf_counter() - self.t0
        self.progress.update(self.embedded, advance=n, rate=f"{self.done / max(elapsed, 1e-6):.1f} chunks/s")
        if self.lines:
            self.lines.embedded(n)


def _progress_bars() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), console=err, transient=False,
    )


def _print_summary(report) -> None:
    table = Table(title="ingest summary")
    for col in SUMMARY_COLUMNS:
        table.add_column(col, justify="right")
    c = report.counts()
    table.add_row(
        str(c["added"]), str(c["new_version"]), str(c["unchanged"]), str(c["failed"]), str(c["faq"]),
        str(report.chunks_embedded), f"{report.seconds:.1f}",
    )
    console.print(table)
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in report.stage_seconds.items())
    console.print(f"stages: {stages}", highlight=False)
    if report.faq_entries:
        console.print(f"FAQ entries read: {len(report.faq_entries)} (stored as drafts unless already present)")
    for warning in report.content_warnings:  # content safety: ingested as they are, for staff to look at
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    for line in report.faq_errors:
        err.print(f"[red]faq row error:[/] {line}", highlight=False)


def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or directories (.txt .md .html .docx .pdf; .csv/.xlsx FAQ sheets)."),
    kb: Optional[Path] = KbOption,
    batch_size: int = typer.Option(32, help="Encoder batch size."),
    shard: Optional[str] = typer.Option(
        None, "--shard", metavar="K/N", help="Embed shard K of N of one directory's files into the (shared) store, "
        "without switching the served generation: `policyqa kb publish` does, once every shard is in."),
    run: Optional[str] = typer.Option(None, "--run", help="With --shard: the sharded ingest's name, the same on every "
                                      "machine (default: the directory's name)."),
) -> None:
    """Ingest policy files and FAQ sheets; unchanged files are skipped, changed ones become new versions."""
    shard_run = _shard_run(paths, shard, run)
    kbase = open_kb(kb)
    with _progress_bars() as progress:
        bars = IngestProgress(progress)
        try:
            report = IngestPipeline(kbase, batch_size=batch_size).run(
                paths, on_file=bars.on_file, on_embedded=bars.on_embedded, on_plan=bars.on_plan, shard=shard_run
            )
        except (KnowledgeBaseError, ShardError) as e:
            fail(str(e))
    _print_summary(report)
    if shard_run is not None:
        state = "failed: re-run it when fixed" if report.failed else "in"
        console.print(f"shard {shard_run.spec} of run {shard_run.run!r} {state}: {report.staged} document version(s) "
                      f"staged; the served generation moves at `policyqa kb publish`, once every shard is in",
                      highlight=False, soft_wrap=True)
    if report.failed:
        raise typer.Exit(1)


def _shard_run(paths: list[Path], shard: str | None, run: str | None):
    """The ShardRun that --shard and --run name (None without --shard); a CLI error when they do not fit."""
    if shard is None:
        if run is not None:
            fail("--run names a sharded ingest: give --shard K/N too")
        return None
    try:
        spec = ShardSpec.parse(shard)
    except ValueError as e:
        fail(str(e))
    if len(paths) != 1 or not paths[0].is_dir():
        fail(f"--shard takes one directory (every machine passes the same one), got {' '.join(map(str, paths))}")
    return ShardRun(run or paths[0].resolve().name, spec)


def remove(
    ref: str = typer.Argument(..., help="A doc_id, a source path or an exact title."),
    kb: Optional[Path] = KbOption,
) -> None:
    """Delete a document (all its chunks) from the knowledge base."""
    kbase = open_kb(kb)
    doc_ids = kbase.resolve_document(ref)
    if not doc_ids:
        fail(f"no document matches {ref!r}")
    try:
        gen = kbase.commit_ingest([], encoder=None, remove_doc_ids=doc_ids)
    except KnowledgeBaseError as e:
        fail(str(e))
    console.print(f"removed {len(doc_ids)} document(s): {', '.join(doc_ids)} (generation {gen})")
