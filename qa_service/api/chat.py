"""OpenAI-compatible chat (issue 10): a chat front end or a 12345 system that speaks the OpenAI chat API points its
base URL at policyqa.

    client = openai.OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
    reply = client.chat.completions.create(model="policyqa-web", messages=[{"role": "user", "content": "失业保险金能领多久？"}])
    reply.choices[0].message.content        # the web rendering, then a 依据 block naming the cited articles
    reply.model_extra["policyqa"]           # {"query_id", "answered", "status", "confidence", "citations", "suggestions", "understood_question", "choices"}

    POST /v1/chat/completions   {"model": "policyqa-hotline", "messages": [...], "stream": true}   → server-sent events
    GET  /v1/models             → policyqa-web, policyqa-hotline, policyqa-newmedia

The messages are the conversation: the last user message is the question, earlier user/assistant pairs its history
(system messages are ignored: the answer comes from the knowledge base only). A refusal is a normal reply
(`policyqa.answered` false). The extra `policyqa` field is on the completion object, and on the last chunk of a
stream. Thin: validate, call the engine, shape the OpenAI format.
"""
from __future__ import annotations

import json
import re
import time
from typing import Any, Iterator, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from knowledge_base.models import Answer

from ..engine import MAX_QUESTION_CHARS, QuestionError
from ..channels import citation_name, suggestion_line
from .deps import EngineDep
from .schemas import PUBLIC_ERRORS, CitationOut, SuggestionOut, citation_json, suggestion_json

router = APIRouter(tags=["chat"])

MODELS = {"policyqa-web": "web", "policyqa-hotline": "hotline", "policyqa-newmedia": "newmedia"}
MAX_MESSAGES = 21  # ten earlier turns and the question
MAX_MESSAGE_CHARS = 4000
STREAM_PIECE_CHARS = 24  # characters per streamed chunk
_UNDERSTOOD_LINE = re.compile(r"^您是问：[^\n]*\n+")
_SOURCES_BLOCK = re.compile(r"\n+依据：\n.*\Z", re.S)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(..., description="system | user | assistant")
    content: str | list[dict[str, Any]] | None = ""

    @field_validator("role")
    @classmethod
    def _role(cls, v: str) -> str:
        if v not in ("system", "developer", "user", "assistant", "tool"):
            raise ValueError(f"unknown role {v!r}")
        return v

    def text(self) -> str:
        if isinstance(self.content, list):  # [{"type": "text", "text": "…"}]
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # temperature, max_tokens, user …: accepted, no effect

    model: str = Field("policyqa-web", description="policyqa-web | policyqa-hotline | policyqa-newmedia")
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        if v not in MODELS:
            raise ValueError(f"未知模型 / unknown model {v!r}: expected one of {', '.join(MODELS)}")
        return v


class ModelOut(BaseModel):
    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = "policyqa"


class ModelListOut(BaseModel):
    object: str = "list"
    data: list[ModelOut]


class ReplyMessageOut(BaseModel):
    role: str = "assistant"
    content: str


class ChoiceOut(BaseModel):
    index: int = 0
    message: ReplyMessageOut
    finish_reason: str = "stop"
    logprobs: None = None


class UsageOut(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class PolicyqaExtraOut(BaseModel):
    """What an OpenAI client does not know of: the answer's evidence and outcome."""

    query_id: str
    answered: bool
    status: Literal["answer", "suggest", "none"]
    confidence: float
    channel: str
    citations: list[CitationOut]
    suggestions: list[SuggestionOut] = []
    understood_question: str | None
    choices: list[str]
    script: dict[str, Any] | None
    blocked: str | None = Field(None, description="the content-safety category when the question was refused for it")


class ChatCompletionOut(BaseModel):
    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[ChoiceOut]
    usage: UsageOut
    policyqa: PolicyqaExtraOut


# With "stream": true the answer comes as server-sent events (chat.completion.chunk objects, then `data: [DONE]`).
STREAM_RESPONSE = {200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
                         "description": "a chat.completion object, or with stream: server-sent events"}}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": "invalid_request", "message": message})


