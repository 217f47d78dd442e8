"""Request bodies over the limit are refused with 413 before they are read (issue 23, item 3): a 60 MB JSON body to
/v1/ask used to be read and parsed, without a key, before its 422."""
from __future__ import annotations

import json
import shutil
import socket
import threading

import pytest
import uvicorn
from fastapi.testclient import TestClient

from knowledge_base.settings import Settings
from knowledge_base.store import KnowledgeBase
from qa_service.app import create_app

SIXTY_MB = 60 * 1024 * 1024


def too_large(r) -> dict:
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["error"] == "too_large" and "64 KB" in body["message"], body
    return body


@pytest.fixture(scope="module")
def client(small_kb, tmp_path_factory):
    kb_dir = shutil.copytree(small_kb, tmp_path_factory.mktemp("limits") / "kb")
    with TestClient(create_app(kb=KnowledgeBase(kb_dir), settings=Settings(rate_limit_per_minute=0))) as c:
        yield c


def test_a_body_over_the_limit_is_refused_with_413(client):
    question = {"question": "失业保险金能领多久" + "。" * 40_000}  # 120 kB: far over what a question may be
    too_large(client.post("/v1/ask", content=json.dumps(question, ensure_ascii=False).encode("utf-8"),
                          headers={"Content-Type": "application/json"}))


def test_a_chunked_body_over_the_limit_is_refused_with_413(client):
    def chunks():  # no Content-Length: the server has to count what arrives
        yield b'{"question": "'
        for _ in range(64):
            yield b"a" * 16 * 1024
        yield b'"}'

    too_large(client.post("/v1/ask", content=chunks(), headers={"Content-Type": "application/json"}))


def test_a_small_chunked_body_is_handed_on_whole(client):
    def chunks():
        yield '{"question": "失业保险金'.encode("utf-8")
        yield '能领多久？"}'.encode("utf-8")

    r = client.post("/v1/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["answered"] is True


def test_a_normal_question_is_still_answered(client):
    r = client.post("/v1/ask", json={"question": "失业保险金能领多久？"})
    assert r.status_code == 200 and r.json()["answered"] is True


def test_the_limit_is_a_setting(client, tmp_path):
    question = {"question": "失业保险金能领多久？" + "请问" * 200}  # 1.2 kB of UTF-8: a question may be 500 characters
    with TestClient(create_app(kb=KnowledgeBase(tmp_path / "kb"), settings=Settings(rate_limit_per_minute=0, max_body_kb=1))) as small:
        r = small.post("/v1/ask", json=question)
        assert r.status_code == 413 and "1 KB" in r.json()["message"]
    assert client.post("/v1/ask", json=question).status_code == 200


# ------------------------------------------------------------------ a real server answers before the body arrives
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    app = create_app(kb=KnowledgeBase(tmp_path_factory.mktemp("limits-served") / "kb"),
                     settings=Settings(rate_limit_per_minute=0))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    while not served.started and thread.is_alive():
        thread.join(0.05)
    yield port
    served.should_exit = True
    thread.join(10)


def _response(sock: socket.socket) -> tuple[int, dict]:
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), json.loads(body)


def _length(data: bytes) -> int:
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    return next((int(line.split(":")[1]) for line in head.split("\r\n") if line.startswith("content-length:")), 0)


def test_a_declared_60_mb_body_is_refused_before_a_byte_of_it_is_sent(server):
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.settimeout(30)  # only so a hang fails instead of blocking: the answer comes without the body
        sock.sendall(f"POST /v1/ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {SIXTY_MB}\r\n\r\n".encode())
        status, body = _response(sock)
    assert status == 413 and body["error"] == "too_large" and set(body) == {"error", "message"}
