"""Schema migrations (issue 11): the Alembic revisions build exactly the models' schema on SQLite and PostgreSQL, a
knowledge base built before migrations upgrades in place, and a store newer than the code is refused clearly.

If `test_migrations_build_exactly_the_models_schema` fails after a change to knowledge_base/db.py, the change needs a
revision: `python -m knowledge_base.migrations new "what changes"`, then set HEAD (knowledge_base/migrations/__init__.py).
"""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from knowledge_base.db import Base, create_store_engine
from knowledge_base.migrations import HEAD, SchemaError, current_revision, run_migrations, upgrade
from knowledge_base.store import KnowledgeBase

REPO = Path(__file__).resolve().parents[1]
# Tables the schema gained over time before migrations existed (issues 10, 12, 13): an older knowledge base lacks them.
LATER_TABLES = ("conversation_turns", "judge", "work_orders", "work_order_mapping")


def schema_differences(engine) -> list:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'policyqa.sqlite3'}"
    return request.getfixturevalue("pg_url")


def test_migrations_build_exactly_the_models_schema(empty_store_url):
    engine = create_store_engine(empty_store_url)
    run_migrations(engine)  # the revision scripts, one after another
    assert schema_differences(engine) == []
    with engine.connect() as conn:
        assert current_revision(conn) == HEAD
    run_migrations(engine, "base", down=True)  # and every revision can be undone
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_a_new_store_is_created_at_head_with_the_models_schema(empty_store_url):
    engine = create_store_engine(empty_store_url)
    assert upgrade(engine, Base.metadata) is None  # it had no revision
    assert schema_differences(engine) == []
    assert upgrade(engine, Base.metadata) == HEAD  # at HEAD: nothing to do
    engine.dispose()


def test_head_is_the_one_head_of_the_revision_scripts():
    from alembic.script import ScriptDirectory

    from knowledge_base.migrations import alembic_config

    assert ScriptDirectory.from_config(alembic_config(None)).get_heads() == [HEAD]


def _pre_migration_copy(kb_dir: Path, dest: Path) -> Path:
    """A copy of a knowledge base as code before migrations left it: the baseline schema without a version table,
    and (like one built before issues 10-13) without the tables added since."""
    shutil.copytree(kb_dir, dest)
    engine = create_store_engine(f"sqlite:///{dest / 'policyqa.sqlite3'}")
    run_migrations(engine, "0001_baseline", down=True)
    engine.dispose()
    with sqlite3.connect(dest / "policyqa.sqlite3") as conn:
        for name in ("alembic_version", *LATER_TABLES):
            conn.execute(f"DROP TABLE IF EXISTS {name}")
    conn.close()
    return dest


def test_a_knowledge_base_built_before_migrations_upgrades_in_place(curation_kb, tmp_path):
    old = _pre_migration_copy(curation_kb, tmp_path / "old-kb")
    before = KnowledgeBase(curation_kb).counts()

    kb = KnowledgeBase(old)

    with kb.engine.connect() as conn:
        assert current_revision(conn) == HEAD
    assert schema_differences(kb.engine) == []
    assert kb.counts() == before  # documents, chunks and FAQ entries kept
    snapshot = kb.load_snapshot()
    assert len(snapshot.indexes) == before["chunks"] and snapshot.generation == kb.state().generation
    from knowledge_base.sessions import SessionRepository

    sessions = SessionRepository(kb)  # conversation_turns: a table it lacked
    sessions.append("s1", question="失业保险金能领多久", understood="失业保险金能领多久", answer="最长24个月")
    assert [t.answer for t in sessions.recent("s1", max_turns=3, max_age_seconds=1800)] == ["最长24个月"]


def test_policyqa_kb_migrate_reports_what_it_did(curation_kb, tmp_path):
    old = _pre_migration_copy(curation_kb, tmp_path / "old-kb")
    command = [sys.executable, "-m", "qa_service.cli", "kb", "migrate", "--kb", str(old)]
    first = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=_env())
    assert first.returncode == 0, first.stderr
    assert f"migrated from before migrations (or new) to {HEAD}" in first.stdout
    again = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=_env())
    assert again.returncode == 0 and f"already at {HEAD}" in again.stdout
    missing = subprocess.run([*command[:-1], str(tmp_path / "nowhere")], capture_output=True, text=True, cwd=REPO, env=_env())
    assert missing.returncode == 1 and "error:" in missing.stderr and "no knowledge base" in missing.stderr


def test_a_store_migrated_by_a_newer_policyqa_is_refused_with_the_reason(curation_kb, tmp_path):
    kb_dir = shutil.copytree(curation_kb, tmp_path / "kb")
    with sqlite3.connect(kb_dir / "policyqa.sqlite3") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099_from_the_future'")
    conn.close()
    with pytest.raises(SchemaError, match="0099_from_the_future.*newer policyqa"):
        KnowledgeBase(kb_dir)
    stats = subprocess.run([sys.executable, "-m", "qa_service.cli", "kb", "stats", "--kb", str(kb_dir)],
                           capture_output=True, text=True, cwd=REPO, env=_env())
    assert stats.returncode == 1 and "error:" in stats.stderr and "newer policyqa" in stats.stderr
    assert "Traceback" not in stats.stderr


def test_opening_a_store_at_head_does_not_load_alembic(curation_kb):
    """The embedded default must not get slower to open: at HEAD the check is one query, without Alembic's import."""
    probe = ("import sys; from pathlib import Path; from knowledge_base.store import KnowledgeBase; "
             f"KnowledgeBase(Path({str(curation_kb)!r})).load_snapshot(); print('alembic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, env=_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def _env() -> dict:
    import os

    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