def conversation_of(messages: list[ChatMessage]) -> tuple[str, list[dict]]:
    """(question, history): the last user message, and the user/assistant pairs before it. Our own replies are sent
    back as they were rendered; the understood line and the 依据 block are taken off again, so the history is the
    answer text /v1/ask would have remembered."""
    turns = [m for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise QuestionError("最后一条消息须为用户提问 / the last message must be the user's question")
    question = turns[-1].text().strip()
    if not question:
        raise QuestionError("问题不能为空 / the question must not be empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(f"问题不能超过{MAX_QUESTION_CHARS}个字 / the question must be at most {MAX_QUESTION_CHARS} characters")
    history: list[dict] = []
    for m in turns[:-1]:
        text = m.text()
        if len(text) > MAX_MESSAGE_CHARS:
            raise QuestionError(f"消息过长 / a message may hold at most {MAX_MESSAGE_CHARS} characters")
        if m.role == "user":
            history.append({"question": text.strip()[:MAX_QUESTION_CHARS], "answer": ""})
        elif history:
            history[-1]["answer"] = _SOURCES_BLOCK.sub("", _UNDERSTOOD_LINE.sub("", text)).strip()
    return question, [h for h in history if h["question"]]


def reply_text(answer: Answer) -> str:
    """The channel's rendering: 您是问 line, the answer (the hotline's whole script), a 依据 block."""
    parts = []
    if answer.understood_question:
        parts.append(f"您是问：{answer.understood_question}")
    if answer.channel == "hotline" and answer.script:
        s = answer.script.to_json()
        lines = [s.get("opening", ""), s.get("answer", "")]
        lines += [f"· {p}" for p in s.get("key_points") or [] if p not in (s.get("answer"),)]
        for key in ("notice", "suggestion", "closing"):
            if s.get(key):
                lines.append(s[key])
        parts.append("\n".join(x for x in lines if x))
    else:
        parts.append(answer.answer)
    if answer.citations:
        parts.append("依据：\n" + "\n".join(f"[{c.rank}] {citation_name(c)} {c.url}".rstrip() for c in answer.citations))
    if answer.suggestions and answer.channel != "hotline":  # the hotline script lists them already
        parts.append("参考条款：\n" + "\n".join(f"{c.rank}. {suggestion_line(c)} {c.url}".rstrip()
                                              for c in answer.suggestions))
    return "\n\n".join(p for p in parts if p)


def policyqa_extra(answer: Answer) -> dict:
    return {
        "query_id": answer.query_id,
        "answered": answer.answered,
        "status": answer.status.value,
        "confidence": answer.confidence,
        "channel": answer.channel,
        "citations": [citation_json(c) for c in answer.citations],
        "suggestions": [suggestion_json(c) for c in answer.suggestions],
        "understood_question": answer.understood_question,
        "choices": list(answer.choices),
        "script": answer.script.to_json() if answer.script is not None else None,
        "blocked": answer.blocked,  # issue 11: the content-safety category when the question was refused for it
    }


@router.get("/v1/models", response_model=ModelListOut)
def list_models():
    """The channels, as OpenAI model names."""
    return ModelListOut(data=[ModelOut(id=m) for m in MODELS])


@router.post("/v1/chat/completions", response_model=ChatCompletionOut, responses={**PUBLIC_ERRORS, **STREAM_RESPONSE})
def chat_completions(body: ChatRequest, engine: EngineDep):
    """An OpenAI chat completion answered from the knowledge base (stream: server-sent events)."""
    try:
        question, history = conversation_of(body.messages)
        answer = engine.ask(question, channel=MODELS[body.model], history=history or None)
    except QuestionError as e:
        return _error(422, str(e))
    completion_id = f"chatcmpl-{answer.query_id}"
    created = int(time.time())
    text = reply_text(answer)
    if body.stream:
        return StreamingResponse(_events(completion_id, created, body.model, text, answer), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "policyqa": policyqa_extra(answer),
    }


def _events(completion_id: str, created: int, model: str, text: str, answer: Answer) -> Iterator[str]:
    def chunk(delta: dict, finish: str | None = None, extra: dict | None = None) -> str:
        obj = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
        if extra is not None:
            obj["policyqa"] = extra
        return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for i in range(0, len(text), STREAM_PIECE_CHARS):
        yield chunk({"content": text[i:i + STREAM_PIECE_CHARS]})
    yield chunk({}, "stop", policyqa_extra(answer))
    yield "data: [DONE]\n\n"
