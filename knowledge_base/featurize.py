"""The judge's features: one component turns a question and its candidates into the rows the judge reads.

    featurizer = JudgeFeaturizer(retriever.terms, VocabularyVectors(retriever.terms, words))   # one per generation
    x = featurizer.passage_rows(query, cands, passages)            # one row of PASSAGE_FEATURES per candidate
    q = JudgeFeaturizer.question_row(query, cands.take(order), x[order], scores[order])   # QUESTION_FEATURES

Serving (qa_service.engine) and training (qa_service.training.judge) both build their rows here, so a judge is fitted
on exactly what it is served. The retriever supplies the candidates (knowledge_base.retrieval.Candidates: scores,
ranks, coverage, place and validity facts) and its index's words (TermIndex); everything else is computed here.

Passage features: BM25 and cosine with their ranks in each list, coverage of the question's words by the passage and
by its title, the law's name in the question, article number, place and office matches, validity, document type,
length, quantities, how many candidates share the document, the fused score, and **soft coverage**: a question word
the passage lacks counts by the cosine of the passage's nearest word instead of 0 (the colloquial word against the
statute's: 辞退 / 解除劳动合同, 老板 / 用人单位), which exact coverage and BM25 cannot see. The words' vectors are the
knowledge base's own encoder's, of each word alone ("query: 辞退"), so no other model is needed; encoding a word costs
a few milliseconds, so the vocabulary's are kept per machine and encoder in one file under the cache directory
(WordVectorCache), shared by every process and generation: a new generation encodes only its new words.
Question features describe the ranked list (the top score and its margins, cosine, coverage, words the knowledge base
never uses, quantities, an unknown place): what the answerability model reads. No model call: about 1 ms for 60
candidates, plus the soft coverage's few question words.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import scipy.sparse

from .encoder import build_lock
from .models import DocType
from .retrieval import Candidates, TermIndex
from .text import asks_quantity, coverage, fold, states_quantity, word_weights

EmbedTexts = Callable[[list[str]], np.ndarray]

PASSAGE_FEATURES = (
    "cos", "cos_gap", "dense_rank", "in_dense",
    "bm25_norm", "bm25_log", "lexical_rank", "in_lexical",
    "coverage", "title_coverage", "title_in_question", "article_match",
    "place_match", "place_mismatch", "foreign_local", "organization", "local",
    "expired", "superseded", "plan", "length_log",
    "quantity_stated", "quantity_missing", "same_doc", "doc_cos_gap",
    "fused_norm", "fused_rank",
    "soft_coverage", "soft_missing", "soft_gap",
)
SOFT_FEATURES = ("soft_coverage", "soft_missing", "soft_gap")
QUESTION_FEATURES = (
    "top_score", "margin2", "margin5", "top_cos", "best_cos", "top_coverage", "max_coverage3", "top_title_coverage",
    "top_bm25_norm", "quantity_missing_top", "quantity_missing_top3", "unknown_share", "content_words",
    "place_unknown", "top_place_mismatch", "top_title_in_question",
)
_COL = {name: i for i, name in enumerate(PASSAGE_FEATURES)}
_QCOL = {name: i for i, name in enumerate(QUESTION_FEATURES)}
_ARTICLE_ASKED = re.compile(r"第([零〇一二三四五六七八九十百千两\d]+)条")
_TITLE_NOISE = re.compile(r"^中华人民共和国|\(.*?\)|（.*?）|\s")


@dataclass(frozen=True)
class JudgeQuery:
    """What the judge needs to know of a question (built from qa_service.normalize.NormalizedQuery)."""

    text: str  # normalized question
    words: list[str]  # content words
    idf: Callable[[str], float]
    region: str | None = None
    organization: str | None = None

    @property
    def asks_quantity(self) -> bool:
        return asks_quantity(self.text)


@dataclass(frozen=True)
class Passage:
    """A candidate's text and document facts."""

    title: str
    section: str
    text: str
    doc_type: DocType = DocType.OTHER


def feature_columns(features: tuple[str, ...]) -> list[int]:
    """Where `features` stand in a row of PASSAGE_FEATURES."""
    return [_COL[name] for name in features]


# ---------------------------------------------------------------------- word vectors
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


class WordEncoder:
    """One process's word vectors under the knowledge base's encoder: a vocabulary's from this machine's cache, and
    question words no vocabulary has (colloquial words: 老板, 辞退) encoded on demand and remembered."""

    def __init__(self, embed: EmbedTexts, cache: WordVectorCache, capacity: int = 8192):
        self.embed = embed
        self.cache = cache
        self.capacity = capacity
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    def vocabulary(self, words: list[str]) -> np.ndarray:
        """float16 unit rows of `words`, from the cache (encoding the words it lacks, once per machine)."""
        return self.cache.lookup(words, self.embed)

    def encode(self, words: list[str]) -> np.ndarray:
        """float32 unit rows of `words`, remembered per process."""
        with self._lock:
            known = {w: self._recent[w] for w in words if w in self._recent}
        missing = [w for w in words if w not in known]
        if missing:
            known.update(zip(missing, unit_rows(self.embed(missing))))
            with self._lock:
                self._recent.update((w, known[w]) for w in missing)
                while len(self._recent) > self.capacity:
                    self._recent.popitem(last=False)
        return np.stack([known[w] for w in words])


