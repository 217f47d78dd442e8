"""A province-sized corpus built from a real knowledge base, and what exact and approximate indexes cost over it.

    policyqa bench scale --kb /work/kbs/full --factor 10          # factor 1 and factor 10 side by side

Embedding 500,000 chunks takes hours, so the N× corpus is synthesized: every city's local document is re-issued for
other cities (its BM25 tokens with the city's name replaced; its vector the real one plus seeded Gaussian noise of
norm `noise`, re-normalized) until the corpus holds N× the real chunks; national and provincial documents stay
single, as in a province's one knowledge base. A seeded sample of real chunks is held out (neither indexed nor
re-issued): their real vectors, and the real questions' query vectors, are the queries recall@10 is measured on,
against exact search over the same synthetic corpus.
"""
from __future__ import annotations

import gc
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import bm25s
import faiss
import numpy as np
from sqlalchemy import select

from knowledge_base.db import ChunkRow, DocumentRow
from knowledge_base.indexes import DenseIndexConfig, IndexSet, build_dense_index
from knowledge_base.store import KnowledgeBase

from .benchutil import latency_summary

# Prefecture-level cities of the two provinces the corpus covers: the names documents are re-issued under.
CITIES = ("济南", "青岛", "淄博", "枣庄", "东营", "烟台", "潍坊", "济宁", "泰安", "威海", "日照", "临沂", "德州", "聊城",
          "滨州", "菏泽", "杭州", "宁波", "温州", "嘉兴", "湖州", "绍兴", "金华", "衢州", "舟山", "台州", "丽水")
PRODUCT_DEPTH = 400  # what the retriever asks an approximate index for (4 × RetrievalConfig.candidates)
HNSW_EF = (64, 128, 256, 512, 1024)
IVF_NPROBE = (16, 32, 64)


@dataclass
class Corpus:
    vectors: np.ndarray  # (n, dim) float32, unit length
    tokens: list[list[str]]
    city: list[str | None]  # per chunk: the city its document belongs to (None: national or provincial)


def load_corpus(kb_dir: Path) -> Corpus:
    """Every chunk's stored vector and BM25 tokens, with its document's city (the public store API)."""
    kb = KnowledgeBase(kb_dir)
    with kb.session() as s:
        region = dict(s.execute(select(DocumentRow.doc_id, DocumentRow.region)).all())
        rows = s.execute(select(ChunkRow.doc_id, ChunkRow.tokens, ChunkRow.embedding).order_by(ChunkRow.id)).all()
    vectors = np.vstack([np.frombuffer(e, dtype=np.float32) for _, _, e in rows])
    tokens = [t.split(" ") if t else [] for _, t, _ in rows]
    city = [region.get(d) if region.get(d) in CITIES else None for d, _, _ in rows]
    return Corpus(vectors, tokens, city)


