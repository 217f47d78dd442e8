"""What the service is doing, for an operator: Prometheus metrics (prometheus-client) and one JSON access-log line per
request.

    metrics = ServiceMetrics()                       # its own registry: several apps may live in one process
    metrics.observe_answer(answer, timings)          # after /v1/ask
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    GET /metrics                                     # text exposition format

Metrics (all prefixed `policyqa_`): requests by route, method and status; answers by channel and outcome
(answered, refused, faq); answer latency per stage (normalize, encode, faq, retrieve…, total); rate-limited
requests; and, read at scrape time, the serving index generation, documents and chunks.

The access log names the route, never the question: no query string (GET /v1/search?q=… carries the question)
and no body, unless POLICYQA_ACCESS_LOG_QUESTIONS is set, and then masked (knowledge_base/privacy.py).
"""
from __future__ import annotations

import json
import logging
import time
from typing import Callable
from urllib.parse import unquote_plus

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from knowledge_base.models import Answer
from knowledge_base.privacy import mask_personal_info

access_log = logging.getLogger("policyqa.access")

# Answer stages take 0.1–30 ms on the full corpus (README, performance); a generative answer takes seconds.
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter("policyqa_requests", "HTTP requests by route template, method and status.",
                                ["route", "method", "status"], registry=r)
        self.answers = Counter("policyqa_answers", "Answers by channel and outcome (answered, refused, faq, blocked).",
                               ["channel", "outcome"], registry=r)
        self.refusals = Counter("policyqa_refusals", "Questions refused (nothing in the knowledge base answers them).",
                                ["channel"], registry=r)
        self.faq_hits = Counter("policyqa_faq_hits", "Questions answered from a curated FAQ entry.", ["channel"], registry=r)
        self.stage_seconds = Histogram("policyqa_answer_stage_seconds", "Answer latency per stage.", ["stage"],
                                       buckets=STAGE_BUCKETS, registry=r)
        self.rate_limited = Counter("policyqa_rate_limited", "Public requests answered 429.", registry=r)
        self.generation = Gauge("policyqa_index_generation", "Index generation being served (0: none).", registry=r)
        self.documents = Gauge("policyqa_documents", "Public documents being served.", registry=r)
        self.chunks = Gauge("policyqa_chunks", "Public chunks being served.", registry=r)

    def observe_answer(self, answer: Answer, timings: dict[str, float]) -> None:
        outcome = "blocked" if answer.blocked else "faq" if answer.faq_id else ("answered" if answer.answered else "refused")
        self.answers.labels(answer.channel, outcome).inc()
        if not answer.answered:
            self.refusals.labels(answer.channel).inc()
        if answer.faq_id:
            self.faq_hits.labels(answer.channel).inc()
        for stage, ms in timings.items():
            self.stage_seconds.labels(stage).observe(ms / 1000.0)

    def track_serving(self, health: Callable[[], dict | None]) -> None:
        """Gauges read at scrape time from `health()` (the engine's counts, or None while nothing is served)."""

        def read(key: str) -> Callable[[], float]:
            def value() -> float:
                try:
                    h = health()
                except Exception:
                    return 0.0
                return float(h.get(key, 0)) if h else 0.0

            return value

        self.generation.set_function(read("generation"))
        self.documents.set_function(read("documents"))
        self.chunks.set_function(read("chunks"))

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class ObservabilityMiddleware:
    """ASGI middleware: counts every HTTP request by route template and status, and writes one JSON access-log line."""

    def __init__(self, app, metrics: ServiceMetrics, log_questions: bool = False):
        self.app = app
        self.metrics = metrics
        self.log_questions = log_questions

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_and_record(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(route, scope.get("method", ""), str(status["code"])).inc()
            if status["code"] == 429:
                self.metrics.rate_limited.inc()
            access_log.info(self._line(scope, route, status["code"], time.perf_counter() - start))

    def _line(self, scope, route: str, status: int, seconds: float) -> str:
        client = scope.get("client")
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "method": scope.get("method"),
            "route": route,
            "path": scope.get("path") if route != "unmatched" else None,
            "status": status,
            "ms": round(seconds * 1000, 1),
            "client": client[0] if client else None,
        }
        if self.log_questions and scope.get("query_string"):
            entry["query"] = mask_personal_info(unquote_plus(scope["query_string"].decode("latin-1"), encoding="utf-8"))
        return json.dumps(entry, ensure_ascii=False)
