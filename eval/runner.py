"""Run gold questions through the answering service and score them.

    backend = InProcessBackend(Path("/work/devkb/demo"))          # QAEngine.ask(..., record=False)
    backend = HttpBackend("http://127.0.0.1:8000")                 # POST /v1/ask, the public API only
    run = run_eval(backend, load_gold(Path("dev.jsonl")), modes=["lexical", "hybrid_faq"], top_k=5)
    run.modes["hybrid_faq"].metrics.hit_at_5

In process, every retrieval mode can be asked of the same engine on the same knowledge base in one run.
Over HTTP only the mode the server answers with exists (the public contract has no mode field): it is
reported as mode "served".
"""
from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Protocol, Sequence

from knowledge_base.settings import get_settings
from knowledge_base.store import KnowledgeBase
from qa_service.engine import QAEngine

from .gold import GoldQuestion
from .metrics import Metrics, QuestionScore, Returned, score_question, summarize

MODES = ("lexical", "dense", "hybrid", "hybrid_faq")  # qa_service's AnswerMode values (eval reads the public API)
SERVED_MODE = "served"
DISABLED_REFUSAL = -1e9  # a threshold no confidence is below: the engine answers everything


class Backend(Protocol):
    kind: str

    def modes(self) -> tuple[str, ...]: ...

    def ask(self, question: str, *, mode: str, top_k: int) -> Returned: ...

    def describe(self) -> dict: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------- machine description


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_info() -> dict:
    return {
        "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "python": platform.python_version(),
        "load_average": load_average(),
    }


def _stage_timings(answer) -> dict[str, float] | None:
    """Per-stage milliseconds if the engine exposes them on the answer (attribute names tried in order)."""
    for name in ("stage_ms", "stages_ms", "timings_ms", "timings", "stage_timings"):
        value = getattr(answer, name, None)
        if isinstance(value, dict) and value:
            return {str(k): float(v) for k, v in value.items() if isinstance(v, (int, float))}
    return None


# ---------------------------------------------------------------- backends


class InProcessBackend:
    """The Python API: QAEngine over a knowledge-base directory, with record=False (evaluation is not traffic)."""

    kind = "in-process"

    def __init__(self, kb, refusal_threshold: float | None = None, config=None, judge: str | None = None):
        """`kb`: a KnowledgeBase or a directory (None: the configured default); `config`: an AnswerConfig
        (knowledge_base.config) to answer under; `judge`: "auto" or "off" (POLICYQA_JUDGE)."""
        self.kb = kb if isinstance(kb, KnowledgeBase) else KnowledgeBase.open(kb)
        settings = get_settings()
        if refusal_threshold is not None:
            settings = settings.model_copy(update={"refusal_threshold": refusal_threshold})
        if judge is not None:
            settings = settings.model_copy(update={"judge": judge})
        self.settings = settings
        self.engine = QAEngine(self.kb, settings, config=config)

    def modes(self) -> tuple[str, ...]:
        return MODES

    def ask(self, question: str, *, mode: str, top_k: int) -> Returned:
        stages: dict[str, float] = {}
        t0 = time.perf_counter()
        try:
            a = self.engine.ask(question, channel="web", top_k=top_k, mode=mode, record=False, timings=stages)
        except Exception as e:  # one bad question must not end the run; it is scored as an error
            return Returned(None, latency_ms=(time.perf_counter() - t0) * 1000, error=f"{type(e).__name__}: {e}")
        return Returned.from_model(a, (time.perf_counter() - t0) * 1000, dict(stages) or _stage_timings(a))

    def describe(self) -> dict:
        enc = self.kb.encoder()
        return {
            "backend": self.kind,
            "kb": str(self.kb.directory),
            "counts": self.kb.counts(),
            "generation": self.kb.state().generation,
            "model": enc.model_id if enc else None,
            "refusal_threshold": self.engine.refusal_threshold,
            "judge": self.engine.state.judge_id or None,
            "faq_threshold": getattr(self.settings, "faq_threshold", None),
        }

    def close(self) -> None:
        pass