def split_held_out(corpus: Corpus, n: int, seed: int) -> tuple[Corpus, np.ndarray]:
    """(the corpus without `n` seeded chunks, those chunks' real vectors)."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(corpus.tokens), bool)
    held[rng.choice(len(held), size=min(n, len(held) // 10), replace=False)] = True
    keep = np.flatnonzero(~held)
    return (Corpus(corpus.vectors[keep], [corpus.tokens[i] for i in keep], [corpus.city[i] for i in keep]),
            corpus.vectors[held])


def synthesize(base: Corpus, factor: int, noise: float, seed: int) -> tuple[np.ndarray, list[list[str]]]:
    """`factor` × the base corpus: the base, then its city documents re-issued for other cities, copy after copy."""
    target = factor * len(base.tokens)
    local = np.array([i for i, c in enumerate(base.city) if c is not None], np.int64)
    if len(local) == 0:  # a knowledge base without city documents: re-issue everything
        local = np.arange(len(base.tokens))
    rng = np.random.default_rng(seed)
    dim = base.vectors.shape[1]
    parts, tokens = [base.vectors], list(base.tokens)
    interned: dict[str, str] = {}
    named = {int(i): [j for j, t in enumerate(base.tokens[i]) if base.city[i] and base.city[i] in t] for i in local}
    copy = 0
    while len(tokens) < target:
        copy += 1
        take = local[: target - len(tokens)]
        v = base.vectors[take] + rng.standard_normal((len(take), dim), dtype=np.float32) * (noise / np.sqrt(dim))
        parts.append(v / np.linalg.norm(v, axis=1, keepdims=True))
        for i in take.tolist():
            own = base.city[i]
            other = CITIES[(CITIES.index(own) + copy) % len(CITIES)] if own else None
            toks = list(base.tokens[i])
            for j in named[i]:
                new = toks[j].replace(own, other)
                toks[j] = interned.setdefault(new, new)
            tokens.append(toks)
    return np.ascontiguousarray(np.vstack(parts), dtype=np.float32), tokens


def _timed_ms(fn, queries) -> list[float]:
    out = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t) * 1000)
    return out


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / len(t) for f, t in zip(found, truth)]))


# Run in a fresh interpreter: the resident memory one index file adds to a process that loads it (this process's own
# RSS says little, freed and reused pages hide it).
_LOAD_RSS = """
import sys
def rss():
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS:')) / 1024
kind, path = sys.argv[1], sys.argv[2]
import faiss, bm25s
before = rss()
index = faiss.read_index(path) if kind == 'faiss' else bm25s.BM25.load(path)
print(rss() - before)
"""


def load_rss_mb(kind: str, path: Path) -> float:
    """MB of resident memory that loading the index at `path` ('faiss' or 'bm25') adds to a fresh process."""
    out = subprocess.run([sys.executable, "-c", _LOAD_RSS, kind, str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def _loaded(index: faiss.Index, tmp: Path) -> tuple[faiss.Index, float, float]:
    """(the index read back from its file, file MB, resident MB it adds to a process loading it)."""
    path = tmp / "dense.faiss"
    faiss.write_index(index, str(path))
    del index
    gc.collect()
    loaded = faiss.read_index(str(path))
    size, resident = path.stat().st_size / 1e6, load_rss_mb("faiss", path)
    path.unlink()
    return loaded, size, resident


def measure_dense(vectors: np.ndarray, queries: dict[str, np.ndarray], latency_queries: np.ndarray,
                  ivf: bool = True) -> list[dict]:
    """Exact (flat) and approximate (HNSW M=32 over several efSearch, IVF over several nprobe) dense indexes: build
    time, memory, p50/p95 of one query (one thread, as served), recall@10 against exact search per query set."""
    truth: dict[str, np.ndarray] = {}
    rows: list[dict] = []
    config = DenseIndexConfig()
    with tempfile.TemporaryDirectory(prefix="policyqa-scale-") as tmp:
        for kind in ("flat", "hnsw", "ivf") if ivf else ("flat", "hnsw"):
            faiss.omp_set_num_threads(0 if kind != "flat" else 1)  # builds use the library's threads, as ingest does
            t = time.perf_counter()
            index = build_dense_index(vectors, kind, config) if kind != "ivf" else _ivf(vectors)
            build_s = time.perf_counter() - t
            index, size_mb, rss_grown = _loaded(index, Path(tmp))
            faiss.omp_set_num_threads(1)
            if kind == "flat":  # the ground truth: exact search, batched
                truth = {name: index.search(q, 10)[1] for name, q in queries.items()}
            ix = IndexSet(Path(tmp), 0, None, vectors.shape[1], np.arange(len(vectors)), None, index,
                          "flat" if kind == "flat" else "hnsw")
            knobs = {"flat": [None], "hnsw": HNSW_EF, "ivf": IVF_NPROBE}[kind]
            for knob in knobs:
                inner = faiss.downcast_index(index)
                if kind == "hnsw":
                    inner.hnsw.efSearch = knob
                elif kind == "ivf":
                    inner.nprobe = knob
                row = {"index": kind, "param": knob, "build_s": build_s, "file_mb": size_mb, "rss_mb": rss_grown,
                       "latency_k10": latency_summary(_timed_ms(lambda q, s=ix.dense_search: s(q, 10), latency_queries)),
                       "latency_k400": latency_summary(_timed_ms(lambda q, s=ix.dense_search: s(q, PRODUCT_DEPTH),
                                                                 latency_queries))}
                for name, q in queries.items():
                    row[f"recall10_{name}"] = _recall(index.search(q, 10)[1], truth[name])
                    row[f"recall10_{name}_k400"] = _recall(index.search(q, PRODUCT_DEPTH)[1][:, :10], truth[name])
                rows.append(row)
            if kind == "flat":  # what the retriever does with an exact index: one matrix-vector product over all
                depth = min(PRODUCT_DEPTH, len(vectors) - 1)
                rows[-1]["latency_matmul"] = latency_summary(
                    _timed_ms(lambda q: np.argpartition(-(vectors @ q), depth)[:depth], latency_queries))
            del ix, index
            gc.collect()
    faiss.omp_set_num_threads(0)
    return rows


def _ivf(vectors: np.ndarray) -> faiss.Index:
    nlist = int(4 * np.sqrt(len(vectors)))
    quantizer = faiss.IndexFlatIP(vectors.shape[1])
    index = faiss.IndexIVFFlat(quantizer, vectors.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(0).choice(len(vectors), size=min(len(vectors), 32 * nlist), replace=False)
    index.train(vectors[np.sort(sample)])
    index.add(vectors)
    index.own_fields = True
    quantizer.this.disown()
    return index


def measure_bm25(tokens: list[list[str]], query_tokens: list[list[str]]) -> dict:
    """bm25s as the generation builds it: build time, saved bytes, RSS growth when loaded, query p50/p95 for the
    top 10 (IndexSet.lexical_search) and for every chunk's score (what the retriever computes)."""
    with tempfile.TemporaryDirectory(prefix="policyqa-scale-bm25-") as tmp:
        t = time.perf_counter()
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        build_s = time.perf_counter() - t
        retriever.save(f"{tmp}/bm25")
        del retriever
        gc.collect()
        size = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()) / 1e6
        loaded = bm25s.BM25.load(f"{tmp}/bm25")
        grown = load_rss_mb("bm25", Path(tmp) / "bm25")
    ix = IndexSet(Path(tmp), 0, None, 0, np.arange(len(tokens)), loaded, None)
    vocab = loaded.vocab_dict
    top10 = _timed_ms(lambda tk: ix.lexical_search(tk, 10), query_tokens)
    every = _timed_ms(lambda tk: loaded.get_scores_from_ids([vocab[t] for t in tk if t in vocab] or [0]), query_tokens)
    return {"build_s": build_s, "file_mb": size, "rss_mb": grown, "latency_top10": latency_summary(top10),
            "latency_all_scores": latency_summary(every)}
