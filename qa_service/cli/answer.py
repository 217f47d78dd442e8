"""Answering commands: `policyqa ask` and `policyqa search`.

    policyqa ask "失业保险金能领多久？" --channel hotline --kb kb
    policyqa search "失业保险金 期限" --kb kb -k 5
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from knowledge_base.models import Citation, ChannelName, HotlineScript
from knowledge_base.settings import get_settings
from knowledge_base.store import KnowledgeBaseError

from ..engine import QAEngine, QuestionError
from .common import KbOption, console, err, fail, open_kb

QUOTE_CHARS_ASK = 100
QUOTE_CHARS_SEARCH = 160


def _engine(kb: Optional[Path]):
    return QAEngine(open_kb(kb, seed_demo=True), get_settings())


def ask(
    question: str = typer.Argument(..., help="The question, as a citizen would ask it."),
    channel: ChannelName = typer.Option(ChannelName.WEB, "--channel", "-c", help="Where the answer is shown."),
    top_k: int = typer.Option(5, "--top-k", "-k", help="Citations wanted (1–20)."),
    publisher: Optional[str] = typer.Option(None, help="Only documents of this 发布机构."),
    region: Optional[str] = typer.Option(None, help="Only documents of this place (济南, 淄博, 台州 …)."),
    include_superseded: bool = typer.Option(False, "--include-superseded", help="Also cite superseded versions."),
    as_json: bool = typer.Option(False, "--json", help="Print the HTTP API's JSON instead of text."),
    kb: Optional[Path] = KbOption,
) -> None:
    """Answer a question from the knowledge base, with citations (or a clear refusal)."""
    from ..api.public import answer_json  # lazy: the API routes cost 0.1 s at every command's start-up; only --json needs them

    try:
        answer = _engine(kb).ask(
            question, channel=channel.value, top_k=top_k,
            filters={"publisher": publisher, "region": region, "include_superseded": include_superseded},
        )
    except (QuestionError, KnowledgeBaseError) as e:
        fail(str(e))
    if as_json:
        console.print_json(json.dumps(answer_json(answer), ensure_ascii=False))
        return
    status = "[green]answered[/]" if answer.answered else "[yellow]refused[/]"
    console.print(f"{status}  confidence {answer.confidence:.2f}" + (f"  FAQ {answer.faq_id}" if answer.faq_id else ""))
    console.print(answer.answer, highlight=False)
    if answer.script:
        print_script(console, answer.script)
    if answer.citations:
        print_citations(console, answer.citations, QUOTE_CHARS_ASK)
    if answer.related_questions:
        console.print("相关问题: " + " | ".join(answer.related_questions), highlight=False)


def search(
    query: str = typer.Argument(..., help="What to look for."),
    k: int = typer.Option(10, "-k", help="Passages wanted."),
    include_superseded: bool = typer.Option(False, "--include-superseded", help="Also search superseded versions."),
    kb: Optional[Path] = KbOption,
) -> None:
    """Print the top passages with title, section and validity."""
    try:
        results = _engine(kb).search(query, k=k, filters={"include_superseded": include_superseded})
    except (QuestionError, KnowledgeBaseError) as e:
        fail(str(e))
    if not results:
        err.print("no passage found")
        raise typer.Exit(1)
    print_citations(console, results, QUOTE_CHARS_SEARCH)


def print_script(out: Console, script: HotlineScript) -> None:
    """The operator's script, one labelled step a line (lists as bullets)."""
    for key, value in script.to_json().items():
        if isinstance(value, list):
            if value:
                out.print(f"[bold]{key}[/]:", highlight=False)
                for item in value:
                    out.print(f"  · {item}", highlight=False)
        else:
            out.print(f"[bold]{key}[/]: {value}", highlight=False)


def print_citations(out: Console, citations: list[Citation], quote_chars: int) -> None:
    table = Table(show_lines=True)
    for col in ("#", "title", "section", "validity", "quote"):
        table.add_column(col, overflow="fold")
    for c in citations:
        title = c.title if c.kind == "document" else f"[FAQ] {c.title}"
        quote = c.quote.replace("\n", " ")
        table.add_row(str(c.rank), title, c.section, c.validity.value,
                      quote[:quote_chars] + ("…" if len(quote) > quote_chars else ""))
    out.print(table)
