"""OpenAI-compatible chat (issue 10), tested the way sites will use it: the real `openai` client and LangChain's
`ChatOpenAI` pointed at a real `policyqa serve` over small_kb."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def server(small_kb, tmp_path_factory):
    from browser_support import ApiServer, copy_kb

    kb_dir = copy_kb(small_kb, tmp_path_factory.mktemp("chat") / "kb")
    with ApiServer(kb_dir, name="chat") as api:
        yield api


@pytest.fixture(scope="module")
def client(server):
    import openai

    return openai.OpenAI(base_url=server.url + "/v1", api_key="not-needed", timeout=120, max_retries=0)


QUESTION = "失业保险金的标准由谁确定？"


def test_models_are_the_channels(client):
    assert sorted(m.id for m in client.models.list()) == ["policyqa-hotline", "policyqa-newmedia", "policyqa-web"]


def test_a_whole_reply_quotes_the_rule_and_lists_its_sources(client):
    reply = client.chat.completions.create(model="policyqa-web", messages=[{"role": "user", "content": QUESTION}])
    text = reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop" and reply.model == "policyqa-web"
    assert text.startswith("根据《失业保险条例》第十八条")
    assert "\n依据：\n[1] 《失业保险条例》第十八条" in text
    extra = reply.model_extra["policyqa"]
    assert extra["answered"] is True and extra["citations"][0]["title"] == "失业保险条例"


def test_a_streamed_reply_arrives_in_chunks_and_adds_up_to_the_whole(client):
    whole = client.chat.completions.create(model="policyqa-web", messages=[{"role": "user", "content": QUESTION}])
    stream = client.chat.completions.create(model="policyqa-web", messages=[{"role": "user", "content": QUESTION}],
                                            stream=True)
    chunks = list(stream)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 3
    assert "".join(pieces) == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["policyqa"]["citations"]


def test_the_messages_are_the_conversation(client):
    first = client.chat.completions.create(model="policyqa-web", messages=[{"role": "user", "content": "国庆节放几天假？"}])
    messages = [
        {"role": "system", "content": "你是政务助手"},
        {"role": "user", "content": "国庆节放几天假？"},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "那春节呢？"},
    ]
    reply = client.chat.completions.create(model="policyqa-web", messages=messages)
    text = reply.choices[0].message.content
    assert text.startswith("您是问：春节放几天假？")  # the previous question asked of 春节
    assert "春节放假4天" in text and "《全国年节及纪念日放假办法》第二条" in text
    assert reply.model_extra["policyqa"]["understood_question"]


def test_hotline_reply_is_the_script_and_a_refusal_is_a_normal_reply(client):
    script = client.chat.completions.create(model="policyqa-hotline", messages=[{"role": "user", "content": QUESTION}])
    assert script.choices[0].message.content.startswith("您好，关于您咨询的问题：")
    refused = client.chat.completions.create(model="policyqa-newmedia",
                                             messages=[{"role": "user", "content": "股票交易印花税税率是多少？"}])
    assert refused.model_extra["policyqa"]["answered"] is False
    assert "12345" in refused.choices[0].message.content and "依据：\n" not in refused.choices[0].message.content


def test_bad_requests_get_422_with_error_and_message(server, client):
    import httpx
    import openai

    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    r = httpx.post(server.url + "/v1/chat/completions",
                   json={"model": "policyqa-web", "messages": [{"role": "assistant", "content": "你好"}]}, timeout=60)
    assert r.status_code == 422 and r.json()["error"] == "invalid_request" and "last message" in r.json()["message"]
    r = httpx.post(server.url + "/v1/chat/completions", json={"model": "policyqa-web", "messages": []}, timeout=60)
    assert r.status_code == 422 and set(r.json()) == {"error", "message"}


def test_langchain_chat_openai_talks_to_policyqa(server):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=server.url + "/v1", api_key="not-needed", model="policyqa-web", timeout=120, max_retries=0)
    reply = llm.invoke(QUESTION)
    assert reply.content.startswith("根据《失业保险条例》第十八条")
    streamed = "".join(chunk.content for chunk in llm.stream(QUESTION))
    assert streamed == reply.content
