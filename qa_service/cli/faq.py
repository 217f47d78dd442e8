"""`policyqa faq …`: the FAQ lifecycle from the command line.

    policyqa faq import sample_faq.csv --as 王编辑 --kb kb       # row errors listed; exit 1 if any
    policyqa faq export faq.xlsx --kb kb
    policyqa faq publish FAQ-004 --as 李审核 --confidentiality-checked --kb kb
    policyqa faq retire FAQ-004 --as 李审核 --kb kb
    policyqa faq list --status draft --kb kb

Whoever runs the CLI has the database in hand, so it acts as a local administrator; `--as NAME` is the person
recorded in the audit log, and the FAQ rules (reviewer ≠ author, 保密审查 before publishing) apply to that name
exactly as they do over HTTP: both go through qa_service/curation.py.
"""
from __future__ import annotations

import getpass
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from knowledge_base.encoder import get_embedder
from knowledge_base.faqs import FaqError, FaqService
from knowledge_base.models import FaqStatus
from knowledge_base.safety import Blocklist, BlocklistService
from knowledge_base.store import KnowledgeBase

from ..analytics import QuestionAnalytics
from ..auth import ApiError
from ..curation import CurationService
from .common import KbOption, console, err, fail, open_kb

app = typer.Typer(help="FAQ entries: import, export, publish, retire, list.", no_args_is_help=True)
StatusOption = typer.Option(None, "--status", help="Only entries of this status.")


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (containers)
        return "cli"


def _curation(kb: KnowledgeBase):
    return CurationService(FaqService(kb), QuestionAnalytics(kb), embedder=lambda: _embedder(kb),
                           blocklist=lambda: Blocklist(BlocklistService(kb).list()))


def _embedder(kb: KnowledgeBase):
    """The knowledge base's encoder, so the entry's match vectors are stored now (None for an empty KB)."""
    encoder = kb.encoder()
    if encoder is None or not encoder.spec:
        return None
    return get_embedder(kb.encoder_source(encoder.spec), encoder.backend).embed_queries


@app.command("import")
def faq_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .csv or .xlsx sheet in the sample_faq.csv layout."),
    actor: str = typer.Option(_default_actor(), "--as", help="Who is importing (recorded as author of new entries)."),
    kb: Optional[Path] = KbOption,
) -> None:
    """Import an FAQ sheet: new 编号 become drafts, known ones are updated; bad rows are listed and skipped."""
    try:
        result = _curation(open_kb(kb)).import_sheet(file.read_bytes(), file.name, actor=actor)
    except FaqError as e:
        fail(str(e))
    console.print(
        f"imported {result.imported} new draft(s), updated {result.updated} ({result.unchanged} unchanged)", highlight=False
    )
    for problem in result.errors:
        err.print(f"[red]row {problem.row}:[/] {problem.error}" if problem.row else f"[red]error:[/] {problem.error}",
                  highlight=False)
    for warning in result.warnings:  # content safety: imported as they are, for staff to look at
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if result.errors:
        raise typer.Exit(1)


@app.command("export")
def faq_export(
    file: Path = typer.Argument(..., dir_okay=False, help="Where to write the .xlsx."),
    status: Optional[FaqStatus] = StatusOption,
    kb: Optional[Path] = KbOption,
) -> None:
    """Export FAQ entries to .xlsx in the import layout (it imports back unchanged)."""
    kbase = open_kb(kb)
    file.write_bytes(_curation(kbase).export_xlsx(status))
    console.print(f"wrote {len(FaqService(kbase).list(status))} entries to {file}")


@app.command("publish")
def faq_publish(
    faq_id: str = typer.Argument(..., help="编号, e.g. FAQ-004"),
    actor: str = typer.Option(..., "--as", help="The reviewer publishing it (must not be its author)."),
    confidentiality_checked: bool = typer.Option(
        False, "--confidentiality-checked", help="Record the review and 保密审查 as --as first (if not yet reviewed)."
    ),
    kb: Optional[Path] = KbOption,
) -> None:
    """Publish a reviewed entry (or review it with the 保密审查 and publish, with --confidentiality-checked)."""
    kbase = open_kb(kb)
    entry = FaqService(kbase).get(faq_id)
    if entry is None:
        fail(f"no FAQ entry {faq_id}")
    reviewed = entry.status == FaqStatus.IN_REVIEW and entry.confidentiality_checked_at
    if not reviewed and not confidentiality_checked:
        fail(f"{faq_id} is {entry.status.value} without a recorded 保密审查; confirm it with --confidentiality-checked")
    try:
        published = _curation(kbase).publish(faq_id, actor=actor, confidentiality_checked=confidentiality_checked)
    except (FaqError, ApiError) as e:
        fail(str(e))
    console.print(f"published {published.entry.faq_id} as {actor}; servers pick it up within seconds", highlight=False)


@app.command("retire")
def faq_retire(
    faq_id: str = typer.Argument(..., help="编号"),
    actor: str = typer.Option(..., "--as", help="Who is retiring it."),
    kb: Optional[Path] = KbOption,
) -> None:
    """Take an entry off every channel."""
    try:
        _curation(open_kb(kb)).retire(faq_id, actor=actor)
    except (FaqError, ApiError) as e:
        fail(str(e))
    console.print(f"retired {faq_id}")


@app.command("list")
def faq_list(status: Optional[FaqStatus] = StatusOption, kb: Optional[Path] = KbOption) -> None:
    """FAQ entries with status, author and reviewer."""
    table = Table(title="FAQ entries")
    for col in ("编号", "问题", "status", "author", "reviewer"):
        table.add_column(col)
    for e in FaqService(open_kb(kb)).list(status):
        table.add_row(e.faq_id, e.question, e.status.value, e.author or "", e.reviewer or "")
    console.print(table)
