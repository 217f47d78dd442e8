"""Index files of one knowledge-base generation: BM25 over jieba tokens (bm25s) and FAISS inner product.

    build_index_set(out_dir, positions=ids, token_lists=toks, vectors=mat, model_id="…")
    ix = IndexSet.load(out_dir)
    ix.dense_search(query_vec, k=50)  # -> (scores, chunk row ids)

The dense index is exact (faiss IndexFlatIP) below POLICYQA_APPROX_INDEX_MIN_CHUNKS chunks and approximate above it
(HNSW over the same stored vectors, recall@10 >= 0.99 measured by `policyqa bench scale --factor 10`); POLICYQA_DENSE_INDEX
forces one or the other. The manifest records which (`dense_kind`), so a reader never guesses.

A generation directory is written under a temporary name and renamed into place, so a reader
never sees half an index; the database row `kb_state.generation` says which one is current.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import bm25s
import faiss
import numpy as np

from .settings import Settings, get_settings

MANIFEST = "manifest.json"
TMP_MARK = ".tmp-"  # gen-000007.tmp-<pid>-<random>: each builder writes its own, several processes may share a disk
STALE_TMP_SECONDS = 3600.0  # a temporary directory this old belongs to no live build (the full corpus takes ~1 min)

DenseKind = Literal["flat", "hnsw"]


@dataclass(frozen=True)
class DenseIndexConfig:
    """Which dense index a generation gets, and the HNSW parameters (chosen with `policyqa bench scale --factor 10`)."""

    mode: Literal["auto", "exact", "approximate"] = "auto"
    approx_min_chunks: int = 100_000
    hnsw_m: int = 32  # neighbours per node; 2·M links a vector on the base layer (~256 bytes beside its 1,536)
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 512  # recall@10 of real questions at 10x: 0.991 (256: 0.980); 1.6 ms a query

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "DenseIndexConfig":
        s = settings or get_settings()
        return cls(mode=s.dense_index, approx_min_chunks=s.approx_index_min_chunks, hnsw_ef_search=s.hnsw_ef_search)

    def kind_for(self, chunks: int) -> DenseKind:
        if self.mode == "exact":
            return "flat"
        if self.mode == "approximate":
            return "hnsw"
        return "hnsw" if chunks >= self.approx_min_chunks else "flat"


def build_dense_index(vectors: np.ndarray, kind: DenseKind, config: DenseIndexConfig) -> faiss.Index:
    """An inner-product index over `vectors` (unit length): exact (flat) or HNSW storing the same full vectors."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.hnsw_ef_construction
        index.hnsw.efSearch = config.hnsw_ef_search
    index.add(vectors)
    return index


