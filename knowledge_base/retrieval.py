"""Hybrid retrieval over one knowledge-base snapshot: lexical (BM25 over jieba tokens), dense (e5 + FAISS
inner product), fusion, filters, version preference and publisher / place preference.

    retriever = HybridRetriever(kb.load_snapshot())
    hits = retriever.run(RetrievalQuery(tokens=["失业", "保险金", "期限"], vector=qvec, k=5)).hits
    hits[0].doc_id, hits[0].score, hits[0].dense

A retriever is immutable once built: a new knowledge-base generation gets a new retriever, built beside
the old one and swapped in by reference (see `qa_service.engine`). Only public (主动公开) chunks can ever
be returned. Superseded versions are excluded unless the query includes them (filter or wording);
expired works (废止/失效, no version in force) stay findable but rank lower and are flagged by validity.
"""
from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import faiss
import numpy as np
from sqlalchemy import select

from .db import ChunkRow
from .models import StoredDocument, Validity
from .store import KnowledgeBase, Snapshot
from .text import fold

MODES = ("lexical", "dense", "hybrid")

# Fusion and preferences. First chosen on a 7,748-chunk slice of the corpus (every gold source plus 136 sister
# documents), then re-chosen on the full corpus (51,051 chunks) with `python -m eval.tune_retrieval` on the 98
# answerable questions of dev.jsonl + eval/questions/tune.jsonl (hit@1 / hit@5 / MRR@10, refusal disabled, top 10).
# Three fusions: "weighted" = w · BM25/best BM25 + (1 − w) · cosine min-max scaled over the candidates; "additive" =
# raw cosine + w · BM25/best BM25 (the cosine keeps its absolute scale, BM25 breaks near-ties); "rrf" (k = 60).
#   fusion, w        coverage 0             coverage 0.25          coverage 0.5           coverage 1.0
#   weighted 0.0     0.714 / 0.888          0.714 / 0.888          0.714 / 0.908
#   weighted 0.2     0.776 / 0.908          0.776 / 0.949          0.776 / 0.949
#   weighted 0.3     0.765 / 0.949 / .847   0.786 / 0.949 / .862   0.786 / 0.949 / .864   0.765 / 0.969 / .856
#   weighted 0.4     0.735 / 0.969          0.745 / 0.959          0.745 / 0.969          (the slice's choice)
#   rrf              0.714 / 0.969 / .820   0.724 / 0.969 / .827   0.735 / 0.980 / .832   0.735 / 0.959 / .831
#   additive 0.0     0.745 / 0.918 / .820   0.776 / 0.980 / .863   0.796 / 0.959 / .866   0.776 / 0.949 / .841
#   additive 0.02    0.796 / 0.959 / .869   0.786 / 0.980 / .871   0.796 / 0.949 / .866   0.765 / 0.949 / .842  ← 0.25
#   additive 0.05    0.755 / 0.969 / .855   0.786 / 0.969 / .868   0.796 / 0.949 / .866   0.765 / 0.949 / .845
#   additive 0.1     0.745 / 0.969 / .837   0.745 / 0.959 / .836   0.755 / 0.949 / .841   0.755 / 0.939 / .836
# Differences of one or two questions in 98 are noise; additive 0.02 with coverage 0.25 is best on hit@1 + hit@5 and
# on MRR, and its confidence features separate answerable from unanswerable best (see qa_service.compose).
# On the slice, the ablations of the preferences (each row changes one thing, hit@1 / hit@5):
#   all on 0.806 / 0.990 · no coverage rerank 0.786 / 0.969 · no unnamed-place penalty 0.755 / 0.980 ·
#   no named-place preference 0.776 / 0.990 · no organization boost 0.806 / 0.990 (its passages are still added
#   as candidates, which is what matters there).
FUSIONS = ("additive", "weighted", "rrf")
FUSION = "additive"
LEXICAL_WEIGHTS = {"additive": 0.02, "weighted": 0.3, "rrf": 0.0}  # the default w of each fusion (rrf ignores it)
RRF_K = 60
CANDIDATES = 100  # depth of each ranked list before fusion
# Preference factors applied to the fused score (multiplicative).
ORGANIZATION_BOOST = 1.0  # the question names this document's publisher (济南市司法局…): ×2. 0.0–2.0 measured
#                           equal on the slice (adding the office's passages as candidates is what matters there);
#                           kept so the named office outranks its near-identical sister plans on a tie.
PLACE_MATCH_BOOST = 0.25  # the question names the document's city or province: ×1.25
PLACE_MISMATCH_PENALTY = 0.5  # the question names another place than the document's: ×0.5
UNNAMED_PLACE_PENALTY = 0.2  # the question names no place: another place's local rule ranks below national ones
COVERAGE_WEIGHT = 0.25  # fused × (1 + 0.25 · share of the question's content words the passage contains)
UNKNOWN_WORD_IDF = 8.0  # a word the corpus never uses (股市, 摇号) weighs like the rarest words: it is what was asked
EXPIRED_PENALTY = 0.5  # 失效/废止 works remain findable but rank below current rules
SUPERSEDED_PENALTY = 0.1  # when superseded versions are included, the in-force one still ranks first on a tie