class VocabularyVectors:
    """A generation's indexed words as vectors, with each index position's words (the postings transposed), read
    on first use: from this machine's cache, encoding the words it lacks (a new generation's new words; on a new
    machine the whole vocabulary, once)."""

    def __init__(self, terms: TermIndex, words: WordEncoder):
        self.terms = terms
        self.words = words
        self._lock = threading.Lock()
        self._table: np.ndarray | None = None
        self._words_of: tuple[np.ndarray, np.ndarray] | None = None

    def load(self) -> "VocabularyVectors":
        if self._table is None:
            with self._lock:
                if self._table is None:
                    terms = self.terms
                    table = self.words.vocabulary(terms.words())
                    by_word = scipy.sparse.csc_matrix((np.ones(len(terms.indices), np.bool_), terms.indices, terms.indptr),
                                                      shape=(terms.positions, terms.size))
                    words_of = by_word.tocsr()
                    self._words_of = (words_of.indptr, words_of.indices)
                    self._table = table
        return self

    @property
    def table(self) -> np.ndarray:
        """(vocabulary, dim) float16 unit rows, in token-id order."""
        return self.load()._table

    @property
    def words_of(self) -> tuple[np.ndarray, np.ndarray]:
        """(indptr, token ids): position p's words are ids[indptr[p]:indptr[p + 1]]."""
        return self.load()._words_of


# ---------------------------------------------------------------------- the featurizer
class JudgeFeaturizer:
    """The judge's feature rows for one knowledge-base generation: `passage_rows(query, candidates, passages)` and
    `question_row(query, ranked candidates, their rows, their scores)`. Thread-safe."""

    def __init__(self, terms: TermIndex, vectors: VocabularyVectors):
        self.terms = terms
        self.vectors = vectors

    def with_terms(self, terms: TermIndex) -> "JudgeFeaturizer":
        """The same generation's featurizer under another retrieval configuration (its word weights)."""
        return JudgeFeaturizer(terms, self.vectors)

    def passage_rows(self, query: JudgeQuery, cands: Candidates, passages: list[Passage],
                     timings: dict | None = None) -> np.ndarray:
        """One row of PASSAGE_FEATURES per candidate (`passages` aligned with `cands`); `timings` gets "soft"."""
        t = time.perf_counter()
        soft = self.soft_coverage(query.words, cands.positions)
        if timings is not None:
            timings["soft"] = (time.perf_counter() - t) * 1000
        return _passage_rows(query, cands, passages, soft)

    @staticmethod
    def question_row(query: JudgeQuery, cands: Candidates, x: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """QUESTION_FEATURES of a ranked list (`cands`, its passage rows `x` and judge `scores`, best first)."""
        return _question_row(query, cands, x, scores)

    def soft_coverage(self, words: list[str], positions: np.ndarray) -> np.ndarray:
        """Per position, (soft coverage, its soft part): like HybridRetriever.coverage, but a question word the
        passage lacks counts by the cosine of the passage's nearest word instead of 0 (the soft part sums only
        those)."""
        positions = np.asarray(positions, dtype=np.int64)
        out = np.zeros((len(positions), 2), np.float32)
        words = list(dict.fromkeys(words))
        if not words or len(positions) == 0:
            return out
        table, (indptr, indices) = self.vectors.table, self.vectors.words_of
        ids, weights = self.terms.ids_and_weights(words)
        weights = weights.astype(np.float32)
        q = np.zeros((len(words), table.shape[1]), np.float32)
        if (ids >= 0).any():
            q[ids >= 0] = table[ids[ids >= 0]]
        if (ids < 0).any():
            q[ids < 0] = self.vectors.words.encode([w for w, i in zip(words, ids) if i < 0])
        starts, ends = indptr[positions], indptr[positions + 1]
        lengths = ends - starts
        if lengths.sum() == 0:
            return out
        # every candidate's words, one after another, and the similarity of each question word with each of them
        tokens = np.concatenate([indices[a:b] for a, b in zip(starts, ends)])
        union, where = np.unique(tokens, return_inverse=True)
        similarity = (q @ table[union].astype(np.float32).T)[:, where]
        present = (tokens[None, :] == ids[:, None]).astype(np.float32)
        filled = lengths > 0
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])[filled]
        nearest = np.minimum(np.maximum.reduceat(similarity, offsets, axis=1), 1.0)  # words x candidates with words
        has = np.maximum.reduceat(present, offsets, axis=1) > 0
        total = float(weights.sum())
        out[filled, 0] = weights @ np.where(has, 1.0, nearest) / total
        out[filled, 1] = weights @ np.where(has, 0.0, nearest) / total
        return out


@lru_cache(maxsize=16384)
def _title_key(title: str) -> str:
    return _TITLE_NOISE.sub("", fold(title))


