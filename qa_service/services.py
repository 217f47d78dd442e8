"""Process-wide services the routes depend on: the knowledge base, the answering engine, FAQ curation.

    services = Services(kb=kb, settings=settings)
    services.engine.ask(...)

The engine is created lazily (loading the encoder takes seconds) and keeps itself current: it
reloads indexes and the FAQ matcher when the knowledge base's generation counters move.
"""
from __future__ import annotations

import threading
from functools import cached_property

from knowledge_base.faqs import FaqService
from knowledge_base.settings import Settings
from knowledge_base.store import KnowledgeBase


class Services:
    def __init__(self, kb: KnowledgeBase, settings: Settings):
        self.kb = kb
        self.settings = settings
        self._lock = threading.Lock()

    @cached_property
    def faqs(self) -> FaqService:
        return FaqService(self.kb)

    @cached_property
    def engine(self):
        from .engine import QAEngine

        with self._lock:
            return QAEngine(self.kb, self.settings)
