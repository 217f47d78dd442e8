"""FAQ matching: a question against each published entry's 问题 and 相似问法.

    matcher = FaqMatcher(FaqService(kb).published_with_vectors(), normalizer, embed_queries=embedder.embed_queries)
    best = matcher.run(normalized_query, query_vector, idf=retriever.idf)[0]
    best.entry.faq_id, best.score     # -> "FAQ-004", 0.93

score = (dense + coverage) / 2, where `dense` is the best cosine between the question and the entry's
question or a 相似问法 (both embedded with the e5 `query: ` prompt) and `coverage` is the idf-weighted share
of the question's content words (jieba precise mode, without question words such as 多久/哪些 and small
numbers) that occur anywhere in the entry (question, 相似问法, answer). The encoder alone cannot tell
"国庆节放几天假" from "春节放几天假" (cosine 0.943) or "济南12345热线包括哪些受理渠道" from "…多久回复"
(0.947); the missing content word (国庆节; 受理、渠道) can.

Measured on the sample FAQ (10 entries) with 28 paraphrases that must match and 25 near-topic questions that
must not (dev questions, other holidays, other aspects of the same topic): paraphrases score ≥ 0.917
(dense ≥ 0.930, coverage ≥ 0.86), near misses ≤ 0.878 (dense ≤ 0.962, coverage ≤ 0.80); the default
`faq_threshold` 0.90 sits between. Only published entries are ever loaded; the matcher is rebuilt when the
knowledge base's `faq_generation` moves, so publishing or retiring takes effect within `reload_interval`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from knowledge_base.faqs import match_texts
from knowledge_base.models import FaqEntry, FaqStatus

from knowledge_base.text import coverage, fold

from .normalize import NormalizedQuery, QueryNormalizer

MIN_IDF = 1.0  # a word the corpus never uses still counts as asked


@dataclass
class FaqMatch:
    entry: FaqEntry
    score: float  # (dense + coverage) / 2, in [0, 1]
    dense: float  # best cosine over the entry's texts
    coverage: float  # share of the question's content words the entry speaks of
    matched_text: str  # the question or 相似问法 that matched best
    missing: list[str]  # content words of the question the entry does not contain


class FaqMatcher:
    """Published FAQ entries, ready to match; immutable, rebuilt (not mutated) on a new faq_generation."""

    def __init__(
        self,
        entries: list[tuple[FaqEntry, np.ndarray | None]],
        normalizer: QueryNormalizer,
        embed_queries: Callable[[list[str]], np.ndarray] | None = None,
        generation: int = 0,
    ):
        self.generation = generation
        self.entries: list[FaqEntry] = []
        rows: list[np.ndarray] = []
        owners: list[int] = []
        texts: list[str] = []
        self._vocab: list[str] = []  # per entry: everything it says, folded, for the coverage test
        for entry, vectors in entries:
            if entry.status != FaqStatus.PUBLISHED:
                continue  # defence in depth: the service only hands over published entries
            entry_texts = match_texts(entry)
            if vectors is None or len(vectors) != len(entry_texts):
                if embed_queries is None:
                    vectors = None
                else:  # published without vectors (e.g. by a script): embed in memory, once per generation
                    vectors = np.asarray(embed_queries(entry_texts), dtype=np.float32)
            idx = len(self.entries)
            self.entries.append(entry)
            normalized = [normalizer.run(t).text for t in entry_texts]
            self._vocab.append(fold(" ".join([*entry_texts, *normalized, entry.answer])).lower())
            for j, t in enumerate(entry_texts):
                owners.append(idx)
                texts.append(t)
                if vectors is not None:
                    rows.append(np.asarray(vectors[j], dtype=np.float32))
                else:
                    rows.append(np.zeros(0, np.float32))
        dim = max((len(r) for r in rows), default=0)
        self._matrix = np.vstack([r if len(r) == dim else np.zeros(dim, np.float32) for r in rows]) if rows and dim else None
        self._owners = np.asarray(owners, dtype=np.int64)
        self._texts = texts

    def __len__(self) -> int:
        return len(self.entries)

    def run(self, query: NormalizedQuery, vector: np.ndarray | None, idf: Callable[[str], float] | None = None,
            limit: int = 5) -> list[FaqMatch]:
        """The best `limit` entries for a normalized question, best first (one match per entry)."""
        if not self.entries:
            return []
        if self._matrix is not None and vector is not None:
            dense = self._matrix @ np.asarray(vector, dtype=np.float32).reshape(-1)
        else:
            dense = np.zeros(len(self._texts), np.float32)
        best: dict[int, int] = {}
        for i, owner in enumerate(self._owners):
            if owner not in best or dense[i] > dense[best[owner]]:
                best[int(owner)] = i
        words = query.content
        matches = []
        for owner, i in best.items():
            vocab = self._vocab[owner]
            missing = [w for w in words if w not in vocab]
            cov = coverage(words, vocab, idf, unknown=MIN_IDF, floor=MIN_IDF)
            d = float(dense[i])
            matches.append(FaqMatch(self.entries[owner], (d + cov) / 2, d, cov, self._texts[i], missing))
        matches.sort(key=lambda m: -m.score)
        return matches[:limit]
