"""Back up and restore a knowledge base stored in SQLite (the embedded default).

    info = backup(kb, Path("/backups/policyqa-2026-12-01.sqlite3"))   # consistent while the server keeps serving
    kb = restore(Path("/backups/policyqa-2026-12-01.sqlite3"), Path("/srv/policyqa/kb"))

The backup is SQLite's online backup (sqlite3.Connection.backup): a consistent copy of every table (documents,
chunks with their vectors and tokens, FAQ entries and their audit, query log, feedback, keys) taken page by page
while readers and writers go on. Index files are not copied: they are derived, and `restore` rebuilds the current
generation's from the stored vectors without re-embedding anything.

PostgreSQL is backed up with its own tools (see POSTGRES_GUIDANCE).
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from .store import KnowledgeBase

POSTGRES_GUIDANCE = (
    "this knowledge base is on PostgreSQL: back it up with `pg_dump --format=custom --file=policyqa.dump DBNAME` and "
    "restore with `pg_restore --clean --dbname=DBNAME policyqa.dump`; replicas rebuild their indexes from the database"
)
SQLITE_FILE = "policyqa.sqlite3"


class BackupError(Exception):
    pass


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    bytes: int
    generation: int
    documents: int
    faqs: int


def sqlite_path(kb: KnowledgeBase) -> Path:
    url = make_url(kb.database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        raise BackupError(POSTGRES_GUIDANCE if url.get_backend_name().startswith("postgres") else
                          f"cannot back up {url.get_backend_name()} databases here")
    return Path(url.database)


def _copy(source: Path, dest: Path) -> None:
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(dest) as dst:
        src.backup(dst)
    # A closed sqlite3 context manager commits but does not close; close both explicitly.
    src.close()
    dst.close()


def backup(kb: KnowledgeBase, dest: Path) -> BackupInfo:
    source = sqlite_path(kb)
    dest = Path(dest)
    if dest.exists():
        raise BackupError(f"{dest} exists; choose a new file")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _copy(source, dest)
    counts = kb.counts()
    return BackupInfo(dest, dest.stat().st_size, kb.state().generation, counts["documents"], counts["faqs"])


def restore(source: Path, directory: Path, force: bool = False) -> KnowledgeBase:
    """A knowledge base in `directory` from a backup file; refuses to overwrite a non-empty one unless `force`."""
    source, directory = Path(source), Path(directory)
    if not source.is_file():
        raise BackupError(f"no backup file {source}")
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as check:
            tables = {r[0] for r in check.execute("select name from sqlite_master where type='table'")}
        check.close()
    except sqlite3.DatabaseError as e:
        raise BackupError(f"{source} is not a policyqa backup ({e})") from None
    if not {"documents", "chunks", "kb_state"} <= tables:
        raise BackupError(f"{source} is not a policyqa backup (tables missing)")
    target = directory / SQLITE_FILE
    if target.exists() and not force:
        existing = KnowledgeBase(directory)
        if existing.state().generation > 0:
            raise BackupError(f"{directory} already holds a knowledge base; restore into an empty directory or use --force")
        existing.engine.dispose()
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in (directory / (SQLITE_FILE + "-wal"), directory / (SQLITE_FILE + "-shm")):
        leftover.unlink(missing_ok=True)
    _copy(source, target)
    kb = KnowledgeBase(directory)
    kb.ensure_indexes()
    return kb
