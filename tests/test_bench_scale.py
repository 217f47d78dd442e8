"""`policyqa bench scale --factor N`: the synthetic province corpus it measures (issue 22)."""
from __future__ import annotations

import numpy as np
import pytest

from eval.scale_synth import Corpus, split_held_out, synthesize


def corpus() -> Corpus:
    rng = np.random.default_rng(0)
    v = rng.standard_normal((40, 16)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    tokens = [["济南", "济南市", "养犬", "管理"] if i < 10 else ["全国", "年节", str(i)] for i in range(40)]
    return Corpus(v, tokens, ["济南" if i < 10 else None for i in range(40)])


def test_city_documents_are_reissued_for_other_cities_until_the_factor():
    base = corpus()
    vectors, tokens = synthesize(base, factor=3, noise=0.2, seed=1)
    assert len(tokens) == len(vectors) == 120
    assert tokens[:40] == base.tokens and np.array_equal(vectors[:40], base.vectors)
    copies = tokens[40:]
    assert all(t[2:] == ["养犬", "管理"] and "济南" not in t[0] and t[1] == t[0] + "市" for t in copies)
    assert len({t[0] for t in copies}) == 8  # 8 copies of the 10 city chunks, each under another city
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cos = np.sum(vectors[40:50] * base.vectors[:10], axis=1)
    assert np.all(cos > 0.95) and np.all(cos < 1.0)  # near the real vector, not the same
    again, _ = synthesize(base, factor=3, noise=0.2, seed=1)
    assert np.array_equal(again, vectors)


def test_held_out_chunks_are_neither_indexed_nor_reissued():
    base = corpus()
    rest, held = split_held_out(base, 4, seed=0)
    assert len(rest.tokens) == 36 and len(held) == 4
    vectors, _ = synthesize(rest, factor=2, noise=0.2, seed=0)
    for h in held:
        assert not np.any(np.all(np.isclose(vectors, h), axis=1))


@pytest.mark.model
def test_a_scaled_knowledge_base_reissues_city_documents_for_other_cities(small_kb, tmp_path):
    """eval/scale_kb.py: an ordinary knowledge base at N× the chunks, the re-issued documents under other cities'
    names with their real chunks' vectors (plus noise), served by the real engine."""
    from sqlalchemy import select

    from eval.scale_kb import build_scaled_kb
    from knowledge_base.db import DocumentRow
    from knowledge_base.settings import Settings
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    before = KnowledgeBase(small_kb)
    n = len(before.chunk_records())
    result = build_scaled_kb(small_kb, tmp_path / "x3", factor=3, noise=0.2, seed=0)
    kb = KnowledgeBase(tmp_path / "x3")
    records = kb.chunk_records()
    assert result["chunks"] == len(records) >= 3 * n and kb.state().generation > before.state().generation
    with kb.session() as s:
        docs = s.execute(select(DocumentRow.doc_id, DocumentRow.title, DocumentRow.region)).all()
    reissued = [d for d in docs if d.region not in (None, "济南", "全国")]
    assert len({d.region for d in reissued}) >= 2 and all(d.region in d.title and "济南" not in d.title for d in reissued)
    # a re-issued chunk keeps its real chunk's place in the vector space: near it, not the same
    original = {(r.title.replace("济南", "X"), r.ordinal): r.vector for r in records if "济南" in r.title}
    copies = [r for r in records if r.doc_id in {d.doc_id for d in reissued}]
    cos = [float(r.vector @ original[(r.title.replace(next(d.region for d in reissued if d.doc_id == r.doc_id), "X"), r.ordinal)])
           for r in copies[:50]]
    assert min(cos) > 0.9 and max(cos) < 0.99999
    # the engine serves it; the national answer is unchanged by the copies
    question = "失业保险金能领多长时间？"
    got = QAEngine(kb, Settings()).ask(question, record=False)
    assert got.citations and "失业保险" in got.citations[0].title
    assert len({d.doc_id for d in docs}) == len(docs) and result["copies"] >= 2
    with pytest.raises(SystemExit):
        build_scaled_kb(small_kb, tmp_path / "x3", factor=3)  # never over an existing directory
