"""Staff keys and roles, and rate limiting of the public routes, through the HTTP API of a real server.

The server runs on an empty knowledge base: nothing here needs documents or the embedding model.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from browser_support import ApiServer, create_key

from knowledge_base.api_keys import ApiKeyRepository
from knowledge_base.store import KnowledgeBase
from qa_service.auth import KeyService, Role, TokenBucketLimiter, hash_key, is_public_path


def _key(kb_dir: Path, role: Role, name: str) -> str:
    return KeyService(KnowledgeBase(kb_dir)).create(name, role).token


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    kb_dir = tmp_path_factory.mktemp("auth-kb")
    keys = {
        "operator": _key(kb_dir, Role.OPERATOR, "周话务"),
        "editor": _key(kb_dir, Role.EDITOR, "王编辑"),
        "reviewer": _key(kb_dir, Role.REVIEWER, "李审核"),
        "reviewer2": _key(kb_dir, Role.REVIEWER, "赵审核"),
        "admin": _key(kb_dir, Role.ADMIN, "系统管理员"),
    }
    with ApiServer(kb_dir, name="auth") as api:
        with httpx.Client(base_url=api.url, timeout=60) as client:
            yield client, keys, kb_dir


def _draft(client, key: str, question: str) -> str:
    r = client.post("/v1/faqs", json={"question": question, "answer": "答案正文。"}, headers=bearer(key))
    assert r.status_code == 201, r.text
    return r.json()["faq_id"]


def test_keys_create_prints_the_key_once_and_stores_only_its_hash(tmp_path):
    key = create_key(tmp_path, "reviewer", "李审核")
    assert key.startswith("pqa_") and len(key) > 40
    db = tmp_path / "policyqa.sqlite3"
    rows = sqlite3.connect(db).execute("SELECT name, role, key_hash FROM api_keys").fetchall()
    assert rows == [("李审核", "reviewer", hashlib.sha256(key.encode()).hexdigest())]
    for path in tmp_path.glob("policyqa.sqlite3*"):
        assert key.encode() not in path.read_bytes()
    assert KeyService(KnowledgeBase(tmp_path)).verify(key).name == "李审核"


def test_no_key_gets_401_with_a_chinese_and_english_message(server):
    client, _, _ = server
    for method, path in (("GET", "/v1/faqs"), ("POST", "/v1/faqs/FAQ-004/publish"), ("GET", "/v1/me"),
                         ("GET", "/v1/analytics/questions"), ("GET", "/v1/keys")):
        r = client.request(method, path)
        assert r.status_code == 401, (path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        message = r.json()["message"]
        assert "密钥" in message and "API key" in message


def test_an_unknown_or_revoked_key_gets_401(server):
    client, keys, _ = server
    assert client.get("/v1/me", headers=bearer("pqa_not-a-real-key")).status_code == 401
    assert client.get("/v1/me", headers={"Authorization": keys["editor"]}).status_code == 401  # no Bearer scheme
    r = client.post("/v1/keys", json={"name": "临时", "role": "editor"}, headers=bearer(keys["admin"]))
    temp = r.json()
    assert client.get("/v1/me", headers=bearer(temp["key"])).status_code == 200
    assert client.post(f"/v1/keys/{temp['id']}/revoke", headers=bearer(keys["admin"])).json()["revoked"] is True
    assert client.get("/v1/me", headers=bearer(temp["key"])).status_code == 401


def test_me_names_the_key_holder_and_role(server):
    client, keys, _ = server
    assert {"name": "李审核", "role": "reviewer"}.items() <= client.get("/v1/me", headers=bearer(keys["reviewer"])).json().items()
    assert client.get("/v1/me", headers=bearer(keys["operator"])).json()["role"] == "operator"


def test_an_editor_key_gets_403_on_publish_and_review(server):
    client, keys, _ = server
    faq_id = _draft(client, keys["editor"], "编辑不能发布的问题")
    for path, body in ((f"/v1/faqs/{faq_id}/publish", None), (f"/v1/faqs/{faq_id}/review", {"confidentiality_checked": True}),
                       (f"/v1/faqs/{faq_id}/retire", None)):
        r = client.post(path, json=body, headers=bearer(keys["editor"]))
        assert r.status_code == 403, r.text
        assert "权限不足" in r.json()["message"] and "reviewer" in r.json()["message"]


def test_an_operator_reads_but_cannot_edit(server):
    client, keys, _ = server
    faq_id = _draft(client, keys["editor"], "话务员只读的问题")
    assert client.get(f"/v1/faqs/{faq_id}", headers=bearer(keys["operator"])).status_code == 200
    assert client.get("/v1/analytics/questions", headers=bearer(keys["operator"])).status_code == 200
    assert client.patch(f"/v1/faqs/{faq_id}", json={"answer": "改"}, headers=bearer(keys["operator"])).status_code == 403
    assert client.post("/v1/faqs", json={"question": "新问题"}, headers=bearer(keys["operator"])).status_code == 403


def test_the_author_of_an_entry_cannot_review_or_publish_it(server):
    client, keys, _ = server
    # A reviewer may write drafts (roles are hierarchical), but never approve their own.
    faq_id = _draft(client, keys["reviewer"], "作者不能发布自己写的条目")
    r = client.post(f"/v1/faqs/{faq_id}/review", json={"confidentiality_checked": True}, headers=bearer(keys["reviewer"]))
    assert r.status_code == 403 and "作者" in r.json()["message"]
    r = client.post(f"/v1/faqs/{faq_id}/review", json={"confidentiality_checked": True}, headers=bearer(keys["reviewer2"]))
    assert r.status_code == 200 and r.json()["confidentiality_checked_by"] == "赵审核"
    r = client.post(f"/v1/faqs/{faq_id}/publish", headers=bearer(keys["reviewer"]))
    assert r.status_code == 403 and "作者" in r.json()["message"]
    assert client.get(f"/v1/faqs/{faq_id}", headers=bearer(keys["operator"])).json()["status"] == "in_review"
    r = client.post(f"/v1/faqs/{faq_id}/publish", headers=bearer(keys["reviewer2"]))
    assert r.status_code == 200 and r.json()["status"] == "published"


def test_whoever_last_changed_the_content_cannot_review_it(server):
    client, keys, _ = server
    faq_id = _draft(client, keys["editor"], "最后修改人不能审核")
    assert client.patch(f"/v1/faqs/{faq_id}", json={"answer": "审核员改过的答案。"}, headers=bearer(keys["reviewer"])).status_code == 200
    r = client.post(f"/v1/faqs/{faq_id}/review", json={"confidentiality_checked": True}, headers=bearer(keys["reviewer"]))
    assert r.status_code == 403
    r = client.post(f"/v1/faqs/{faq_id}/review", json={"confidentiality_checked": True}, headers=bearer(keys["reviewer2"]))
    assert r.status_code == 200


def test_roles_are_hierarchical_an_admin_may_publish(server):
    client, keys, _ = server
    faq_id = _draft(client, keys["editor"], "管理员也可以发布")
    assert client.post(f"/v1/faqs/{faq_id}/review", json={"confidentiality_checked": True}, headers=bearer(keys["admin"])).status_code == 200
    assert client.post(f"/v1/faqs/{faq_id}/publish", headers=bearer(keys["admin"])).json()["status"] == "published"


def test_only_an_admin_manages_keys(server):
    client, keys, _ = server
    for who in ("operator", "editor", "reviewer"):
        assert client.get("/v1/keys", headers=bearer(keys[who])).status_code == 403
        assert client.post("/v1/keys", json={"name": "x", "role": "admin"}, headers=bearer(keys[who])).status_code == 403
    r = client.post("/v1/keys", json={"name": "新话务员", "role": "operator"}, headers=bearer(keys["admin"]))
    assert r.status_code == 201 and r.json()["key"].startswith("pqa_")
    listed = client.get("/v1/keys", headers=bearer(keys["admin"])).json()["keys"]
    assert {"name": "新话务员", "role": "operator"}.items() <= listed[-1].items()
    assert all("key" not in k and "key_hash" not in k for k in listed)
    assert client.post("/v1/keys", json={"name": "x", "role": "superuser"}, headers=bearer(keys["admin"])).status_code == 422


def test_a_second_active_key_of_one_name_is_refused(server):
    client, keys, _ = server
    first = client.post("/v1/keys", json={"name": "孙编辑", "role": "editor"}, headers=bearer(keys["admin"]))
    assert first.status_code == 201
    again = client.post("/v1/keys", json={"name": "孙编辑", "role": "reviewer"}, headers=bearer(keys["admin"]))
    assert again.status_code == 409 and again.json()["error"] == "conflict" and bilingual_message(again)
    assert f"#{first.json()['id']}" in again.json()["message"]
    client.post(f"/v1/keys/{first.json()['id']}/revoke", headers=bearer(keys["admin"]))
    assert client.post("/v1/keys", json={"name": "孙编辑", "role": "reviewer"}, headers=bearer(keys["admin"])).status_code == 201


def test_the_cli_refuses_a_second_active_key_of_one_name(tmp_path):
    create_key(tmp_path, "editor", "钱编辑")
    repo = Path(__file__).resolve().parents[1]
    again = subprocess.run([sys.executable, "-m", "qa_service.cli", "keys", "create", "--role", "reviewer", "--name", "钱编辑",
                            "--kb", str(tmp_path)], env={**os.environ, "POLICYQA_KB": str(tmp_path)}, capture_output=True,
                           text=True, timeout=120, cwd=repo)
    assert again.returncode != 0 and "error:" in again.stderr and "钱编辑" in again.stderr
    assert "pqa_" not in again.stdout + again.stderr
    assert [k.name for k in KeyService(KnowledgeBase(tmp_path)).list()] == ["钱编辑"]


def test_the_audit_trail_tells_two_keys_of_one_name_apart(server):
    """Two keys named alike (made before names were unique): the editor's change and the reviewer's approval carry
    their own key ids, so the trail does not read as self-approval."""
    client, keys, kb_dir = server
    editor = _key(kb_dir, Role.EDITOR, "同名")
    reviewer = "pqa_" + "r" * 43  # stored directly, as a key of a repeated name was before names were unique
    ApiKeyRepository(KnowledgeBase(kb_dir)).add(name="同名", role=Role.REVIEWER.value, key_hash=hash_key(reviewer))
    editor_id = client.get("/v1/me", headers=bearer(editor)).json()["key_id"]
    reviewer_id = client.get("/v1/me", headers=bearer(reviewer)).json()["key_id"]
    faq_id = _draft(client, editor, "同名的编辑与审核员")
    reviewed = client.post(f"/v1/faqs/{faq_id}/review", json={"confidentiality_checked": True}, headers=bearer(reviewer))
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["author_key_id"] == editor_id and reviewed.json()["reviewer_key_id"] == reviewer_id
    audit = client.get(f"/v1/faqs/{faq_id}/audit", headers=bearer(keys["operator"])).json()["audit"]
    assert [(a["action"], a["actor"], a["actor_key_id"]) for a in audit] == [
        ("create", "同名", editor_id), ("review", "同名", reviewer_id)]


def bilingual_message(response) -> bool:
    message = response.json()["message"]
    return any("\u4e00" <= ch <= "\u9fff" for ch in message) and " / " in message


def test_public_routes_need_no_key(server):
    client, _, _ = server
    r = client.post("/v1/feedback", json={"query_id": "0" * 32, "helpful": True})
    assert r.status_code == 404  # no such answer, but no 401: feedback is public
    assert client.get("/v1/documents").status_code != 401


def test_public_routes_are_not_rate_limited_when_the_limit_is_zero(server):
    client, _, _ = server
    statuses = {client.post("/v1/feedback", json={"query_id": "x", "helpful": True}).status_code for _ in range(30)}
    assert statuses == {404}


def test_public_routes_are_rate_limited_per_address_with_a_message(tmp_path):
    reviewer = _key(tmp_path, Role.REVIEWER, "李审核")
    with ApiServer(tmp_path, env={"POLICYQA_RATE_LIMIT_PER_MINUTE": "5"}, name="auth-ratelimit") as api:
        with httpx.Client(base_url=api.url, timeout=60) as client:
            statuses = [client.post("/v1/feedback", json={"query_id": "x", "helpful": True}).status_code for _ in range(5)]
            assert statuses == [404] * 5
            limited = client.post("/v1/feedback", json={"query_id": "x", "helpful": True})
            assert limited.status_code == 429
            assert int(limited.headers["retry-after"]) >= 1
            body = limited.json()
            assert body["error"] == "rate_limited" and "请求过于频繁" in body["message"] and "too many requests" in body["message"]
            # Every public route shares the address's budget; staff routes, health and staff keys are not counted.
            assert client.get("/v1/documents").status_code == 429
            assert client.get("/v1/search", params={"q": "失业"}).status_code == 429
            assert client.get("/healthz").status_code != 429
            assert client.get("/v1/faqs", headers=bearer(reviewer)).status_code == 200
            assert client.get("/v1/documents", headers=bearer(reviewer)).status_code != 429


def test_token_bucket_allows_bursts_then_the_steady_rate():
    now = [0.0]
    limiter = TokenBucketLimiter(60, clock=lambda: now[0])
    assert all(limiter.hit("1.2.3.4") == 0 for _ in range(60))
    assert limiter.hit("1.2.3.4") > 0
    assert limiter.hit("5.6.7.8") == 0  # per address
    now[0] += 1.0  # 60 a minute: one token a second
    assert limiter.hit("1.2.3.4") == 0
    assert limiter.hit("1.2.3.4") > 0


def test_which_paths_are_public():
    for path in ("/v1/ask", "/v1/search", "/v1/documents", "/v1/documents/abc", "/v1/feedback", "/widget.js", "/documents/abc", "/demo"):
        assert is_public_path(path), path
    for path in ("/v1/faqs", "/v1/me", "/healthz", "/static/staff.js", "/staff/faqs", "/console", "/v1/asked", "/docs"):
        assert not is_public_path(path), path
