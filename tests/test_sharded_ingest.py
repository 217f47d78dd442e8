"""Ingest on several machines against one store (issue 22): `policyqa ingest DIR --shard K/N` stages its share of
the files without moving the served generation; `policyqa kb publish` stores it all and switches once every shard is
in. Shards are real CLI subprocesses, each with its own --kb directory as a machine would have, on a real PostgreSQL
(tests/pg_support.py) and on SQLite.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from knowledge_base.db import ChunkRow, DocumentRow, ShardRunRow, StagedVersionRow
from knowledge_base.shards import ShardSpec
from knowledge_base.store import KnowledgeBase
from pg_support import wait_for
from qa_service.cli import app

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
# Two versions of one work (publish must supersede the older), a regulation (these three are shard 1 of 2), and two
# municipal plans (shard 2 of 2), at their paths in the corpus.
FILES = (
    "national/行政法规/失业保险条例(1999-01-22).md",
    "national/行政法规/全国年节及纪念日放假办法(2013-12-11).md",
    "national/行政法规/全国年节及纪念日放假办法(2024-11-10).md",
    "plans/001_e698f4235984d263.txt",
    "plans/002_9a0f6c99e3141301.txt",
)
ALREADY_SERVED = REPO / "qa_service" / "demo" / "corpus" / "regulations" / "住房公积金管理条例(2019-03-24).md"


def corpus_copy(root: Path) -> Path:
    for rel in FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CORPUS / rel, root / rel)
    return root


def cli_env(database_url: str | None) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    env.pop("POLICYQA_DATABASE_URL", None)
    if database_url:
        env["POLICYQA_DATABASE_URL"] = database_url
    return env


def start_cli(*args: str, database_url: str | None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "qa_service.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, env=cli_env(database_url))


def cli(*args: str, database_url: str | None) -> subprocess.CompletedProcess:
    proc = start_cli(*args, database_url=database_url)
    out, errors = proc.communicate(timeout=900)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, errors)


def stored_chunks(kb: KnowledgeBase) -> list[tuple]:
    with kb.session() as s:
        return [tuple(r) for r in s.execute(select(ChunkRow.id, ChunkRow.chunk_id, ChunkRow.doc_id, ChunkRow.ordinal,
                                                   ChunkRow.section_path, ChunkRow.text, ChunkRow.embed_text,
                                                   ChunkRow.tokens).order_by(ChunkRow.id))]


def stored_vectors(kb: KnowledgeBase) -> np.ndarray:
    with kb.session() as s:
        return np.vstack([np.frombuffer(e, np.float32) for e in s.scalars(select(ChunkRow.embedding).order_by(ChunkRow.id))])


def stored_documents(kb: KnowledgeBase) -> list[tuple]:
    with kb.session() as s:
        return [tuple(r) for r in s.execute(select(DocumentRow.doc_id, DocumentRow.work_id, DocumentRow.title,
                                                   DocumentRow.validity, DocumentRow.superseded_by,
                                                   DocumentRow.content_hash).order_by(DocumentRow.doc_id))]


def staged_paths(kb: KnowledgeBase, shard: int) -> set[str]:
    with kb.session() as s:
        return set(s.scalars(select(StagedVersionRow.rel_path).where(StagedVersionRow.shard == shard)))


def shard_status(kb: KnowledgeBase, shard: int) -> str | None:
    with kb.session() as s:
        row = s.get(ShardRunRow, ("corpus", shard))
        return row.status if row else None


def shards_of(n: int) -> dict[int, set[str]]:
    return {k: {rel for rel in FILES if ShardSpec(k, n).owns(rel)} for k in range(1, n + 1)}


def test_every_file_belongs_to_exactly_one_shard_and_a_bad_shard_is_a_cli_error(tmp_path):
    for n in (1, 2, 3, 4):
        owned = shards_of(n)
        assert sorted(rel for files in owned.values() for rel in files) == sorted(FILES)
    assert all(shards_of(2).values()), "both shards of two have files here (the other tests rely on it)"
    corpus = corpus_copy(tmp_path / "corpus")
    for args, message in ((["--shard", "5/4"], "1 ≤ K ≤ N"), (["--shard", "two"], "expected K/N"),
                          (["--run", "corpus"], "give --shard K/N too")):
        result = CliRunner().invoke(app, ["ingest", str(corpus), "--kb", str(tmp_path / "kb"), *args])
        assert result.exit_code != 0 and message in result.output, result.output
    two = CliRunner().invoke(app, ["ingest", str(corpus / FILES[0]), "--kb", str(tmp_path / "kb"), "--shard", "1/2"])
    assert two.exit_code != 0 and "--shard takes one directory" in two.output, two.output


@pytest.mark.model
@pytest.mark.postgres
def test_two_shards_on_postgresql_then_publish_store_what_one_process_ingests(postgres, tmp_path):
    corpus = corpus_copy(tmp_path / "corpus")
    sharded, single = postgres.create_database(), postgres.create_database()
    shards = [start_cli("ingest", str(corpus), "--shard", f"{k}/2", "--kb", str(tmp_path / f"machine-{k}"),
                        database_url=sharded) for k in (1, 2)]
    for proc in shards:
        out, errors = proc.communicate(timeout=900)
        assert proc.returncode == 0, out + errors
    kb = KnowledgeBase(tmp_path / "reader", sharded)
    assert kb.state().generation == 0 and kb.counts()["chunks"] == 0  # nothing served before publish
    assert staged_paths(kb, 1) | staged_paths(kb, 2) == set(FILES)

    published = cli("kb", "publish", "--kb", str(tmp_path / "publisher"), database_url=sharded)
    assert published.returncode == 0, published.stdout + published.stderr
    assert "published 5 document version(s): generation 1" in published.stdout
    one = cli("ingest", str(corpus), "--kb", str(tmp_path / "one-machine"), database_url=single)
    assert one.returncode == 0, one.stdout + one.stderr

    ours, theirs = KnowledgeBase(tmp_path / "reader", sharded), KnowledgeBase(tmp_path / "one-reader", single)
    assert stored_chunks(ours) == stored_chunks(theirs)  # same row ids, chunk ids, texts and tokens, same order
    assert stored_documents(ours) == stored_documents(theirs)  # 2013 superseded by 2024 in both
    ours_v, theirs_v = stored_vectors(ours), stored_vectors(theirs)
    cosine = np.sum(ours_v * theirs_v, axis=1) / np.linalg.norm(ours_v, axis=1) / np.linalg.norm(theirs_v, axis=1)
    assert ours_v.shape == theirs_v.shape and cosine.min() > 1 - 1e-5, cosine.min()
    snapshot = ours.load_snapshot()
    assert snapshot.generation == 1 and len(snapshot.indexes) == len(ours_v)
    with ours.session() as s:
        assert s.scalar(select(func.count()).select_from(StagedVersionRow)) == 0
        assert set(s.scalars(select(ShardRunRow.status))) == {"published"}


def bad_file_of_shard_two(corpus: Path) -> Path:
    """A PDF that is not one, at a path shard 2 of 2 owns."""
    name = next(f"plans/损坏的文件{i}.pdf" for i in range(100) if ShardSpec(2, 2).owns(f"plans/损坏的文件{i}.pdf"))
    (corpus / name).write_bytes(b"this is not a PDF")
    return corpus / name


@pytest.mark.model
@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_publish_refuses_until_every_shard_is_in_and_a_failed_or_killed_shard_loses_nothing(store, request, tmp_path):
    from ingest.pipeline import IngestPipeline

    url = request.getfixturevalue("pg_url") if store == "postgresql" else None
    machine = {k: str(tmp_path / ("kb" if url is None else f"machine-{k}")) for k in (0, 1, 2)}  # SQLite: one directory
    served = KnowledgeBase(Path(machine[0]), url)
    assert not IngestPipeline(served).run([ALREADY_SERVED]).failed
    corpus = corpus_copy(tmp_path / "corpus")
    bad = bad_file_of_shard_two(corpus)
    mine = shards_of(2)

    def publish() -> subprocess.CompletedProcess:
        return cli("kb", "publish", "--kb", machine[0], database_url=url)

    def serving_is_untouched() -> None:
        assert served.state().generation == 1
        assert [d.meta.title for d in served.load_snapshot().documents.values()] == ["住房公积金管理条例"]

    assert cli("ingest", str(corpus), "--shard", "1/2", "--kb", machine[1], database_url=url).returncode == 0
    refused = publish()
    assert refused.returncode != 0 and "error: not every shard is in" in refused.stderr
    assert "run 'corpus': shard 2/2 has not run" in refused.stderr, refused.stderr
    serving_is_untouched()

    killed = start_cli("ingest", str(corpus), "--shard", "2/2", "--kb", machine[2], database_url=url)
    running, _ = wait_for(lambda: shard_status(served, 2) == "running", timeout=120)
    killed.send_signal(signal.SIGKILL)  # while it loads the model or embeds
    assert running and killed.wait(60) == -signal.SIGKILL
    refused = publish()
    assert refused.returncode != 0 and "shard 2/2 has not finished" in refused.stderr, refused.stderr
    serving_is_untouched()
    assert staged_paths(served, 1) == mine[1]

    failed = cli("ingest", str(corpus), "--shard", "2/2", "--kb", machine[2], database_url=url)
    assert failed.returncode == 1 and bad.name in failed.stdout + failed.stderr
    refused = publish()
    assert refused.returncode != 0 and "shard 2/2 failed: 1 file(s) failed" in refused.stderr
    assert bad.name in refused.stderr, refused.stderr
    serving_is_untouched()
    assert staged_paths(served, 1) == mine[1] and staged_paths(served, 2) == mine[2]  # the good files are kept

    bad.unlink()
    rerun = cli("ingest", str(corpus), "--shard", "2/2", "--kb", machine[2], database_url=url)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "shard 2/2 of run 'corpus' in: 0 document version(s) staged" in rerun.stdout  # all staged already
    done = publish()
    assert done.returncode == 0 and "published 5 document version(s): generation 2" in done.stdout, done.stdout
    titles = [d.meta.title for d in KnowledgeBase(Path(machine[0]), url).load_snapshot().documents.values()]
    assert len(titles) == 6 and {"住房公积金管理条例", "失业保险条例", "全国年节及纪念日放假办法"} <= set(titles), titles


@pytest.mark.model
def test_a_shard_that_dies_mid_way_keeps_the_batches_it_staged_and_its_re_run_embeds_only_the_rest(tmp_path):
    from ingest.pipeline import IngestPipeline
    from knowledge_base.encoder import get_embedder
    from knowledge_base.shards import ShardRun

    corpus = corpus_copy(tmp_path / "corpus")
    kb = KnowledgeBase(tmp_path / "kb")
    shard = ShardRun("corpus", ShardSpec(1, 2))
    mine = sorted(shards_of(2)[1])

    class DiesOnSecondBatch:
        """The real encoder, killed while embedding the shard's second staging batch."""

        def __init__(self):
            self.real, self.calls = get_embedder(), 0
            self.model_id, self.dim = self.real.model_id, self.real.dim

        def embed_passages(self, texts, batch_size=32, progress=None):
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("machine went down")
            return self.real.embed_passages(texts, batch_size=batch_size, progress=progress)

    dying = DiesOnSecondBatch()
    with pytest.raises(RuntimeError, match="machine went down"):
        IngestPipeline(kb, embedder_factory=lambda: dying, stage_chunks=1).run([corpus], shard=shard)
    assert staged_paths(kb, 1) == {mine[0]}  # the first file's batch was committed before the crash
    assert shard_status(kb, 1) == "failed" and kb.state().generation == 0

    report = IngestPipeline(kb, stage_chunks=1).run([corpus], shard=shard)
    assert report.counts()["unchanged"] == 1 and report.staged == len(mine) - 1
    assert staged_paths(kb, 1) == set(mine) and shard_status(kb, 1) == "done" and kb.state().generation == 0
