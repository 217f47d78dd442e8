"""Commands of staff insight: the weekly report and the 12345 work-order import.

    policyqa report --from 2026-11-23 --to 2026-11-29 --out reports/ --kb kb    # XLSX + printable HTML
    policyqa workorders import 工单导出.xlsx --kb kb --map content=来电内容
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Optional

import typer

from knowledge_base.db import utcnow
from knowledge_base.settings import get_settings

from ..engine import QAEngine
from ..workorders import DEFAULT_COLUMNS, WorkOrderError, WorkOrderImporter, check_sheet
from .common import KbOption, console, err, fail, open_kb


def _day(value: str, name: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        fail(f"{name} must be a date YYYY-MM-DD, got {value!r}", code=2)


def report(
    since: Optional[str] = typer.Option(None, "--from", help="First day, YYYY-MM-DD (default: 7 days before --to)."),
    until: Optional[str] = typer.Option(None, "--to", help="Last day, inclusive (default: yesterday)."),
    out: Path = typer.Option(Path("."), "--out", help="Directory for the XLSX and HTML files."),
    kb: Optional[Path] = KbOption,
) -> None:
    """Write the weekly report (figures, top and unanswered questions, FAQ and knowledge-base changes)."""
    from ..report import WeeklyReport, write_html, write_xlsx  # lazy: 0.07 s at start-up (jinja2), only report needs it

    today = (utcnow() + timedelta(hours=8)).date()  # report days are China Standard Time
    last = _day(until, "--to") if until else today - timedelta(days=1)
    first = _day(since, "--from") if since else last - timedelta(days=6)
    if first > last:
        fail("--from is after --to", code=2)
    if (last - first).days > 366:
        fail("at most 366 days", code=2)
    kbase = open_kb(kb)
    data = WeeklyReport(kbase).build(first, last)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"policyqa-report-{first.isoformat()}_{last.isoformat()}"
    xlsx = write_xlsx(data, out / f"{stem}.xlsx")
    html = write_html(data, out / f"{stem}.html")
    for label, value in data.figures:
        console.print(f"{label.strip()}: {value}", highlight=False)
    console.print(f"wrote {xlsx} and {html}", highlight=False)


def import_workorders(
    file: Path = typer.Argument(..., help="The hotline system's export (.csv or .xlsx)."),
    kb: Optional[Path] = KbOption,
    mapping: list[str] = typer.Option([], "--map", help="field=header, e.g. content=来电内容 (remembered for next time)."),
) -> None:
    """Import 12345 tickets: masked, grouped with the chat questions; re-importing the same file adds nothing."""
    if not file.is_file():
        fail(f"no such file: {file}", code=2)
    chosen = {}
    for item in mapping:
        name, sep, header = item.partition("=")
        if not sep or name not in DEFAULT_COLUMNS or not header.strip():
            fail(f"--map wants field=header with field one of {', '.join(DEFAULT_COLUMNS)}; got {item!r}", code=2)
        chosen[name] = header.strip()
    data = file.read_bytes()
    try:
        check_sheet(data, file.name)  # a workbook bomb is refused before the model loads
    except WorkOrderError as e:
        fail(str(e))
    kbase = open_kb(kb)
    engine = QAEngine(kbase, get_settings())
    importer = WorkOrderImporter(kbase, embed=engine.embedder.embed_queries,
                                 answers=lambda q: engine.ask(q, channel="hotline", record=False))
    try:
        result = importer.run(data, file.name, mapping=chosen or None, actor="cli")
    except WorkOrderError as e:
        fail(str(e))
    console.print(f"rows {result.rows}: added {result.added}, already imported {result.duplicates}, bad rows {len(result.errors)}")
    for e in result.errors:
        err.print(f"row {e.row}: {e.error}", highlight=False)
    if result.errors and not result.added and not result.duplicates:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """`policyqa report` and `policyqa workorders import`."""
    workorders_app = typer.Typer(help="12345 hotline work orders.", no_args_is_help=True)
    workorders_app.command("import")(import_workorders)
    app.command("report")(report)
    app.add_typer(workorders_app, name="workorders")