@dataclass
class IndexSet:
    directory: Path
    generation: int
    model_id: str | None
    dim: int
    chunk_ids: np.ndarray  # int64 chunk row ids, position i of both indexes ↔ chunk_ids[i]
    bm25: bm25s.BM25 | None
    dense: faiss.Index | None
    dense_kind: DenseKind = "flat"  # "hnsw": approximate; a generation written before the manifest said is flat

    @classmethod
    def load(cls, directory: Path) -> "IndexSet":
        manifest = json.loads((directory / MANIFEST).read_text("utf-8"))
        chunk_ids = np.load(directory / "chunk_ids.npy")
        bm25 = bm25s.BM25.load(str(directory / "bm25")) if len(chunk_ids) else None
        dense = faiss.read_index(str(directory / "dense.faiss")) if len(chunk_ids) else None
        kind = manifest.get("dense_kind", "flat")
        if dense is not None and kind == "hnsw":
            faiss.downcast_index(dense).hnsw.efSearch = int(manifest["hnsw"]["ef_search"])
        return cls(directory, manifest["generation"], manifest.get("model_id"), manifest["dim"], chunk_ids, bm25, dense,
                   kind)

    @property
    def approximate(self) -> bool:
        return self.dense_kind != "flat"

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def lexical_search(self, tokens: list[str], k: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """BM25 scores and positions of the top k; `mask` (float 0/1 per position) excludes positions."""
        if self.bm25 is None or not tokens:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        vocab = self.bm25.vocab_dict
        known = [t for t in tokens if t in vocab]
        if not known:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        k = min(k, len(self.chunk_ids))
        positions, scores = self.bm25.retrieve(
            [known], k=k, show_progress=False, weight_mask=mask, n_threads=1
        )
        positions, scores = positions[0].astype(np.int64), scores[0]
        keep = scores > 0
        return scores[keep], positions[keep]

    def dense_search(self, query: np.ndarray, k: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product scores and positions of the top k; `mask` (bool per position) restricts the search."""
        if self.dense is None:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        k = min(k, len(self.chunk_ids))
        params, selector = None, None  # the selector (and its bits) must outlive the search
        if mask is not None:
            if not mask.any():
                return np.zeros(0, np.float32), np.zeros(0, np.int64)
            bits = np.packbits(np.asarray(mask, bool), bitorder="little")  # faiss reads bit i of byte i >> 3
            selector = faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))
            params = faiss.SearchParameters(sel=selector)
        scores, positions = self.dense.search(query.reshape(1, -1).astype(np.float32), k, params=params)
        keep = positions[0] >= 0
        return scores[0][keep], positions[0][keep].astype(np.int64)


def build_index_set(
    out_dir: Path,
    *,
    generation: int,
    chunk_ids: np.ndarray,
    token_lists: list[list[str]],
    vectors: np.ndarray,
    model_id: str | None,
    dim: int,
    replace_existing: bool = True,
    dense: DenseIndexConfig | None = None,
) -> Path:
    """Write a complete generation directory atomically (temp dir + rename). With `replace_existing=False` a
    directory another process finished first is kept (a generation's content never changes once committed).
    `dense` (default: from the settings) says whether the dense index is exact or HNSW."""
    dense = dense or DenseIndexConfig.from_settings()
    kind = dense.kind_for(len(chunk_ids))
    tmp = out_dir.with_name(f"{out_dir.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        np.save(tmp / "chunk_ids.npy", np.asarray(chunk_ids, dtype=np.int64))
        if len(chunk_ids):
            retriever = bm25s.BM25()
            retriever.index(token_lists, show_progress=False)
            retriever.save(str(tmp / "bm25"))
            faiss.write_index(build_dense_index(vectors, kind, dense), str(tmp / "dense.faiss"))
        manifest = {"generation": generation, "model_id": model_id, "dim": dim, "chunks": int(len(chunk_ids)),
                    "dense_kind": kind}
        if kind == "hnsw":
            manifest["hnsw"] = {"m": dense.hnsw_m, "ef_construction": dense.hnsw_ef_construction,
                                "ef_search": dense.hnsw_ef_search}
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")
        _fsync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out_dir.exists():
        if not replace_existing:
            shutil.rmtree(tmp, ignore_errors=True)
            return out_dir
        shutil.rmtree(out_dir)
    try:
        os.replace(tmp, out_dir)
    except OSError:  # another process renamed its copy into place between the check and here
        if replace_existing or not (out_dir / MANIFEST).exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def prune_generations(indexes_dir: Path, keep: set[int]) -> None:
    """Delete generation directories not in `keep`, and temporary ones left by a build that died (only stale ones:
    another process sharing this disk may be building right now)."""
    for d in indexes_dir.iterdir():
        name, tmp_mark, _ = d.name.partition(TMP_MARK)
        if not name.startswith("gen-") or not name[4:].isdigit():
            continue
        if tmp_mark:
            if time.time() - d.stat().st_mtime > STALE_TMP_SECONDS:
                shutil.rmtree(d, ignore_errors=True)
        elif int(name[4:]) not in keep:
            shutil.rmtree(d, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    for f in path.rglob("*"):
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