# Places a question or a title may name: the cities of Shandong and Zhejiang (the corpus' local rules) and
# the provinces. A city implies its province, so a provincial rule still applies to a city question.
PROVINCE_OF = {
    **{c: "山东" for c in "济南 青岛 淄博 枣庄 东营 烟台 潍坊 济宁 泰安 威海 日照 临沂 德州 聊城 滨州 菏泽".split()},
    **{c: "浙江" for c in "杭州 宁波 温州 嘉兴 湖州 绍兴 金华 衢州 舟山 台州 丽水".split()},
}
PROVINCES = ("山东", "浙江")
PLACES = tuple(sorted([*PROVINCE_OF, *PROVINCES], key=len, reverse=True))
_PLACE_RE = re.compile("|".join(PLACES))
# An office named in a title: a place, then a body ending in an office word (济南市司法局, 淄博市人民政府).
_ORG_SUFFIX = r"(?:局|委员会|委|办公室|办|厅|中心|政府|法院|检察院|管理处)"
_TITLE_ORG_RE = re.compile(rf"((?:{'|'.join(PLACES)})(?:省|市)?[\u4e00-\u9fff]{{1,12}}?{_ORG_SUFFIX})")


def place_of(text: str) -> str | None:
    """The first place a text names, without 市/省."""
    m = _PLACE_RE.search(text or "")
    return m.group(0) if m else None


def organizations_in_title(title: str) -> list[str]:
    """Offices a document title names, e.g. 济南市司法局 in 济南市司法局2025年政务公开工作实施方案."""
    return [m.group(1) for m in _TITLE_ORG_RE.finditer(fold(title))]


@dataclass(frozen=True)
class RetrievalFilters:
    """Hard filters from the request (HTTP `filters`)."""

    publisher: str | None = None  # substring of 发布机构 (or of the title, for plans named after their office)
    region: str | None = None  # 济南 / 淄博 / 台州 / 山东 / 浙江 …
    include_superseded: bool = False


@dataclass
class RetrievalQuery:
    tokens: list[str]  # jieba search-mode tokens, as indexed
    vector: np.ndarray | None  # the L2-normalized query embedding (None: no dense stage)
    k: int = 10
    mode: str = "hybrid"  # lexical | dense | hybrid
    filters: RetrievalFilters = field(default_factory=RetrievalFilters)
    organization: str | None = None  # soft preference: an organization the question names
    region: str | None = None  # soft preference: a place the question names
    include_history: bool = False  # the wording asks for earlier versions
    words: list[str] = field(default_factory=list)  # content words (what the question is about), for coverage


@dataclass
class Hit:
    position: int  # index position (aligned with snapshot.chunks)
    row_id: int  # chunks.id
    doc_id: str
    score: float  # fused and preference-adjusted; comparable within one result list only
    lexical: float  # raw BM25 score (0: no shared token)
    dense: float  # cosine similarity with the query (nan without a query vector)
    coverage: float = 0.0  # idf-weighted share of the question's content words found in the passage (title incl.)


@dataclass
class Retrieved:
    """The ranked passages, and how close the encoder found anything in the allowed knowledge base at all."""

    hits: list[Hit]
    best_dense: float = math.nan  # the highest cosine over every allowed passage (nan without a query vector)


@dataclass
class ChunkText:
    row_id: int
    doc_id: str
    section_path: str
    anchor: str
    text: str
    embed_text: str


