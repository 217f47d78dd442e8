"""Process-wide services the routes depend on, built once when the application starts (its lifespan).

    services = Services.build(kb=kb, settings=settings)
    services.engine.ask(...)            # the answering engine
    services.curation.publish(...)      # the FAQ workflow
    services.keys.verify(token)         # staff keys
    services.screen.run(question)       # content safety: the blocked-word list, shared by the engine and the staff API
    services.sessions.session_for(sid)  # conversation ids: only those the server issued continue a conversation

Every service is built here, in one place; nothing is attached later. The engine alone is created on first
use (loading the encoder takes seconds, and an empty knowledge base has none): it keeps itself current,
reloading indexes and the FAQ matcher when the knowledge base's generation counters move.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from knowledge_base.faqs import FaqService
from knowledge_base.safety import BlocklistService, ContentScreen
from knowledge_base.sessions import SessionIssuer
from knowledge_base.settings import Settings
from knowledge_base.store import KnowledgeBase, KnowledgeBaseError

from .analytics import FeedbackService, QuestionAnalytics
from .auth import KeyService
from .curation import CurationService, Embed
from .engine import QAEngine


log = logging.getLogger(__name__)


@dataclass
class Services:
    kb: KnowledgeBase
    settings: Settings
    faqs: FaqService
    keys: KeyService
    analytics: QuestionAnalytics
    feedback: FeedbackService
    screen: ContentScreen
    sessions: SessionIssuer
    curation: CurationService = field(init=False)
    _engine: "QAEngine | None" = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _warming: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def __post_init__(self) -> None:
        self.curation = CurationService(self.faqs, self.analytics, embedder=self.faq_embedder,
                                        blocklist=lambda: self.screen.blocklist)

    @classmethod
    def build(cls, kb: KnowledgeBase, settings: Settings) -> "Services":
        return cls(kb=kb, settings=settings, faqs=FaqService(kb), keys=KeyService(kb), analytics=QuestionAnalytics(kb),
                   feedback=FeedbackService(kb), screen=ContentScreen(kb, settings.reload_interval),
                   sessions=SessionIssuer(kb, settings.session_max_age))

    @property
    def blocklist(self) -> BlocklistService:
        return self.screen.service

    @property
    def engine(self) -> "QAEngine":
        """The answering engine, created on first use (KnowledgeBaseError while the knowledge base is empty)."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = QAEngine(self.kb, self.settings, screen=self.screen)
        return self._engine

    def engine_if_loaded(self) -> "QAEngine | None":
        """The engine when it is loaded, without loading it."""
        return self._engine

    def warm_up(self) -> None:
        """Load the engine in a background thread (readiness probes poll until it is there)."""
        if self._engine is not None or self._warming.is_set():
            return
        self._warming.set()

        def load() -> None:
            try:
                self.engine
            except KnowledgeBaseError as e:
                log.info("not ready: %s", e)
            except Exception:
                log.exception("the answering engine failed to load")
            finally:
                self._warming.clear()

        threading.Thread(target=load, name="policyqa-warm-up", daemon=True).start()

    def faq_embedder(self) -> Embed | None:
        """The serving encoder's `embed_queries`, so a published entry's vectors are stored once; None when the
        engine cannot start (empty knowledge base): the entry is then embedded when a server loads it."""
        try:
            return self.engine.embedder.embed_queries
        except KnowledgeBaseError:
            return None
        except Exception:  # publishing must not fail because the encoder could not load
            log.exception("no encoder for FAQ vectors; the server will embed the entry when it reloads")
            return None

