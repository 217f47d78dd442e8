"""`policyqa kb …`: knowledge-base inspection.

    policyqa kb stats --kb kb
    policyqa kb publish        # after `policyqa ingest DIR --shard K/N` on every machine
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from knowledge_base.backup import BackupError, backup, restore
from knowledge_base.db import Base, create_store_engine, printable_url
from knowledge_base.migrations import HEAD, SchemaError, upgrade
from knowledge_base.query_log import QueryLogRepository
from knowledge_base.settings import default_kb_dir, get_settings
from knowledge_base.stats import kb_breakdown
from knowledge_base.shards import ShardError, ShardStore
from knowledge_base.store import KnowledgeBaseError, database_url_for
from knowledge_base.transfer import TransferError, copy_store

from .common import KbOption, console, err, fail, open_kb

app = typer.Typer(help="Knowledge-base inspection.", no_args_is_help=True)


@app.command("stats")
def kb_stats(kb: Optional[Path] = KbOption) -> None:
    """Counts of works, versions, chunks and FAQ entries; validity and region breakdowns."""
    kbase = open_kb(kb)
    b = kb_breakdown(kbase)
    table = Table(title=f"knowledge base {kbase.directory}", show_header=False)
    table.add_row("works", str(b.works))
    table.add_row("works with more than one version", str(b.works_with_versions))
    table.add_row("documents (versions)", str(b.documents))
    table.add_row("chunks", str(b.chunks))
    table.add_row("FAQ entries (published)", f"{b.faqs} ({b.faqs_published})")
    table.add_row("validity", ", ".join(f"{k}: {v}" for k, v in sorted(b.validity.items())))
    table.add_row("disclosure", ", ".join(f"{k}: {v}" for k, v in sorted(b.disclosure.items())))
    table.add_row("regions", ", ".join(f"{k or '—'}: {v}" for k, v in b.regions.most_common()))
    table.add_row("generation", str(b.generation))
    table.add_row("encoder", f"{b.model_id or '—'} ({b.model_backend or '—'}, dim {b.dim or '—'})")
    console.print(table)


@app.command("migrate")
def kb_migrate(kb: Optional[Path] = KbOption) -> None:
    """Bring the store's schema to this version's (Alembic; also done on every open). PostgreSQL: POLICYQA_DATABASE_URL."""
    settings = get_settings()
    url = database_url_for(kb or default_kb_dir(settings), settings.database_url)
    if url.startswith("sqlite") and kb is not None and not (kb / "policyqa.sqlite3").exists():
        fail(f"no knowledge base in {kb} (no policyqa.sqlite3)")
    engine = create_store_engine(url)
    try:
        before = upgrade(engine, Base.metadata)
    except SchemaError as e:
        fail(str(e))
    finally:
        engine.dispose()
    where = printable_url(url)
    if before == HEAD:
        console.print(f"{where}: schema already at {HEAD}", highlight=False, soft_wrap=True)
    else:
        console.print(f"{where}: schema migrated from {before or 'before migrations (or new)'} to {HEAD}", highlight=False, soft_wrap=True)


@app.command("publish")
def kb_publish(
    force: bool = typer.Option(False, "--force", help="Publish what the shards staged even when some are missing or failed."),
    kb: Optional[Path] = KbOption,
) -> None:
    """Store what the shards of `policyqa ingest DIR --shard K/N` staged and switch to a new index generation, once
    every shard of every run is in."""
    try:
        result = ShardStore(open_kb(kb)).publish(force=force)
    except (ShardError, KnowledgeBaseError) as e:
        fail(str(e))
    if not result.runs:
        console.print(f"nothing to publish: no shard has run since the last publish (generation {result.generation})")
        return
    for st in result.runs:
        console.print(f"run {st.run!r}: shards in {', '.join(f'{k}/{st.shards}' for k in st.done) or 'none'}",
                      highlight=False, soft_wrap=True)
        for line in st.missing:  # only under --force
            err.print(f"[yellow]published without:[/] {line}", highlight=False, soft_wrap=True)
    skipped = f" ({result.duplicates} already stored or staged twice, skipped)" if result.duplicates else ""
    console.print(f"published {result.versions} document version(s){skipped}: generation {result.generation}",
                  highlight=False, soft_wrap=True)


@app.command("copy")
def kb_copy(
    to: str = typer.Option(..., "--to", help="SQLAlchemy URL of the empty target, e.g. postgresql+psycopg://policyqa@db/policyqa."),
    kb: Optional[Path] = KbOption,
) -> None:
    """Copy the whole knowledge base (documents, vectors, FAQ, log, keys, judge) into another, empty database."""
    source = open_kb(kb)
    try:
        counts = copy_store(source, to)
    except TransferError as e:
        fail(str(e))
    except Exception as e:  # noqa: BLE001 - an unreachable server, a bad URL: say which, without a traceback
        fail(f"cannot copy into {printable_url(to)}: {e}")
    console.print(f"copied {source.directory} into {printable_url(to)}: {counts['documents']} documents, "
                  f"{counts['chunks']} chunks, {counts['faqs']} FAQ entries, {counts['query_log']} logged questions, "
                  f"{counts['api_keys']} keys", highlight=False, soft_wrap=True)


@app.command("prune-log")
def kb_prune_log(
    days: Optional[int] = typer.Option(None, "--days", min=1, help="Keep this many days (default: POLICYQA_LOG_RETENTION_DAYS)."),
    kb: Optional[Path] = KbOption,
) -> None:
    """Delete logged questions (and their feedback) older than the retention period."""
    keep = days or get_settings().log_retention_days
    if keep <= 0:
        fail("retention is off (POLICYQA_LOG_RETENTION_DAYS=0); give --days N")
    deleted = QueryLogRepository(open_kb(kb)).delete_older_than(keep)
    console.print(f"deleted {deleted} logged question(s) older than {keep} days")


@app.command("backup")
def kb_backup(
    dest: Path = typer.Argument(..., dir_okay=False, help="The backup file to write (must not exist)."),
    kb: Optional[Path] = KbOption,
) -> None:
    """A consistent copy of the whole store (SQLite online backup; safe while serving). PostgreSQL: use pg_dump."""
    try:
        info = backup(open_kb(kb), dest)
    except BackupError as e:
        fail(str(e))
    console.print(f"wrote {info.path} ({info.bytes / 1024 / 1024:.1f} MB): generation {info.generation}, "
                  f"{info.documents} documents, {info.faqs} FAQ entries", highlight=False)


@app.command("restore")
def kb_restore(
    source: Path = typer.Argument(..., dir_okay=False, help="A file written by `policyqa kb backup`."),
    kb: Path = typer.Option(..., "--kb", help="Directory to restore into (empty, unless --force)."),
    force: bool = typer.Option(False, "--force", help="Replace the knowledge base already in --kb."),
) -> None:
    """Restore a backup into a knowledge-base directory and rebuild its indexes from the stored vectors."""
    try:
        restored = restore(source, kb, force=force)
    except BackupError as e:
        fail(str(e))
    counts = restored.counts()
    console.print(f"restored {source} into {restored.directory}: generation {restored.state().generation}, "
                  f"{counts['documents']} documents, {counts['chunks']} chunks, {counts['faqs']} FAQ entries", highlight=False)