class HybridRetriever:
    """One snapshot's retriever. `run(RetrievalQuery) -> Retrieved`; thread-safe (read-only arrays, locked caches)."""

    def __init__(self, snapshot: Snapshot, fusion: str = FUSION, lexical_weight: float | None = None,
                 home_region: str | None = None):
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, not {fusion!r}")
        self.snapshot = snapshot
        self.fusion = fusion
        self.lexical_weight = LEXICAL_WEIGHTS[fusion] if lexical_weight is None else lexical_weight
        self.home_region = (home_region or "").removesuffix("市").removesuffix("省") or None
        ix, meta = snapshot.indexes, snapshot.chunks
        self.size = len(ix)
        self.row_ids = np.asarray(meta.row_ids, dtype=np.int64)
        self.doc_index = np.asarray(meta.doc_index, dtype=np.int32)
        self.doc_ids = list(meta.doc_ids)
        docs = [snapshot.documents[d] for d in self.doc_ids]
        self.documents: dict[str, StoredDocument] = snapshot.documents
        self._doc_title = [fold(d.meta.title).replace(" ", "") for d in docs]
        self._doc_publisher = [fold(d.meta.publisher or "").replace(" ", "") for d in docs]
        self._doc_place = [_document_place(d) for d in docs]
        validity = np.array([d.validity.value for d in docs], dtype=object)
        public = np.asarray(meta.public, dtype=bool)
        chunk_validity = validity[self.doc_index] if self.size else np.zeros(0, object)
        self._public = public
        self._superseded = chunk_validity == Validity.SUPERSEDED.value
        self._expired = chunk_validity == Validity.EXPIRED.value
        self._base_factor = np.where(self._expired, 1.0 - EXPIRED_PENALTY, 1.0).astype(np.float32)
        self._unnamed_place_factor = self._local_factor()
        self._dense_matrix = _flat_matrix(ix.dense) if ix.dense is not None else None
        self._bm25 = ix.bm25
        self._idf = self._build_idf()
        self._mask_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._scope_cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ public API
    @property
    def generation(self) -> int:
        return self.snapshot.generation

    @property
    def public_chunks(self) -> int:
        return int(self._public.sum())

    def organizations(self) -> list[str]:
        """Organizations the public documents name (publishers, and offices in plan titles), for query hints."""
        orgs: set[str] = set()
        for i, d in enumerate(self.doc_ids):
            doc = self.documents[d]
            if doc.meta.disclosure.value != "主动公开":
                continue
            if self._doc_publisher[i]:
                orgs.add(self._doc_publisher[i])
            orgs.update(organizations_in_title(doc.meta.title))
        return sorted(orgs)

    def idf(self, token: str) -> float:
        """BM25 idf of a token in this snapshot (0 for tokens the corpus never uses)."""
        return self._idf.get(token, 0.0)

    def run(self, query: RetrievalQuery, timings: dict | None = None) -> Retrieved:
        """The k best public chunks for a query; `timings` receives lexical / dense / fuse milliseconds."""
        timings = timings if timings is not None else {}
        if query.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {query.mode!r}")
        if self.size == 0:
            return Retrieved([])
        mask = self._mask(query.filters, query.include_history)
        if not mask.any():
            return Retrieved([])
        use_lexical = query.mode in ("lexical", "hybrid")
        use_dense = query.mode in ("dense", "hybrid") and query.vector is not None
        t = time.perf_counter()
        lexical = self._lexical_scores(query.tokens)  # also informs confidence in dense mode
        timings["lexical"] = _ms(t)
        t = time.perf_counter()
        dense = self._dense_scores(query.vector) if query.vector is not None else None
        timings["dense"] = _ms(t)
        t = time.perf_counter()
        lists = []
        if use_lexical and lexical is not None:
            lists.append(("lexical", lexical))
        if use_dense and dense is not None:
            lists.append(("dense", dense))
        # how close anything allowed comes to the question (the composer's confidence), whatever the mode
        best_dense = float(dense[mask].max()) if dense is not None else math.nan
        if not lists:
            return Retrieved([], best_dense)
        scope = self._scope(query.organization)
        ranked: dict[str, np.ndarray] = {}
        for name, scores in lists:
            top = _top_positions(scores, mask, CANDIDATES, positive_only=(name == "lexical"))
            # The named organization's own passages are always candidates, even when sister documents
            # with near-identical text fill the global top list.
            if scope is not None:
                top = _merge_ranked(scores, top, _top_positions(scores, mask & scope, 20, name == "lexical"))
            ranked[name] = top
        positions = np.unique(np.concatenate(list(ranked.values())))
        if len(positions) == 0:
            return Retrieved([], best_dense)
        fused = self._fuse(positions, lexical, dense, ranked.get("lexical"), ranked.get("dense"))
        covered = self.coverage(query.words, positions)
        fused = fused * self._preference(query, positions) * (1.0 + COVERAGE_WEIGHT * covered)
        order = np.argsort(-fused, kind="stable")[: query.k]
        timings["fuse"] = _ms(t)
        hits = []
        for i in order:
            pos = int(positions[i])
            hits.append(
                Hit(
                    position=pos,
                    row_id=int(self.row_ids[pos]),
                    doc_id=self.doc_ids[self.doc_index[pos]],
                    score=float(fused[i]),
                    lexical=float(lexical[pos]) if lexical is not None else 0.0,
                    dense=float(dense[pos]) if dense is not None else math.nan,
                    coverage=float(covered[i]),
                )
            )
        return Retrieved(hits, best_dense)

    def coverage(self, words: list[str], positions: np.ndarray) -> np.ndarray:
        """Per position, the idf-weighted share of `words` its indexed text (title, section, passage) contains;
        read from the BM25 index's postings, so no passage text is fetched."""
        positions = np.asarray(positions, dtype=np.int64)
        out = np.zeros(len(positions), np.float64)
        if not words or self._bm25 is None or len(positions) == 0:
            return out
        vocab = self._bm25.vocab_dict
        indptr, indices = self._postings
        total = 0.0
        for word in dict.fromkeys(words):
            token_id = vocab.get(word)
            if token_id is None or token_id >= len(indptr) - 1:
                total += UNKNOWN_WORD_IDF
                continue
            weight = self._idf_by_id[token_id]
            total += weight
            out += weight * np.isin(positions, indices[indptr[token_id] : indptr[token_id + 1]])
        return out / total if total else out

    def document_of(self, hit: Hit) -> StoredDocument:
        return self.documents[hit.doc_id]

    def docs_matching(self, filters: RetrievalFilters) -> set[str]:
        """Doc ids a filter admits (public only), for listing and tests."""
        mask = self._doc_mask(filters)
        return {d for i, d in enumerate(self.doc_ids) if mask[i]}

    # ------------------------------------------------------------------ stages
    def _lexical_scores(self, tokens: list[str]) -> np.ndarray | None:
        if self._bm25 is None:
            return None
        vocab = self._bm25.vocab_dict
        ids = [vocab[t] for t in tokens if t in vocab]
        if not ids:
            return np.zeros(self.size, np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(ids), dtype=np.float32)

    def _dense_scores(self, vector: np.ndarray) -> np.ndarray | None:
        q = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(-1))
        if self._dense_matrix is not None:
            return self._dense_matrix @ q
        # A non-flat index: ask it for a deep list and leave the rest at -1.
        scores = np.full(self.size, -1.0, np.float32)
        s, p = self.snapshot.indexes.dense_search(q, min(self.size, 4 * CANDIDATES))
        scores[p] = s
        return scores

    def _fuse(self, positions, lexical, dense, lex_ranked, dense_ranked) -> np.ndarray:
        """One score per candidate position; a single list keeps its own (scaled) scores."""
        n = len(positions)
        if dense_ranked is None:
            top = max(float(lexical[lex_ranked[0]]), 1e-9) if len(lex_ranked) else 1.0
            return lexical[positions] / top
        if lex_ranked is None:
            return np.maximum(dense[positions], 0.0)
        if self.fusion == "additive":  # raw cosine plus a BM25 bonus: the cosine keeps its absolute scale
            top_lex = max(float(lexical[positions].max()), 1e-9)
            return (np.maximum(dense[positions], 0.0) + self.lexical_weight * lexical[positions] / top_lex).astype(np.float32)
        if self.fusion == "rrf":
            out = np.zeros(n, np.float64)
            for ranked in (lex_ranked, dense_ranked):
                rank_of = {int(p): r for r, p in enumerate(ranked)}
                out += np.array([1.0 / (RRF_K + rank_of[int(p)] + 1) if int(p) in rank_of else 0.0 for p in positions])
            return out.astype(np.float32)
        # weighted: BM25 scaled by the best candidate, cosine scaled between the list's worst and best
        top_lex = max(float(lexical[positions].max()), 1e-9)
        lex = lexical[positions] / top_lex
        d = dense[positions]
        d_lo = float(dense[dense_ranked[-1]]) if len(dense_ranked) else float(d.min())
        d_hi = float(d.max())
        dn = np.clip((d - d_lo) / max(d_hi - d_lo, 1e-6), 0.0, 1.0)
        w = self.lexical_weight
        return (w * lex + (1 - w) * dn).astype(np.float32)

    # ------------------------------------------------------------------ masks and preferences
    def _doc_mask(self, filters: RetrievalFilters) -> np.ndarray:
        out = np.ones(len(self.doc_ids), dtype=bool)
        if filters.publisher:
            f = fold(filters.publisher).replace(" ", "")
            out &= np.array([f in p or f in t for p, t in zip(self._doc_publisher, self._doc_title)], dtype=bool)
        if filters.region:
            r = fold(filters.region).replace(" ", "").removesuffix("市").removesuffix("省")
            out &= np.array([_place_admits(r, place, self.documents[d].meta.region)
                             for place, d in zip(self._doc_place, self.doc_ids)], dtype=bool)
        return out

    def _mask(self, filters: RetrievalFilters, include_history: bool) -> np.ndarray:
        key = (filters, include_history)
        with self._lock:
            cached = self._mask_cache.get(key)
            if cached is not None:
                self._mask_cache.move_to_end(key)
                return cached
        mask = self._public.copy()
        if not (filters.include_superseded or include_history):
            mask &= ~self._superseded
        if filters.publisher or filters.region:
            mask &= self._doc_mask(filters)[self.doc_index]
        with self._lock:
            self._mask_cache[key] = mask
            while len(self._mask_cache) > 64:
                self._mask_cache.popitem(last=False)
        return mask

    def _scope(self, organization: str | None) -> np.ndarray | None:
        """Chunk positions of the documents a named organization published (or whose title names it)."""
        if not organization:
            return None
        key = ("org", organization)
        with self._lock:
            cached = self._scope_cache.get(key)
        if cached is None:
            org = fold(organization).replace(" ", "")
            docs = np.array([org == p or org in t for p, t in zip(self._doc_publisher, self._doc_title)], dtype=bool)
            cached = docs[self.doc_index] if docs.any() else np.zeros(0, bool)
            with self._lock:
                self._scope_cache[key] = cached
                while len(self._scope_cache) > 256:
                    self._scope_cache.popitem(last=False)
        return cached if len(cached) else None

    def _preference(self, query: RetrievalQuery, positions: np.ndarray) -> np.ndarray:
        """Multiplicative preference per candidate position: validity, the named organization, the named place."""
        docs = self.doc_index[positions]
        factor = self._base_factor[positions].copy()
        if query.filters.include_superseded or query.include_history:
            factor[self._superseded[positions]] *= 1.0 - SUPERSEDED_PENALTY
        scope = self._scope(query.organization)
        if scope is not None:
            factor[scope[positions]] *= 1.0 + ORGANIZATION_BOOST
        if query.region:
            factor *= self._place_factor(query.region)[docs]
        elif UNNAMED_PLACE_PENALTY:
            factor *= self._unnamed_place_factor[docs]
        return factor

    def _local_factor(self) -> np.ndarray:
        """Factor per document when the question names no place: national rules and the home region's own
        (and its province's) rules apply to the asker; other places' local rules probably do not."""
        home = self.home_region
        home_province = PROVINCE_OF.get(home, home) if home else None

        def applies(place: str | None) -> bool:
            return place is None or (home is not None and place in (home, home_province))

        return np.array([1.0 if applies(p) else 1.0 - UNNAMED_PLACE_PENALTY for p in self._doc_place], np.float32)

    def _place_factor(self, region: str) -> np.ndarray:
        key = ("place", region)
        with self._lock:
            cached = self._scope_cache.get(key)
        if cached is not None:
            return cached
        asked_province = PROVINCE_OF.get(region, region)
        out = np.ones(len(self.doc_ids), np.float32)
        for i, place in enumerate(self._doc_place):
            if place is None:
                continue  # national rules apply everywhere
            if place == region or (place == asked_province and region != asked_province):
                out[i] = 1.0 + PLACE_MATCH_BOOST
            elif region == asked_province and PROVINCE_OF.get(place) == region:
                out[i] = 1.0  # a city rule when the question names only the province: neutral
            else:
                out[i] = 1.0 - PLACE_MISMATCH_PENALTY
        with self._lock:
            self._scope_cache[key] = out
        return out

    def _build_idf(self) -> dict[str, float]:
        if self._bm25 is None:
            self._postings = (np.zeros(1, np.int64), np.zeros(0, np.int64))
            self._idf_by_id = np.zeros(0)
            return {}
        indptr = np.asarray(self._bm25.scores["indptr"])
        self._postings = (indptr, np.asarray(self._bm25.scores["indices"]))
        df = np.diff(indptr)
        n = max(self.size, 1)
        self._idf_by_id = np.log1p((n - df + 0.5) / (df + 0.5))
        return {tok: float(self._idf_by_id[i]) for tok, i in self._bm25.vocab_dict.items() if i < len(self._idf_by_id)}


