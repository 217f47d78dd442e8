"""Copy a whole store into another database: a pilot's SQLite knowledge base into the city's PostgreSQL.

    counts = copy_store(KnowledgeBase(Path("kb")), "postgresql+psycopg://policyqa@db.internal/policyqa")
    counts["chunks"]   # rows copied per table

The target is migrated to HEAD and must hold nothing yet. Rows go table by table in foreign-key order, in batches,
in one transaction (a failure leaves the target empty); PostgreSQL's id sequences are moved past the copied ids.
Vectors and BM25 tokens come along, so nothing is re-embedded: every replica builds its indexes from them.
"""
from __future__ import annotations

from sqlalchemy import func, insert, select, text

from .db import Base, KbStateRow, open_engine
from .store import KnowledgeBase

BATCH_ROWS = 1000


class TransferError(Exception):
    """The copy cannot be made (the target is not empty, or the source changed meanwhile); nothing was written."""


def copy_store(source: KnowledgeBase, target_url: str) -> dict[str, int]:
    """Copy every table of `source` into the empty store at `target_url`; rows copied per table."""
    target = open_engine(target_url)
    tables = Base.metadata.sorted_tables
    generation = source.state().generation
    counts: dict[str, int] = {}
    try:
        with target.begin() as dst, source.engine.connect() as src:
            occupied = [t.name for t in tables
                        if t.name != KbStateRow.__tablename__ and dst.execute(select(func.count()).select_from(t)).scalar()]
            if occupied:
                raise TransferError(f"the target database already holds data (tables {', '.join(occupied)}): "
                                    "copy into an empty database")
            dst.execute(KbStateRow.__table__.delete())  # a new store's empty state row; the source's replaces it
            for t in tables:
                counts[t.name] = 0
                for batch in src.execution_options(yield_per=BATCH_ROWS).execute(select(t)).partitions():
                    dst.execute(insert(t), [dict(row._mapping) for row in batch])
                    counts[t.name] += len(batch)
            if source.state().generation != generation:
                raise TransferError("the source knowledge base changed while it was copied (an ingest ran): run the copy again")
            if dst.dialect.name == "postgresql":
                for t in tables:
                    key = list(t.primary_key.columns)
                    if len(key) == 1 and key[0].autoincrement in (True, "auto") and key[0].type.python_type is int:
                        # inserted ids do not advance the serial sequence: the next row would collide with a copied one
                        dst.execute(text(f"SELECT setval(pg_get_serial_sequence('{t.name}', '{key[0].name}'), "
                                         f"COALESCE((SELECT MAX({key[0].name}) FROM {t.name}), 0) + 1, false)"))
    finally:
        target.dispose()
    return counts