class HttpBackend:
    """A running server, through the public API only: POST /v1/ask and GET /healthz."""

    kind = "http"

    def __init__(self, url: str, timeout: float = 60.0, max_rate_limit_wait: float = 120.0, api_key: str | None = None):
        import httpx  # lazy: httpx costs 0.05-0.08 s at every policyqa command's start-up; only --url needs it

        self.url = url.rstrip("/")
        # A staff key is not rate-limited (the server's rule for 12345 operators sharing one address).
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)
        self.max_rate_limit_wait = max_rate_limit_wait
        self.rate_limited = 0  # 429s waited out (the wait is not part of any latency)

    def modes(self) -> tuple[str, ...]:
        return (SERVED_MODE,)

    def ask(self, question: str, *, mode: str, top_k: int) -> Returned:
        import httpx  # lazy: httpx costs 0.05-0.08 s at every policyqa command's start-up; only --url needs it

        body = {"question": question, "channel": "web", "top_k": top_k}
        waited = 0.0
        while True:
            t0 = time.perf_counter()
            try:
                resp = self.client.post("/v1/ask", json=body)
            except httpx.HTTPError as e:
                return Returned(None, latency_ms=(time.perf_counter() - t0) * 1000, error=f"{type(e).__name__}: {e}")
            ms = (time.perf_counter() - t0) * 1000
            if resp.status_code == 429 and waited < self.max_rate_limit_wait:
                # the server's per-client rate limit: wait as told and ask again
                delay = _retry_after(resp.headers.get("Retry-After"))
                self.rate_limited += 1
                waited += delay
                time.sleep(delay)
                continue
            break
        if resp.status_code != 200:
            return Returned(None, latency_ms=ms, error=f"HTTP {resp.status_code}: {resp.text[:300]}")
        try:
            return Returned.from_api(resp.json(), ms)
        except (ValueError, KeyError, TypeError) as e:
            return Returned(None, latency_ms=ms, error=f"response not in the /v1/ask contract: {e}: {resp.text[:300]}")

    def describe(self) -> dict:
        info: dict = {"backend": self.kind, "url": self.url}
        try:
            resp = self.client.get("/healthz")
            info["healthz"] = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else resp.text
        except Exception as e:  # the run itself will show whether the server answers
            info["healthz"] = f"unavailable: {e}"
        health = info.get("healthz")
        if isinstance(health, dict):
            enc = health.get("encoder")
            info["model"] = health.get("model") or health.get("model_id") or (enc.get("model_id") if isinstance(enc, dict) else enc)
        return info

    def close(self) -> None:
        self.client.close()


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value), 0.5), 60.0)
    except (TypeError, ValueError):
        return 2.0


# ---------------------------------------------------------------- the run


@dataclass
class ModeRun:
    mode: str
    scored: list[QuestionScore]
    metrics: Metrics
    refusal_threshold: float | None = None  # the threshold the answers were produced with, when known
    sweep_scored: list[QuestionScore] | None = None  # a second pass with refusal disabled (in process, --sweep)


@dataclass
class EvalRun:
    gold_path: str
    top_k: int
    backend: dict
    machine: dict
    modes: dict[str, ModeRun] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def ask_all(
    backend: Backend,
    questions: Sequence[GoldQuestion],
    *,
    mode: str,
    top_k: int,
    on_done: Callable[[GoldQuestion, Returned], None] | None = None,
) -> list[QuestionScore]:
    """One untimed warm-up ask (model load, caches), then every question once, in file order."""
    if questions:
        backend.ask(questions[0].question, mode=mode, top_k=top_k)
    scored = []
    for q in questions:
        r = backend.ask(q.question, mode=mode, top_k=top_k)
        scored.append(score_question(q, r))
        if on_done:
            on_done(q, r)
    return scored


def run_eval(
    backend: Backend,
    questions: Sequence[GoldQuestion],
    *,
    gold_path: str = "",
    modes: Sequence[str] | None = None,
    top_k: int = 5,
    sweep_backend: Backend | None = None,
    on_done: Callable[[GoldQuestion, Returned], None] | None = None,
) -> EvalRun:
    """Ask every question in every mode and score it. With `sweep_backend` (an engine whose refusal is
    disabled), the questions refused in a mode are asked again there, so the sweep sees the citations a lower
    threshold would have let through (answered questions would come back the same)."""
    modes = list(modes or backend.modes())
    unknown = [m for m in modes if m not in backend.modes()]
    if unknown:
        raise ValueError(f"mode(s) {unknown} not available with the {backend.kind} backend (available: {backend.modes()})")
    machine = machine_info()
    run = EvalRun(gold_path=gold_path, top_k=top_k, backend=backend.describe(), machine=machine)
    for mode in modes:
        scored = ask_all(backend, questions, mode=mode, top_k=top_k, on_done=on_done)
        mr = ModeRun(mode, scored, summarize(scored), run.backend.get("refusal_threshold"))
        if sweep_backend is not None:
            mr.sweep_scored = [
                # only a refused answer can differ with refusal disabled: re-ask just those
                score_question(s.question, sweep_backend.ask(s.question.question, mode=mode, top_k=top_k))
                if s.refused else s
                for s in scored
            ]
        run.modes[mode] = mr
    run.machine["load_average_end"] = load_average()
    if isinstance(backend, HttpBackend) and backend.rate_limited:
        run.notes.append(f"the server rate-limited {backend.rate_limited} request(s); waits excluded from latency")
    return run