def _passage_rows(query: JudgeQuery, cands: Candidates, passages: list[Passage], soft: np.ndarray) -> np.ndarray:
    n = len(cands)
    x = np.zeros((n, len(PASSAGE_FEATURES)), np.float32)
    if n == 0:
        return x
    col = _COL
    top_lex = max(float(cands.lexical.max()), 1e-6)
    x[:, col["cos"]] = cands.dense
    x[:, col["cos_gap"]] = cands.best_dense - cands.dense
    x[:, col["dense_rank"]] = np.log1p(cands.dense_rank)
    x[:, col["in_dense"]] = cands.dense_rank < cands.depth
    x[:, col["bm25_norm"]] = cands.lexical / top_lex
    x[:, col["bm25_log"]] = np.log1p(cands.lexical)
    x[:, col["lexical_rank"]] = np.log1p(cands.lexical_rank)
    x[:, col["in_lexical"]] = cands.lexical_rank < cands.depth
    x[:, col["coverage"]] = cands.coverage
    for name in ("place_match", "place_mismatch", "foreign_local", "organization", "local", "expired", "superseded"):
        x[:, col[name]] = getattr(cands, name)
    x[:, col["same_doc"]] = np.log(np.maximum(cands.same_doc, 1))
    # today's fused score (stacking): the learned model decides how far to trust the hand-set fusion
    x[:, col["fused_norm"]] = cands.fused / max(float(cands.fused.max()), 1e-6)
    x[:, col["fused_rank"]] = np.log1p(np.argsort(np.argsort(-cands.fused, kind="stable"), kind="stable"))
    _text_features(x, query, cands, passages)
    x[:, col["soft_coverage"]] = soft[:, 0]
    x[:, col["soft_missing"]] = soft[:, 1]
    x[:, col["soft_gap"]] = soft[:, 0].max() - soft[:, 0]
    return x


def _text_features(x: np.ndarray, query: JudgeQuery, cands: Candidates, passages: list[Passage]) -> None:
    """The columns read from each passage's title and text (and its document's best cosine)."""
    col = _COL
    words = list(dict.fromkeys(query.words))
    compact = fold(query.text).replace(" ", "")
    asked_article = _ARTICLE_ASKED.search(compact)
    need_quantity = query.asks_quantity
    doc_best: dict[str, float] = {}
    for d, c in zip(cands.doc_ids, cands.dense):
        doc_best[d] = max(doc_best.get(d, -1.0), float(c))
    for i, p in enumerate(passages):
        title_key = _title_key(p.title)
        x[i, col["title_coverage"]] = coverage(words, p.title, query.idf)
        x[i, col["title_in_question"]] = bool(title_key) and len(title_key) >= 3 and (
            title_key in compact or title_key.removesuffix("条例") in compact or title_key.removesuffix("法") in compact
            and len(title_key) > 3)
        if asked_article:
            label = f"第{asked_article.group(1)}条"
            x[i, col["article_match"]] = label in p.section or label in p.text[:40]
        x[i, col["plan"]] = p.doc_type == DocType.PLAN
        x[i, col["length_log"]] = math.log1p(len(p.text))
        if need_quantity:
            stated = states_quantity(p.text)
            x[i, col["quantity_stated"]] = stated
            x[i, col["quantity_missing"]] = not stated
        x[i, col["doc_cos_gap"]] = doc_best[cands.doc_ids[i]] - float(cands.dense[i])


def _question_row(query: JudgeQuery, cands: Candidates, x: np.ndarray, scores: np.ndarray) -> np.ndarray:
    col, q = _COL, _QCOL
    out = np.zeros(len(QUESTION_FEATURES), np.float32)
    words = list(dict.fromkeys(query.words))
    if words:
        idfs = [query.idf(w) for w in words]
        weights = word_weights(words, query.idf)
        out[q["unknown_share"]] = sum(w for w, i in zip(weights, idfs) if not i) / max(sum(weights), 1e-9)
    out[q["content_words"]] = math.log1p(len(words))
    out[q["place_unknown"]] = not cands.place_known
    out[q["best_cos"]] = cands.best_dense
    if len(cands) == 0:
        out[q["top_score"]] = -10.0
        return out
    out[q["top_score"]] = scores[0]
    out[q["margin2"]] = scores[0] - scores[1] if len(scores) > 1 else 5.0
    out[q["margin5"]] = scores[0] - float(np.mean(scores[1:5])) if len(scores) > 1 else 5.0
    out[q["top_cos"]] = x[0, col["cos"]]
    out[q["top_coverage"]] = x[0, col["coverage"]]
    out[q["max_coverage3"]] = float(x[:3, col["coverage"]].max())
    out[q["top_title_coverage"]] = x[0, col["title_coverage"]]
    out[q["top_bm25_norm"]] = float(cands.lexical[0]) / max(cands.best_lexical, 1e-6)
    out[q["quantity_missing_top"]] = x[0, col["quantity_missing"]]
    out[q["quantity_missing_top3"]] = float(x[:3, col["quantity_missing"]].min()) if query.asks_quantity else 0.0
    out[q["top_place_mismatch"]] = x[0, col["place_mismatch"]]
    out[q["top_title_in_question"]] = x[0, col["title_in_question"]]
    return out
