"""Word vectors of a knowledge base's vocabulary: what the judge's soft coverage compares a question's words with.

    cache = WordVectorCache(cache_dir, embedder.model_id)
    table = cache.lookup(retriever.vocabulary(), embedder.embed_queries)   # (words, dim) float16 unit rows
    retriever.use_word_vectors(table)                                       # then retriever.soft_coverage(...)

A citizen asks in words the statute does not use (老板 for 用人单位, 辞退 for 解除劳动合同, 年假 for 年休假). Coverage counts
only the question's words a passage contains; soft coverage also counts a missing word by the cosine of its nearest
word in the passage. The vectors are the knowledge base's own encoder's, of each word alone ("query: 辞退"), so no other
model is needed. Measured as three more ranker features (README "The answer judge", round 7): on the 222 selection
questions the trained judge's hit@1 0.734 → 0.779, refusal 0.529 → 0.750 and wrong top citations 0.306 → 0.207 at
the same false refusal; out of fold on the 559 labelled training questions hit@1 0.594 → 0.612, hit@5 0.880 → 0.905.

Encoding a word costs a few milliseconds, so the vectors are kept per machine and encoder in one file under the cache
directory, shared by every process and every generation: a new generation encodes only its new words, a machine
that has none encodes the vocabulary once (40,774 words of the full corpus: measured in README "Performance").
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

import numpy as np

from .encoder import build_lock

EmbedTexts = Callable[[list[str]], np.ndarray]


class WordVectorCache:
    """Unit vectors of words under one encoder, kept in `cache_dir/word-vectors/<encoder>.npz`."""

    def __init__(self, cache_dir: Path, model_id: str, batch: int = 256):
        if batch < 1:
            raise ValueError("batch must be at least 1")
        self.path = Path(cache_dir) / "word-vectors" / f"{hashlib.sha256(model_id.encode()).hexdigest()[:16]}.npz"
        self.batch = batch

    def lookup(self, words: list[str], embed: EmbedTexts) -> np.ndarray:
        """Vectors of `words` (float16 unit rows, in order); words the cache lacks are encoded with `embed` and kept."""
        known = self._read()
        missing = [w for w in dict.fromkeys(words) if w not in known]
        if missing:
            with build_lock(self.path):
                known = self._read()  # another process may have added them meanwhile
                missing = [w for w in missing if w not in known]
                if missing:
                    for start in range(0, len(missing), self.batch):
                        part = missing[start:start + self.batch]
                        known.update(zip(part, unit_rows(embed(part)).astype(np.float16)))
                    self._write(known)
        dim = len(next(iter(known.values()))) if known else 0
        return np.stack([known[w] for w in words]) if words else np.zeros((0, dim), np.float16)

    def _read(self) -> dict[str, np.ndarray]:
        if not self.path.is_file():
            return {}
        with np.load(self.path, allow_pickle=False) as f:
            return dict(zip(f["words"].tolist(), f["vectors"]))

    def _write(self, known: dict[str, np.ndarray]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, words=np.array(list(known), dtype=str), vectors=np.stack(list(known.values())))
        os.replace(tmp, self.path)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
