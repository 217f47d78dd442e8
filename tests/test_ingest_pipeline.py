"""The ingest pipeline end to end on a few short real files, with the real encoder and a real SQLite store:
incremental re-ingest, versions and validity, atomic failure, removal, model identity, and the CLI's exit codes."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ingest.pipeline import IngestPipeline
from knowledge_base.models import Validity
from knowledge_base.store import EncoderIdentity, KnowledgeBase, KnowledgeBaseError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "corpus"
ANNUAL_LEAVE = SHARED / "national/行政法规/职工带薪年休假条例(2007-12-14).md"
HOLIDAYS_2013 = SHARED / "national/行政法规/全国年节及纪念日放假办法(2013-12-11).md"
HOLIDAYS_2024 = SHARED / "national/行政法规/全国年节及纪念日放假办法(2024-11-10).md"

pytestmark = pytest.mark.model


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    d = tmp_path / "corpus"
    d.mkdir()
    for f in (ANNUAL_LEAVE, HOLIDAYS_2013):
        shutil.copy(f, d / f.name)
    return d


def ingest(kb: KnowledgeBase, *paths: Path, **kw):
    return IngestPipeline(kb, **kw).run(list(paths))


def test_reingesting_an_unchanged_corpus_embeds_nothing(tmp_path, corpus):
    kb = KnowledgeBase(tmp_path / "kb")
    first = ingest(kb, corpus)
    assert first.counts()["added"] == 2 and first.chunks_embedded > 0
    generation = kb.state().generation

    second = ingest(kb, corpus)
    assert second.counts() == {"added": 0, "new_version": 0, "unchanged": 2, "failed": 0, "faq": 0}
    assert second.chunks_embedded == 0
    assert kb.state().generation == generation  # nothing to switch


def test_newest_version_is_in_force_and_older_is_superseded(tmp_path, corpus):
    kb = KnowledgeBase(tmp_path / "kb")
    ingest(kb, corpus)
    shutil.copy(HOLIDAYS_2024, corpus / HOLIDAYS_2024.name)
    report = ingest(kb, corpus)
    assert report.counts()["new_version"] == 1

    versions = kb.versions_of(kb.find_documents("全国年节及纪念日放假办法")[0].work_id)
    assert [v.meta.version_date.year for v in versions] == [2024, 2013]
    assert versions[0].validity == Validity.IN_FORCE
    assert versions[1].validity == Validity.SUPERSEDED
    assert versions[1].superseded_by == versions[0].doc_id


def test_a_changed_file_becomes_a_new_version_of_the_same_work(tmp_path, corpus):
    kb = KnowledgeBase(tmp_path / "kb")
    ingest(kb, corpus)
    target = corpus / ANNUAL_LEAVE.name
    target.write_text(target.read_text("utf-8") + "\n第十一条 本条例自2008年1月1日起施行。（修订测试）\n", "utf-8")
    report = ingest(kb, corpus)
    assert report.counts()["new_version"] == 1 and report.counts()["unchanged"] == 1
    docs = kb.find_documents("职工带薪年休假条例")
    assert len(docs) == 2
    assert sorted(d.validity.value for d in docs) == ["in_force", "superseded"]


def test_a_corrupt_file_is_reported_and_the_rest_of_the_batch_is_ingested(tmp_path, corpus):
    (corpus / "坏文件.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    kb = KnowledgeBase(tmp_path / "kb")
    report = ingest(kb, corpus)
    assert [o.path.name for o in report.failed] == ["坏文件.pdf"]
    assert "坏文件.pdf" in report.failed[0].error
    assert report.counts()["added"] == 2
    assert kb.load_snapshot().indexes.dense.ntotal == kb.counts()["chunks"]


def test_a_crash_mid_ingest_leaves_the_previous_knowledge_base_serving(tmp_path, corpus):
    from knowledge_base.encoder import get_embedder

    kb = KnowledgeBase(tmp_path / "kb")
    ingest(kb, corpus)
    before_state, before_counts = kb.state().generation, kb.counts()
    before = kb.load_snapshot()

    class ExplodingEmbedder:
        """The real encoder, which dies half-way through the batch (a crash, an OOM kill…)."""

        def __init__(self):
            self.real = get_embedder()
            self.model_id, self.dim = self.real.model_id, self.real.dim

        def embed_passages(self, texts, batch_size=32, progress=None):
            self.real.embed_passages(texts[: len(texts) // 2])
            raise RuntimeError("encoder crashed")

    shutil.copy(HOLIDAYS_2024, corpus / HOLIDAYS_2024.name)
    with pytest.raises(RuntimeError, match="encoder crashed"):
        ingest(kb, corpus, embedder_factory=ExplodingEmbedder)

    assert kb.state().generation == before_state and kb.counts() == before_counts
    after = kb.load_snapshot()
    assert after.generation == before.generation
    query = get_embedder().embed_query("带薪年休假 工作满1年")
    scores, positions = after.indexes.dense_search(query, k=3)
    assert len(positions) == 3 and scores[0] > 0.5
    assert not list((kb.directory / "indexes").glob("*.tmp*"))


def test_a_failure_while_building_indexes_rolls_the_database_back(tmp_path, corpus, monkeypatch):
    import knowledge_base.store as store

    kb = KnowledgeBase(tmp_path / "kb")
    ingest(kb, corpus)
    before = (kb.state().generation, kb.counts())

    def disk_full(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "build_index_set", disk_full)
    shutil.copy(HOLIDAYS_2024, corpus / HOLIDAYS_2024.name)
    with pytest.raises(OSError):
        ingest(kb, corpus)
    assert (kb.state().generation, kb.counts()) == before
    assert kb.load_snapshot().generation == before[0]


def test_remove_deletes_a_document_and_revalidates_its_work(tmp_path, corpus):
    shutil.copy(HOLIDAYS_2024, corpus / HOLIDAYS_2024.name)
    kb = KnowledgeBase(tmp_path / "kb")
    ingest(kb, corpus)
    newest = [d for d in kb.find_documents("全国年节及纪念日放假办法") if d.meta.version_date.year == 2024][0]
    kb.commit_ingest([], encoder=None, remove_doc_ids=[newest.doc_id])
    remaining = kb.find_documents("全国年节及纪念日放假办法")
    assert [d.meta.version_date.year for d in remaining] == [2013]
    assert remaining[0].validity == Validity.IN_FORCE  # the only version left is the one in force
    snapshot = kb.load_snapshot()
    assert newest.doc_id not in snapshot.chunks.doc_ids
    assert snapshot.indexes.dense.ntotal == kb.counts()["chunks"]


def test_a_knowledge_base_refuses_vectors_from_another_model(tmp_path, corpus):
    kb = KnowledgeBase(tmp_path / "kb")
    ingest(kb, corpus)
    stored = kb.encoder()
    assert stored.model_id and stored.dim == 384
    report = IngestPipeline(kb).run([HOLIDAYS_2024])  # uses the KB's own model: fine
    assert report.counts()["added"] + report.counts()["new_version"] == 1

    other = EncoderIdentity("some-other-model", "other", "torch", stored.dim)
    with pytest.raises(KnowledgeBaseError, match="refusing to mix"):
        kb.commit_ingest(_fake_versions(kb), encoder=other)


def _fake_versions(kb: KnowledgeBase):
    from ingest.chunking import Chunker
    from ingest.parse import parse_document
    from knowledge_base.store import NewVersion

    parsed = parse_document(ANNUAL_LEAVE)
    parsed.meta.title += "（副本）"
    chunks = Chunker().run(parsed, "copy")
    return [NewVersion(parsed, "hash-copy", chunks, [["x"]] * len(chunks), np.zeros((len(chunks), 384), np.float32))]


def test_cli_ingest_prints_a_summary_and_exits_non_zero_on_failure(tmp_path, corpus):
    from qa_service.cli import app

    (corpus / "乱码.txt").write_bytes(bytes(range(256)) * 4)
    result = CliRunner().invoke(app, ["ingest", str(corpus), "--kb", str(tmp_path / "kb")])
    assert result.exit_code == 1
    assert "乱码.txt" in result.output
    assert "ingest summary" in result.output

    stats = CliRunner().invoke(app, ["kb", "stats", "--kb", str(tmp_path / "kb")])
    assert stats.exit_code == 0 and "chunks" in stats.output
