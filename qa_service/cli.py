"""The `policyqa` command line.

    policyqa ingest ../shared/corpus --kb kb      # progress bar, then a summary table
    policyqa kb stats --kb kb
    policyqa serve                                 # serves the bundled demo knowledge base (built on first run)

Commands of the answering, curation and evaluation stages register themselves from their own modules.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ingest.progress import ProgressLines

app = typer.Typer(help="policyqa: 一库多平台 policy Q&A with cited sources.", no_args_is_help=True, add_completion=False)
kb_app = typer.Typer(help="Knowledge-base inspection.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
console = Console()
err = Console(stderr=True)

KbOption = typer.Option(None, "--kb", help="Knowledge-base directory (default: POLICYQA_KB, else the default KB in the cache).")


def open_kb(kb: Optional[Path], seed_demo: bool = False):
    """Open the knowledge base; the default one is seeded with the bundled demo corpus on first use."""
    from knowledge_base.settings import get_settings
    from knowledge_base.store import KnowledgeBase

    kbase = KnowledgeBase.open(kb)
    if seed_demo and kb is None and get_settings().kb is None and kbase.state().generation == 0:
        from .demo import build_demo_in_child

        err.print(f"[bold]First run:[/] building the demo knowledge base in {kbase.directory} (a few minutes) …")
        try:
            build_demo_in_child(kbase.directory)
        except RuntimeError as e:
            fail(str(e))
        err.print(f"demo knowledge base ready: {kbase.counts()['chunks']} chunks")
    return kbase


def fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or directories (.txt .md .html .docx .pdf; .csv/.xlsx FAQ sheets)."),
    kb: Optional[Path] = KbOption,
    batch_size: int = typer.Option(32, help="Encoder batch size."),
) -> None:
    """Ingest policy files and FAQ sheets; unchanged files are skipped, changed ones become new versions."""
    from ingest.pipeline import IngestPipeline
    from knowledge_base.store import KnowledgeBaseError

    kbase = open_kb(kb)
    # Not on a terminal (a log, a pipe, CI) the bar cannot draw: plain lines every few seconds instead.
    lines = None if err.is_terminal else ProgressLines(write=lambda line: err.print(line, highlight=False, soft_wrap=True))
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), console=err, transient=False,
    ) as progress:
        files_task = progress.add_task("files", total=None, rate="")
        embed_task = progress.add_task("chunks embedded", total=None, rate="", visible=False)
        state = {"done": 0}

        def on_file(outcome):
            progress.advance(files_task)
            if lines:
                lines.file(outcome)
            elif outcome.status == "failed":
                progress.console.print(f"[red]failed:[/] {outcome.error}", highlight=False)

        def on_plan(n_docs: int, n_chunks: int):
            progress.update(embed_task, total=n_chunks, visible=n_chunks > 0)
            state["t0"] = __import__("time").perf_counter()
            if lines:
                lines.plan(n_docs, n_chunks)

        def on_embedded(n: int):
            state["done"] += n
            elapsed = __import__("time").perf_counter() - state["t0"]
            progress.update(embed_task, advance=n, rate=f"{state['done'] / max(elapsed, 1e-6):.1f} chunks/s")
            if lines:
                lines.embedded(n)

        try:
            report = IngestPipeline(kbase, batch_size=batch_size).run(
                paths, on_file=on_file, on_embedded=on_embedded, on_plan=on_plan
            )
        except KnowledgeBaseError as e:
            fail(str(e))
    table = Table(title="ingest summary")
    for col in ("added", "new version", "unchanged", "failed", "faq sheets", "chunks", "seconds"):
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
    for line in report.faq_errors:
        err.print(f"[red]faq row error:[/] {line}", highlight=False)
    if report.failed:
        raise typer.Exit(1)


@app.command()
def remove(
    ref: str = typer.Argument(..., help="A doc_id, a source path or an exact title."),
    kb: Optional[Path] = KbOption,
) -> None:
    """Delete a document (all its chunks) from the knowledge base."""
    from knowledge_base.store import KnowledgeBaseError

    kbase = open_kb(kb)
    doc_ids = kbase.resolve_document(ref)
    if not doc_ids:
        fail(f"no document matches {ref!r}")
    try:
        gen = kbase.commit_ingest([], encoder=None, remove_doc_ids=doc_ids)
    except KnowledgeBaseError as e:
        fail(str(e))
    console.print(f"removed {len(doc_ids)} document(s): {', '.join(doc_ids)} (generation {gen})")


@kb_app.command("stats")
def kb_stats(kb: Optional[Path] = KbOption) -> None:
    """Counts of works, versions, chunks and FAQ entries; validity and region breakdowns."""
    from collections import Counter

    from sqlalchemy import func, select

    from knowledge_base.db import DocumentRow

    kbase = open_kb(kb)
    counts = kbase.counts()
    with kbase.session() as s:
        per_work = Counter(s.execute(select(DocumentRow.work_id, func.count()).group_by(DocumentRow.work_id)).all())
        multi = sum(1 for (_, n) in per_work if n > 1)
        validity = Counter(dict(s.execute(select(DocumentRow.validity, func.count()).group_by(DocumentRow.validity)).all()))
        regions = Counter(dict(s.execute(select(DocumentRow.region, func.count()).group_by(DocumentRow.region)).all()))
        disclosure = Counter(dict(s.execute(select(DocumentRow.disclosure, func.count()).group_by(DocumentRow.disclosure)).all()))
    state = kbase.state()
    table = Table(title=f"knowledge base {kbase.directory}", show_header=False)
    table.add_row("works", str(counts["works"]))
    table.add_row("works with more than one version", str(multi))
    table.add_row("documents (versions)", str(counts["documents"]))
    table.add_row("chunks", str(counts["chunks"]))
    table.add_row("FAQ entries (published)", f"{counts['faqs']} ({counts['faqs_published']})")
    table.add_row("validity", ", ".join(f"{k}: {v}" for k, v in sorted(validity.items())))
    table.add_row("disclosure", ", ".join(f"{k}: {v}" for k, v in sorted(disclosure.items())))
    table.add_row("regions", ", ".join(f"{k or '—'}: {v}" for k, v in regions.most_common()))
    table.add_row("generation", str(state.generation))
    table.add_row("encoder", f"{state.model_id or '—'} ({state.model_backend or '—'}, dim {state.dim or '—'})")
    console.print(table)


@app.command()
def serve(
    kb: Optional[Path] = KbOption,
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8000, help="Port."),
) -> None:
    """Serve the HTTP API, widget and pages; with no --kb, the bundled demo knowledge base (built on first run)."""
    import uvicorn

    from .app import create_app

    kbase = open_kb(kb, seed_demo=True)
    console.print(f"serving {kbase.directory} on http://{host}:{port}  (API docs: /docs, widget demo: /demo)")
    uvicorn.run(create_app(kb=kbase), host=host, port=port, log_level="info")


@app.command("settings")
def settings_table(markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table (the README's).")) -> None:
    """Every setting: environment variable, default, what it does."""
    from knowledge_base.settings import Settings

    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default if field.default is not None else ""
        if isinstance(default, Path) and str(default).startswith(str(Path.home())):
            default = "~" + str(default)[len(str(Path.home())):]
        rows.append((f"POLICYQA_{name.upper()}", str(default), field.description or ""))
    if markdown:
        print("| variable | default | what it does |\n|---|---|---|")
        for var, default, desc in rows:
            shown = f"`{default}`" if default else ""
            escaped = desc.replace("|", "\\|")
            print(f"| `{var}` | {shown} | {escaped} |")
        return
    table = Table("variable", "default", "what it does")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def main() -> None:  # pragma: no cover - console-script entry
    app()


def _register_stage_commands() -> None:
    """Commands owned by later stages live beside their code (ask/search, keys/faq, eval/bench)."""
    from eval import cli as eval_cli

    from . import cli_answer, cli_curation, cli_report

    for module in (cli_answer, cli_curation, cli_report, eval_cli):
        module.register(app)


_register_stage_commands()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
