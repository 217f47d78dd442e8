"""`policyqa bench scale --factor N`: the synthetic province corpus it measures (issue 22)."""
from __future__ import annotations

import numpy as np

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
