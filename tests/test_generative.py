"""Generative mode against a tiny OpenAI-compatible server on loopback: a grounded answer is used; an answer
citing a passage that was not given, an unsupported number, or a reply slower than the timeout falls back
to the extractive answer."""
from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest
import uvicorn
from fastapi import FastAPI, Request

from knowledge_base.settings import Settings

QUESTION = "失业保险金的标准由谁确定？"
REPLIES = {
    "good": "失业保险金的标准由省、自治区、直辖市人民政府确定[1]，低于当地最低工资标准、高于城市居民最低生活保障标准[1]。",
    "missing_passage": "失业保险金的标准由省、自治区、直辖市人民政府确定[7]。",
    "made_up_number": "失业保险金的标准由省、自治区、直辖市人民政府确定，每月不低于3000元[1]。",
    "slow": "失业保险金的标准由省、自治区、直辖市人民政府确定[1]。",
}
TIMEOUT = 1.0
SLOW_REPLY_SECONDS = 30.0  # far beyond the timeout: a client that waited for it would be obvious


class FakeChatServer:
    """/v1/chat/completions answering with REPLIES[scenario]; `slow` sleeps past the client's timeout."""

    def __init__(self):
        self.scenario = "good"
        self.requests: list[dict] = []
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def complete(request: Request):
            body = await request.json()
            self.requests.append(body)
            if self.scenario == "slow":
                await asyncio.sleep(SLOW_REPLY_SECONDS)
            return {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "tiny"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": REPLIES[self.scenario]},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=1)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started and time.time() < deadline:
            time.sleep(0.05)
        assert self.server.started, "fake chat server did not start"
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def chat_server():
    with FakeChatServer() as server:
        yield server


@pytest.fixture(scope="module")
def engine(small_kb, chat_server):
    from knowledge_base.store import KnowledgeBase
    from qa_service.engine import QAEngine

    settings = Settings(llm_base_url=f"http://127.0.0.1:{chat_server.port}/v1", llm_model="tiny", llm_api_key="test-key",
                        llm_timeout=TIMEOUT)
    return QAEngine(KnowledgeBase(small_kb), settings)


def test_grounded_generative_answer_is_used(engine, chat_server):
    chat_server.scenario = "good"
    answer = engine.ask(QUESTION, record=False)
    assert answer.answered and answer.answer.startswith("失业保险金的标准由省、自治区、直辖市人民政府确定[1]")
    assert answer.citations[0].title == "失业保险条例" and "第十八条" in answer.citations[0].quote
    sent = chat_server.requests[-1]["messages"]
    assert "[1]" in sent[-1]["content"] and QUESTION in sent[-1]["content"]
    hotline = engine.ask(QUESTION, channel="hotline", record=False)
    assert "[1]" not in hotline.answer and "[1]" not in hotline.script.answer


@pytest.mark.parametrize("scenario", ["missing_passage", "made_up_number", "slow"])
def test_unusable_generative_answer_falls_back_to_extractive(engine, chat_server, scenario):
    chat_server.scenario = scenario
    started = time.perf_counter()
    answer = engine.ask(QUESTION, record=False)
    assert answer.answered
    assert answer.answer.startswith("根据《失业保险条例》第十八条："), answer.answer
    assert "[7]" not in answer.answer and "3000" not in answer.answer
    if scenario == "slow":
        assert time.perf_counter() - started < SLOW_REPLY_SECONDS / 2  # gave up at the timeout, did not wait


def test_refusals_never_reach_the_model(engine, chat_server):
    chat_server.scenario = "good"
    before = len(chat_server.requests)
    answer = engine.ask("今天股市行情怎么样？", record=False)
    assert not answer.answered and len(chat_server.requests) == before


def test_marker_and_support_checks():
    from qa_service.generative import check

    passages = ["第十七条 累计缴费时间满1年不足5年的，领取失业保险金的期限最长为12个月。"]
    assert check("累计缴费满1年不足5年的，领取失业保险金的期限最长为12个月。[1]", passages) is None
    assert "no [n] markers" in check("领取失业保险金的期限最长为12个月。", passages)
    assert "[2]" in check("领取失业保险金的期限最长为12个月[2]。", passages)
    assert "36" in check("领取失业保险金的期限最长为36个月[1]。", passages)
    assert "not supported" in check("申请人还需要提供社区出具的居住证明材料[1]。", passages)
