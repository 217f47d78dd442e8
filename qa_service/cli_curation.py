"""Curation commands: API keys and the FAQ lifecycle from the command line.

    policyqa keys create --role reviewer --name 李审核 --kb kb     # prints the new key once, on stdout
    policyqa keys list --kb kb · policyqa keys revoke 3 --kb kb
    policyqa faq import sample_faq.csv --as 王编辑 --kb kb       # row errors listed; exit 1 if any
    policyqa faq export faq.xlsx --kb kb
    policyqa faq publish FAQ-004 --as 李审核 --confidentiality-checked --kb kb
    policyqa faq list --status draft --kb kb

Whoever runs the CLI has the database in hand, so it acts as a local administrator; `--as NAME` is the
person recorded in the audit log, and the FAQ rules (reviewer ≠ author, 保密审查 before publishing) apply
to that name exactly as they do over HTTP.
"""
from __future__ import annotations

import getpass
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

STATUS_HELP = "draft | in_review | published | retired"


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (containers)
        return "cli"


def register(app: typer.Typer) -> None:
    from .cli import KbOption, console, err, fail, open_kb

    keys_app = typer.Typer(help="Staff API keys (stored hashed; a new key is shown once).", no_args_is_help=True)
    faq_app = typer.Typer(help="FAQ entries: import, export, publish, list.", no_args_is_help=True)
    app.add_typer(keys_app, name="keys")
    app.add_typer(faq_app, name="faq")

    # ------------------------------------------------------------------------------------------ keys
    @keys_app.command("create")
    def keys_create(
        role: str = typer.Option(..., "--role", help="operator | editor | reviewer | admin (each includes the ones before it)"),
        name: str = typer.Option(..., "--name", help="Who the key is for; recorded as the actor of their changes."),
        kb: Optional[Path] = KbOption,
    ) -> None:
        """Create a key and print it once (only its SHA-256 is stored)."""
        from .auth import ApiError, KeyService, parse_role

        try:
            new = KeyService(open_kb(kb)).create(name, parse_role(role))
        except ApiError as e:
            fail(e.message)
        err.print(
            f"key #{new.info.key_id} for {new.info.name} ({new.info.role.value}); it is shown only now, store it safely:",
            highlight=False,
        )
        typer.echo(new.token)

    @keys_app.command("list")
    def keys_list(kb: Optional[Path] = KbOption) -> None:
        """Keys by id, name and role (never the keys themselves)."""
        from .auth import KeyService

        table = Table(title="API keys")
        for col in ("id", "name", "role", "created (UTC)", "revoked"):
            table.add_column(col)
        for k in KeyService(open_kb(kb)).list():
            table.add_row(str(k.key_id), k.name, k.role.value, k.created_at.isoformat(timespec="seconds"), "yes" if k.revoked else "")
        console.print(table)

    @keys_app.command("revoke")
    def keys_revoke(key_id: int = typer.Argument(..., help="The key's id (see `keys list`)."), kb: Optional[Path] = KbOption) -> None:
        """Revoke a key; requests with it get 401 from then on."""
        from .auth import ApiError, KeyService

        try:
            info = KeyService(open_kb(kb)).revoke(key_id)
        except ApiError as e:
            fail(e.message)
        console.print(f"revoked key #{info.key_id} ({info.name}, {info.role.value})")

    # ------------------------------------------------------------------------------------------ faq
    @faq_app.command("import")
    def faq_import(
        file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .csv or .xlsx sheet in the sample_faq.csv layout."),
        actor: str = typer.Option(_default_actor(), "--as", help="Who is importing (recorded as author of new entries)."),
        kb: Optional[Path] = KbOption,
    ) -> None:
        """Import an FAQ sheet: new 编号 become drafts, known ones are updated; bad rows are listed and skipped."""
        from ingest.faq_sheet import read_faq_sheet
        from knowledge_base.faqs import FaqError, FaqService

        sheet = read_faq_sheet(file.read_bytes(), file.name)
        try:
            result = FaqService(open_kb(kb)).import_entries(sheet.entries, actor=actor)
        except FaqError as e:
            fail(str(e))
        console.print(
            f"imported {result.imported} new draft(s), updated {result.updated} ({result.unchanged} unchanged)", highlight=False
        )
        problems = [(e.row, e.error) for e in sheet.errors] + [(0, f"编号 {i}: {r}") for i, r in result.errors]
        for row, error in problems:
            err.print(f"[red]row {row}:[/] {error}" if row else f"[red]error:[/] {error}", highlight=False)
        if problems:
            raise typer.Exit(1)

    @faq_app.command("export")
    def faq_export(
        file: Path = typer.Argument(..., dir_okay=False, help="Where to write the .xlsx."),
        status: Optional[str] = typer.Option(None, "--status", help=STATUS_HELP),
        kb: Optional[Path] = KbOption,
    ) -> None:
        """Export FAQ entries to .xlsx in the import layout (it imports back unchanged)."""
        from ingest.faq_sheet import write_faq_xlsx
        from knowledge_base.faqs import FaqService

        entries = FaqService(open_kb(kb)).list(_status(status, fail))
        file.write_bytes(write_faq_xlsx(entries))
        console.print(f"wrote {len(entries)} entries to {file}")

    @faq_app.command("publish")
    def faq_publish(
        faq_id: str = typer.Argument(..., help="编号, e.g. FAQ-004"),
        actor: str = typer.Option(..., "--as", help="The reviewer publishing it (must not be its author)."),
        confidentiality_checked: bool = typer.Option(
            False, "--confidentiality-checked", help="Record the review and 保密审查 as --as first (if not yet reviewed)."
        ),
        kb: Optional[Path] = KbOption,
    ) -> None:
        """Publish a reviewed entry (or review it with the 保密审查 and publish, with --confidentiality-checked)."""
        from knowledge_base.faqs import FaqError, FaqService
        from knowledge_base.models import FaqStatus

        kbase = open_kb(kb)
        svc = FaqService(kbase)
        entry = svc.get(faq_id)
        if entry is None:
            fail(f"no FAQ entry {faq_id}")
        try:
            if entry.status != FaqStatus.IN_REVIEW or not entry.confidentiality_checked_at:
                if not confidentiality_checked:
                    fail(f"{faq_id} is {entry.status.value} without a recorded 保密审查; confirm it with --confidentiality-checked")
                svc.review(faq_id, actor=actor, confidentiality_checked=True)
            published = svc.publish(faq_id, actor=actor, embed=_embedder(kbase))
        except FaqError as e:
            fail(str(e))
        console.print(f"published {published.faq_id} as {actor}; servers pick it up within seconds", highlight=False)

    @faq_app.command("retire")
    def faq_retire(
        faq_id: str = typer.Argument(..., help="编号"),
        actor: str = typer.Option(..., "--as", help="Who is retiring it."),
        kb: Optional[Path] = KbOption,
    ) -> None:
        """Take an entry off every channel."""
        from knowledge_base.faqs import FaqError, FaqService

        try:
            FaqService(open_kb(kb)).retire(faq_id, actor=actor)
        except FaqError as e:
            fail(str(e))
        console.print(f"retired {faq_id}")

    @faq_app.command("list")
    def faq_list(status: Optional[str] = typer.Option(None, "--status", help=STATUS_HELP), kb: Optional[Path] = KbOption) -> None:
        """FAQ entries with status, author and reviewer."""
        from knowledge_base.faqs import FaqService

        table = Table(title="FAQ entries")
        for col in ("编号", "问题", "status", "author", "reviewer"):
            table.add_column(col)
        entries = FaqService(open_kb(kb)).list(_status(status, fail))
        for e in entries:
            table.add_row(e.faq_id, e.question, e.status.value, e.author or "", e.reviewer or "")
        console.print(table)


def _status(value: Optional[str], fail):
    from knowledge_base.models import FaqStatus

    if not value:
        return None
    try:
        return FaqStatus(value)
    except ValueError:
        fail(f"unknown status {value!r}: one of {STATUS_HELP}")


def _embedder(kb):
    """The knowledge base's encoder, so the entry's match vectors are stored now (None for an empty KB)."""
    encoder = kb.encoder()
    if encoder is None or not encoder.spec:
        return None
    from knowledge_base.encoder import get_embedder

    return get_embedder(encoder.spec, encoder.backend).embed_queries