class ChunkTexts:
    """Fetches the text of the chunks an answer cites (one indexed query), with a small per-generation cache.

        texts = ChunkTexts(kb)
        texts.get(generation, [17, 42])   # -> {17: ChunkText(...), 42: ChunkText(...)}
    """

    def __init__(self, kb: KnowledgeBase, capacity: int = 4096):
        self.kb = kb
        self.capacity = capacity
        self._cache: OrderedDict[int, ChunkText] = OrderedDict()
        self._generation: int | None = None
        self._lock = threading.Lock()

    def get(self, generation: int, row_ids: list[int]) -> dict[int, ChunkText]:
        with self._lock:
            if generation != self._generation:
                self._cache.clear()
                self._generation = generation
            out = {r: self._cache[r] for r in row_ids if r in self._cache}
        missing = [r for r in row_ids if r not in out]
        if missing:
            with self.kb.session() as s:
                rows = s.execute(
                    select(ChunkRow.id, ChunkRow.doc_id, ChunkRow.section_path, ChunkRow.anchor, ChunkRow.text,
                           ChunkRow.embed_text).where(ChunkRow.id.in_(missing))
                ).all()
            fetched = {r.id: ChunkText(r.id, r.doc_id, r.section_path, r.anchor, r.text, r.embed_text) for r in rows}
            out.update(fetched)
            with self._lock:
                if generation == self._generation:
                    self._cache.update(fetched)
                    while len(self._cache) > self.capacity:
                        self._cache.popitem(last=False)
        return out


