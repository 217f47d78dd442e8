"""The dense index of a generation (issue 22): exact below POLICYQA_APPROX_INDEX_MIN_CHUNKS, HNSW above, the same
top-10 as exact search; the settings force either and reject bad values."""
from __future__ import annotations

import json
import shutil

import faiss
import numpy as np
import pytest

from knowledge_base.indexes import MANIFEST, DenseIndexConfig, IndexSet, build_index_set
from knowledge_base.settings import SettingsError, get_settings, load_settings

N, DIM, K = 600, 64, 10


@pytest.fixture
def unit_vectors() -> np.ndarray:
    rng = np.random.default_rng(22)
    v = rng.standard_normal((N, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def fresh_settings(monkeypatch):
    """Settings read again from the environment the test sets (and again after it)."""
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def build(tmp_path, vectors, **config) -> IndexSet:
    out = tmp_path / "gen-000001"
    build_index_set(out, generation=1, chunk_ids=np.arange(len(vectors)), token_lists=[["政策"]] * len(vectors),
                    vectors=vectors, model_id="test", dim=vectors.shape[1],
                    dense=DenseIndexConfig(**config) if config else None)
    return IndexSet.load(out)


def exact_top(vectors: np.ndarray, query: np.ndarray, k: int, mask: np.ndarray | None = None) -> set[int]:
    scores = vectors @ query
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    return set(np.argsort(-scores)[:k].tolist())


def test_a_generation_over_the_threshold_is_hnsw_with_the_exact_top_10(tmp_path, unit_vectors):
    ix = build(tmp_path, unit_vectors, approx_min_chunks=500)
    manifest = json.loads((ix.directory / MANIFEST).read_text("utf-8"))
    assert manifest["dense_kind"] == "hnsw" and manifest["hnsw"]["m"] == 32
    assert ix.approximate and isinstance(faiss.downcast_index(ix.dense), faiss.IndexHNSWFlat)
    queries = np.random.default_rng(7).standard_normal((50, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    mask = np.random.default_rng(8).random(N) < 0.7  # e.g. the public, in-force chunks
    for q in queries:
        _, positions = ix.dense_search(q, K)
        assert set(positions.tolist()) == exact_top(unit_vectors, q, K)
        _, positions = ix.dense_search(q, K, mask=mask)
        assert set(positions.tolist()) == exact_top(unit_vectors, q, K, mask) and mask[positions].all()


def test_below_the_threshold_nothing_changes(tmp_path, unit_vectors):
    ix = build(tmp_path, unit_vectors, approx_min_chunks=N + 1)
    assert json.loads((ix.directory / MANIFEST).read_text("utf-8"))["dense_kind"] == "flat"
    assert not ix.approximate and isinstance(faiss.downcast_index(ix.dense), faiss.IndexFlatIP)


@pytest.mark.parametrize("env, kind", [({"POLICYQA_APPROX_INDEX_MIN_CHUNKS": "100"}, "hnsw"),
                                       ({"POLICYQA_DENSE_INDEX": "approximate"}, "hnsw"),
                                       ({"POLICYQA_DENSE_INDEX": "exact", "POLICYQA_APPROX_INDEX_MIN_CHUNKS": "1"}, "flat")])
def test_the_settings_choose_the_index(tmp_path, unit_vectors, fresh_settings, env, kind):
    for name, value in env.items():
        fresh_settings.setenv(name, value)
    fresh_settings.setenv("POLICYQA_HNSW_EF_SEARCH", "200")
    ix = build(tmp_path, unit_vectors)
    assert ix.dense_kind == kind
    if kind == "hnsw":
        assert faiss.downcast_index(ix.dense).hnsw.efSearch == 200


@pytest.mark.parametrize("variable, value", [("DENSE_INDEX", "fast"), ("APPROX_INDEX_MIN_CHUNKS", "0"),
                                             ("APPROX_INDEX_MIN_CHUNKS", "many"), ("HNSW_EF_SEARCH", "4")])
def test_bad_index_settings_are_named(monkeypatch, variable, value):
    monkeypatch.setenv(f"POLICYQA_{variable}", value)
    with pytest.raises(SettingsError, match=f"POLICYQA_{variable}={value!r}"):
        load_settings()


def test_the_small_kb_over_a_lowered_threshold_answers_as_exact_search(small_kb, tmp_path, fresh_settings):
    """Real embeddings: the generation rebuilt from the database with the threshold at 1 chunk is HNSW, and the
    retriever over it returns the exact generation's top 10, hybrid and dense, for real questions."""
    from knowledge_base.encoder import get_embedder
    from knowledge_base.config import RetrievalConfig
    from knowledge_base.retrieval import HybridRetriever, RetrievalFilters, RetrievalQuery
    from knowledge_base.store import KnowledgeBase
    from qa_service.normalize import QueryNormalizer

    exact_kb = KnowledgeBase(small_kb)
    exact = HybridRetriever(exact_kb.load_snapshot())
    assert not exact.snapshot.indexes.approximate
    kb_dir = tmp_path / "kb"
    shutil.copytree(small_kb, kb_dir, ignore=shutil.ignore_patterns("indexes"))
    fresh_settings.setenv("POLICYQA_APPROX_INDEX_MIN_CHUNKS", "1")
    snapshot = KnowledgeBase(kb_dir).load_snapshot()  # no index files: built from the database
    assert snapshot.indexes.approximate and len(snapshot.indexes) == len(exact.snapshot.indexes)

    vectors = exact.vectors(np.arange(exact.size))  # the stored real vectors as queries
    for q in vectors:
        assert set(snapshot.indexes.dense_search(q, K)[1].tolist()) == exact_top(vectors, q, K)
    embed, normalizer = get_embedder().embed_query, QueryNormalizer(exact.organizations())
    # the HNSW walk (no filter is narrow enough for exact search), and exact search over what a filter allows
    for approx in (HybridRetriever(snapshot, RetrievalConfig(exact_subset_max=0)), HybridRetriever(snapshot)):
        for question in ("失业保险金的标准由谁确定", "春节放几天假", "济南市司法局政务公开工作要点", "居住证怎么办"):
            n = normalizer.run(question)
            for mode, filters in (("dense", RetrievalFilters()), ("hybrid", RetrievalFilters()),
                                  ("hybrid", RetrievalFilters(publisher="国务院"))):
                query = RetrievalQuery(tokens=n.tokens, vector=embed(n.text), organization=n.organization,
                                       region=n.region, mode=mode, k=K, filters=filters)
                want, got = exact.run(query).hits, approx.run(query).hits
                assert [(h.row_id, round(h.score, 5)) for h in got] == [(h.row_id, round(h.score, 5)) for h in want]
