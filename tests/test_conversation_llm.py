"""Follow-up rewriting through the configured OpenAI-compatible endpoint (issue 10), against a tiny loopback server:
a rewrite that keeps the question's own words is used; one that drops them, an error or a reply slower than the
timeout falls back to the rule's completion."""
from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from fastapi import FastAPI, Request

from knowledge_base.settings import Settings
from test_generative import FakeChatServer as _Base

TIMEOUT = 1.0
REWRITES = {"good": "春节法定放假几天？", "drops_own_words": "国庆节放几天假？", "two_lines": "春节放几天假？\n国庆节呢？"}


class RewriteServer(_Base):
    """Answers the rewrite prompt with REWRITES[scenario] ("slow": past the timeout; "error": HTTP 500); any other
    request (the generative answer) with a reply the answer check rejects, so answers stay extractive."""

    def __init__(self):
        super().__init__()
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def complete(request: Request):
            body = await request.json()
            system = next((m.get("content", "") for m in body.get("messages", []) if m.get("role") == "system"), "")
            rewrite = "改写" in system
            if rewrite:
                self.requests.append(body)
            if rewrite and self.scenario == "slow":
                await asyncio.sleep(30)
            if rewrite and self.scenario == "error":
                from fastapi.responses import JSONResponse

                return JSONResponse(status_code=500, content={"error": "boom"})
            content = REWRITES.get(self.scenario, "") if rewrite else "资料中没有答案"
            return {"id": "x", "object": "chat.completion", "created": int(time.time()), "model": "tiny",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

        self.server.config.app = app


@pytest.fixture(scope="module")
def llm():
    with RewriteServer() as server:
        yield server


@pytest.fixture(scope="module")
def engine(small_kb, llm):
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    settings = Settings(llm_base_url=f"http://127.0.0.1:{llm.port}/v1", llm_model="tiny", llm_timeout=TIMEOUT,
                        session_store="memory")
    return QAEngine(KnowledgeBase(small_kb), settings)


def _follow_up(engine):
    sid = uuid.uuid4().hex
    engine.ask("国庆节放几天假？", session_id=sid, record=False)
    t = time.perf_counter()
    answer = engine.ask("那春节呢？", session_id=sid, record=False)
    return answer, time.perf_counter() - t


RULE = "春节放几天假？"  # the rule: the previous question asked of 春节


def test_a_good_rewrite_is_used(engine, llm):
    llm.scenario = "good"
    answer, _ = _follow_up(engine)
    assert answer.understood_question == REWRITES["good"]
    assert llm.requests and "国庆节放几天假？" in llm.requests[-1]["messages"][-1]["content"]


@pytest.mark.parametrize("scenario", ["drops_own_words", "two_lines", "error", "slow"])
def test_a_bad_or_late_rewrite_falls_back_to_the_rule(engine, llm, scenario):
    llm.scenario = scenario
    answer, seconds = _follow_up(engine)
    assert answer.understood_question == RULE
    assert "春节放假4天" in answer.answer
    assert seconds < TIMEOUT + 5  # waited for the timeout, not for the slow reply