# ---------------------------------------------------------------------- helpers
def _flat_matrix(index: faiss.Index) -> np.ndarray | None:
    """A zero-copy view of a flat index's vectors, so one matrix-vector product scores every chunk."""
    flat = faiss.downcast_index(index)
    if not isinstance(flat, faiss.IndexFlat) or flat.ntotal == 0:
        return None
    xb = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d)
    return np.asarray(xb, dtype=np.float32).reshape(flat.ntotal, flat.d)


def _ms(t: float) -> float:
    return (time.perf_counter() - t) * 1000


def _top_positions(scores: np.ndarray, mask: np.ndarray, n: int, positive_only: bool) -> np.ndarray:
    """Positions of the n best scores among allowed positions, best first."""
    allowed = np.flatnonzero(mask)
    if len(allowed) == 0:
        return np.zeros(0, np.int64)
    s = scores[allowed]
    if positive_only:
        keep = s > 0
        allowed, s = allowed[keep], s[keep]
    if len(allowed) > n:
        part = np.argpartition(-s, n - 1)[:n]
        allowed, s = allowed[part], s[part]
    return allowed[np.argsort(-s, kind="stable")]


def _merge_ranked(scores: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Union of two ranked position lists, re-ranked by score."""
    merged = np.unique(np.concatenate([a, b]))
    return merged[np.argsort(-scores[merged], kind="stable")]


def _document_place(doc: StoredDocument) -> str | None:
    """The city or province a document belongs to: the place its title starts with, else its region field."""
    title = fold(doc.meta.title).replace(" ", "")
    place = place_of(title[:12])
    if place is None and doc.meta.region:
        r = fold(doc.meta.region).removesuffix("市").removesuffix("省")
        place = r if r in PLACES else None
    return place


def _place_admits(asked: str, place: str | None, region: str | None) -> bool:
    if place is None:
        r = (region or "").removesuffix("市").removesuffix("省")
        return bool(r) and (r == asked or r.startswith(asked))
    return place == asked or PROVINCE_OF.get(place) == asked
