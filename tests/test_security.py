"""Faults found by the security review (issue 11, item 6), each pinned by a test that failed before its fix."""
from __future__ import annotations

import io
import json
import shutil
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from knowledge_base.settings import Settings

SHARED = Path(__file__).resolve().parents[2] / "shared"
HOLIDAY_2013 = "national/行政法规/全国年节及纪念日放假办法(2013-12-11).md"
HOLIDAY_2024 = "national/行政法规/全国年节及纪念日放假办法(2024-11-10).md"


def error_body(r) -> dict:
    body = r.json()
    assert set(body) >= {"error", "message"} and "detail" not in body, body
    return body


@pytest.fixture(scope="module")
def client(small_kb, tmp_path_factory):
    from knowledge_base.store import KnowledgeBase
    from qa_service.app import create_app

    kb_dir = shutil.copytree(small_kb, tmp_path_factory.mktemp("security") / "kb")
    with TestClient(create_app(kb=KnowledgeBase(kb_dir), settings=Settings(rate_limit_per_minute=0))) as c:
        yield c


@pytest.fixture(scope="module")
def admin(client) -> dict[str, str]:
    from qa_service.auth import KeyService, Role

    keys = KeyService(client.app.state.services.kb)
    return {role: "Bearer " + keys.create(f"安全测试{role}", Role(role)).token for role in ("editor", "admin")}


# ------------------------------------------------------------------ a withheld newer version stays hidden
@pytest.fixture(scope="module")
def withheld_newer_version(tmp_path_factory):
    """放假办法 2013 (主动公开) and its 2024 revision marked 不予公开 by a sidecar."""
    from ingest.pipeline import IngestPipeline
    from knowledge_base.store import KnowledgeBase

    corpus = tmp_path_factory.mktemp("withheld-corpus")
    for rel in (HOLIDAY_2013, HOLIDAY_2024):
        shutil.copy(SHARED / "corpus" / rel, corpus / Path(rel).name)
    newer = corpus / Path(HOLIDAY_2024).name
    (corpus / (newer.name + ".meta.json")).write_text(json.dumps({"公开方式": "不予公开"}, ensure_ascii=False), "utf-8")
    kb = KnowledgeBase(tmp_path_factory.mktemp("withheld-kb"))
    report = IngestPipeline(kb).run([corpus])
    assert not report.failed
    hidden = next(o.doc_id for o in report.outcomes if o.path.name == newer.name)
    return kb, hidden


def test_a_withheld_newer_version_neither_supersedes_the_public_one_nor_leaks_its_id(withheld_newer_version):
    from qa_service.app import create_app

    kb, hidden = withheld_newer_version
    with TestClient(create_app(kb=kb, settings=Settings(rate_limit_per_minute=0))) as c:
        r = c.get("/v1/documents", params={"title": "放假办法"})
        assert r.status_code == 200 and hidden not in r.text
        (doc,) = r.json()["documents"]
        assert doc["validity"] == "in_force" and doc["superseded_by"] is None
        assert [v["doc_id"] for v in doc["versions"]] == [doc["doc_id"]]
        page = c.get(f"/documents/{doc['doc_id']}")
        assert page.status_code == 200 and hidden not in page.text and "notice-superseded" not in page.text
        detail = c.get(f"/v1/documents/{doc['doc_id']}").json()
        assert detail["superseded_by"] is None and hidden not in json.dumps(detail)


# ------------------------------------------------------------------ invalid Unicode, control characters
def test_a_lone_surrogate_is_rejected_with_422(client, admin):
    body = '{"question": "\\ud800失业保险"}'.encode()
    r = client.post("/v1/ask", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and error_body(r)["error"] == "invalid_request"
    faq = '{"question": "\\udfff公积金怎么提取", "answer": "见条例"}'.encode()
    r = client.post("/v1/faqs", content=faq, headers={"Content-Type": "application/json", "Authorization": admin["editor"]})
    assert r.status_code == 422 and error_body(r)["error"] == "invalid_request"


def test_control_characters_are_cleaned_on_write_and_on_export(client, admin):
    from openpyxl import load_workbook
    from sqlalchemy import update

    from knowledge_base.db import FaqRow

    r = client.post("/v1/faqs", json={"faq_id": "SEC-BEL", "question": "公积金\u0007怎么提取？", "answer": "按\u0000条例\u001b办理。\n详见第二十四条。"},
                    headers={"Authorization": admin["editor"]})
    assert r.status_code == 201, r.text
    assert r.json()["question"] == "公积金怎么提取？" and r.json()["answer"] == "按条例办理。\n详见第二十四条。"
    # A row written before the fix still exports.
    with client.app.state.services.kb.session() as s:
        s.execute(update(FaqRow).where(FaqRow.faq_id == "SEC-BEL").values(answer="旧数据\u0007含控制字符"))
        s.commit()
    r = client.get("/v1/faqs/export", headers={"Authorization": admin["editor"]})
    assert r.status_code == 200
    cells = [c for row in load_workbook(io.BytesIO(r.content)).active.iter_rows(values_only=True) for c in row]
    assert "旧数据含控制字符" in cells


# ------------------------------------------------------------------ bounds
def test_an_out_of_range_integer_path_parameter_is_a_422(client, admin):
    r = client.post("/v1/keys/9223372036854775808/revoke", headers={"Authorization": admin["admin"]})
    assert r.status_code == 422 and error_body(r)["error"] == "invalid_request"
    r = client.post("/v1/keys/0/revoke", headers={"Authorization": admin["admin"]})
    assert r.status_code == 422


def test_a_file_over_the_size_limit_fails_with_a_clear_error_and_embeds_nothing(tmp_path):
    from ingest.pipeline import IngestPipeline
    from knowledge_base.store import KnowledgeBase

    big = tmp_path / "通知.txt"
    big.write_text("关于做好失业保险工作的通知。" * 80_000, encoding="utf-8")  # 2.2 MB
    kb = KnowledgeBase(tmp_path / "kb")
    report = IngestPipeline(kb, max_file_bytes=1024 * 1024, embedder_factory=lambda: pytest.fail("nothing may be embedded")).run([big])
    (failed,) = report.failed
    assert "通知.txt" in failed.error and "1 MB" in failed.error and "POLICYQA_MAX_FILE_MB" in failed.error
    assert report.chunks_embedded == 0


def xlsx_inflating_to(megabytes: int) -> bytes:
    """A valid one-row FAQ workbook whose sheet XML is padded to `megabytes` (it compresses to a few kB)."""
    from ingest.faq_sheet import write_faq_xlsx
    from knowledge_base.models import FaqEntry

    data = write_faq_xlsx([FaqEntry(faq_id="FAQ-001", question="春节放几天假？", answer="春节放假4天。")])
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            content = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = content.replace(b"<sheetData>", b"<sheetData>" + b" " * (megabytes * 1024 * 1024), 1)
            dst.writestr(item.filename, content)
    return out.getvalue()


def test_an_xlsx_that_inflates_beyond_the_limit_is_refused_before_parsing():
    from ingest.faq_sheet import MAX_SHEET_UNCOMPRESSED_BYTES, read_faq_sheet

    bomb = xlsx_inflating_to(MAX_SHEET_UNCOMPRESSED_BYTES // (1024 * 1024) + 10)
    assert len(bomb) < 1024 * 1024
    result = read_faq_sheet(bomb, "faq.xlsx")
    assert result.entries == [] and result.errors[0].row == 0 and "MB" in result.errors[0].error


def test_a_sheet_with_too_many_rows_is_refused():
    from ingest.faq_sheet import MAX_SHEET_ROWS, read_faq_sheet

    lines = ["编号,问题,答案"] + [f"FAQ-{i},问题{i}？,答案{i}。" for i in range(MAX_SHEET_ROWS + 5)]
    result = read_faq_sheet("\n".join(lines).encode("utf-8"), "faq.csv")
    assert result.entries == [] and result.errors[0].row == 0 and str(MAX_SHEET_ROWS) in result.errors[0].error


# ------------------------------------------------------------------ error bodies and the OpenAPI contract
def test_bad_json_wrong_method_and_unknown_routes_answer_error_and_message(client):
    r = client.post("/v1/ask", content=b'{"question": ', headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500 and error_body(r)
    r = client.get("/v1/ask")
    assert r.status_code == 405 and error_body(r)["error"] == "method_not_allowed" and "POST" in r.headers["allow"]
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404 and error_body(r)["error"] == "not_found"


def test_ask_refuses_unknown_fields(client):
    r = client.post("/v1/ask", json={"question": "春节放几天假？", "padding": ["x"] * 10_000})
    assert r.status_code == 422 and "padding" in error_body(r)["message"]


def test_openapi_documents_error_responses_and_non_empty_questions(client):
    spec = client.get("/openapi.json").json()
    publish = spec["paths"]["/v1/faqs/{faq_id}/publish"]["post"]["responses"]
    assert {"401", "403", "404", "409", "422"} <= set(publish)
    assert set(spec["paths"]["/v1/keys"]["get"]["responses"]) >= {"401", "403"}
    ask = spec["components"]["schemas"]["AskRequest"]
    assert ask["properties"]["question"]["minLength"] == 1 and ask.get("additionalProperties") is False
    q = next(p for p in spec["paths"]["/v1/search"]["get"]["parameters"] if p["name"] == "q")
    assert q["schema"]["minLength"] == 1


def _probe_requests(path: str, method: str, operation: dict, keys: dict[str, str]):
    """Requests that drive a route into its error answers: no key, a low key, an admin key with an empty body and
    with every query parameter malformed. Path ids name nothing (404), so no probe changes stored data."""
    url = path
    for p in operation.get("parameters", []):
        if p["in"] == "path":
            url = url.replace("{" + p["name"] + "}", "999999" if p["schema"].get("type") == "integer" else "no-such-id")
    bad_query = {p["name"]: "0" if p["schema"].get("type") != "integer" else "-1"
                 for p in operation.get("parameters", []) if p["in"] == "query"}
    body = {"json": {}} if "requestBody" in operation else {}
    yield dict(method=method, url=url)
    yield dict(method=method, url=url, headers={"Authorization": "Bearer " + keys["operator"]}, **body)
    yield dict(method=method, url=url, headers={"Authorization": "Bearer " + keys["admin"]}, **body)
    if bad_query:
        yield dict(method=method, url=url, params=bad_query, headers={"Authorization": "Bearer " + keys["admin"]}, **body)


def test_every_error_status_a_route_answers_is_in_its_openapi_responses(tmp_path):
    """Issue 23 (schemathesis ST202/ST103): each route lists the 4xx/5xx it returns, with the `{"error", "message"}`
    model, never FastAPI's default `{"detail": …}` validation schema."""
    from knowledge_base.store import KnowledgeBase
    from qa_service.app import create_app
    from qa_service.auth import KeyService, Role, is_public_path

    kb = KnowledgeBase(tmp_path / "kb")  # empty: routes needing documents answer 503
    keys = {role: KeyService(kb).create(f"探测{role}", Role(role)).token for role in ("operator", "admin")}
    undocumented = []
    with TestClient(create_app(kb=kb, settings=Settings(rate_limit_per_minute=0))) as c:
        spec = c.get("/openapi.json").json()
        assert "HTTPValidationError" not in json.dumps(spec)
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                documented = set(operation["responses"])
                if is_public_path(path) and "429" not in documented:
                    undocumented.append((method, path, 429))
                for request in _probe_requests(path, method.upper(), operation, keys):
                    status = c.request(**request).status_code
                    if status >= 400 and str(status) not in documented:
                        undocumented.append((method, path, status))
                for status, response in operation["responses"].items():
                    if status.startswith("4"):
                        schema = response["content"]["application/json"]["schema"]
                        assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, status)
    assert sorted(set(undocumented)) == []


# ------------------------------------------------------------------ settings
@pytest.mark.parametrize("url", ["javascript:alert(1)", "https://www.jinan.gov.cn\r\nSet-Cookie: a=b", "www.jinan.gov.cn",
                                 "https://", "data:text/html,<script>"])
def test_an_unsafe_public_base_url_is_refused(url):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(public_base_url=url)


def test_a_safe_public_base_url_is_kept():
    assert Settings(public_base_url="https://www.jinan.gov.cn/policyqa/").public_base_url == "https://www.jinan.gov.cn/policyqa"
    assert Settings(public_base_url="").public_base_url == ""


# ------------------------------------------------------------------ rate limiting behind (and without) a proxy
def _post_feedback(url: str, forwarded_for: str) -> int:
    req = urllib.request.Request(url + "/v1/feedback", data=b'{"query_id": "x", "helpful": true}', method="POST",
                                 headers={"Content-Type": "application/json", "X-Forwarded-For": forwarded_for})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.parametrize("trusted,expect_limited", [("", True), ("127.0.0.1", False)])
def test_x_forwarded_for_is_only_believed_from_a_trusted_proxy(tmp_path, trusted, expect_limited):
    sys.path.insert(0, str(Path(__file__).parent))
    from browser_support import ApiServer

    env = {"POLICYQA_RATE_LIMIT_PER_MINUTE": "3", "POLICYQA_TRUSTED_PROXIES": trusted}
    with ApiServer(tmp_path / "kb", env=env, name="ratelimit", ready_path="/docs") as server:
        statuses = [_post_feedback(server.url, f"203.0.113.{i}") for i in range(8)]
    assert (429 in statuses) is expect_limited, statuses


@pytest.mark.parametrize(
    "peer,forwarded,trusted,expected",
    [
        ("127.0.0.1", "203.0.113.9", "", "127.0.0.1"),  # no trusted proxy: the header is ignored
        ("198.51.100.7", "203.0.113.9", "10.0.0.0/8", "198.51.100.7"),  # the peer is not a proxy we trust
        ("10.0.0.5", "203.0.113.9", "10.0.0.0/8", "203.0.113.9"),
        ("10.0.0.5", "1.2.3.4, 203.0.113.9", "10.0.0.0/8", "203.0.113.9"),  # the client forged the left entry
        ("10.0.0.5", "203.0.113.9, 10.0.0.8", "10.0.0.0/8", "203.0.113.9"),  # two proxies of ours
        ("10.0.0.5", "", "10.0.0.0/8", "10.0.0.5"),
    ],
)
def test_the_rate_limit_bucket_is_keyed_on_the_real_client(peer, forwarded, trusted, expected):
    from qa_service.auth import client_address

    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    networks = Settings(trusted_proxies=trusted).trusted_proxy_networks()
    assert client_address({"client": (peer, 5000), "headers": headers}, networks) == expected


# ------------------------------------------------------------------ settings are checked when they are read (issue 23)
@pytest.mark.parametrize("variable, value", [
    ("MAX_FILE_MB", "-1"), ("MAX_FILE_MB", "0"), ("RATE_LIMIT_PER_MINUTE", "-5"), ("REFUSAL_THRESHOLD", "1.5"),
    ("FAQ_THRESHOLD", "-0.1"), ("LOG_RETENTION_DAYS", "-1"), ("LLM_TIMEOUT", "0"), ("RELOAD_INTERVAL", "-1"),
    ("QUERY_THREADS", "-2"), ("SESSION_TURNS", "0"), ("SESSION_MAX_AGE", "0"), ("JUDGE", "maybe"),
    ("QUERY_RUNTIME", "gpu"), ("SESSION_STORE", "redis"), ("EMBEDDING_BACKEND", "cuda"), ("METRICS", "everyone"),
])
def test_a_setting_out_of_range_or_not_one_of_its_choices_is_refused_naming_the_variable(monkeypatch, variable, value):
    from knowledge_base.settings import SettingsError, load_settings

    monkeypatch.setenv(f"POLICYQA_{variable}", value)
    with pytest.raises(SettingsError, match=f"POLICYQA_{variable}={value!r}"):
        load_settings()


def test_a_command_with_a_bad_setting_fails_with_an_error_line(tmp_path):
    import os
    import subprocess

    run = subprocess.run([sys.executable, "-m", "qa_service.cli", "kb", "stats", "--kb", str(tmp_path / "kb")],
                         env={**os.environ, "POLICYQA_MAX_FILE_MB": "-1"}, capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 1 and "error:" in run.stderr and "POLICYQA_MAX_FILE_MB='-1'" in run.stderr
    assert "Traceback" not in run.stderr


# ------------------------------------------------------------------ /metrics is not public by default (issue 23)
def test_metrics_need_a_staff_key_unless_made_public_or_switched_off(tmp_path):
    from knowledge_base.store import KnowledgeBase
    from qa_service.app import create_app
    from qa_service.auth import KeyService, Role

    kb = KnowledgeBase(tmp_path / "kb")
    key = {"Authorization": "Bearer " + KeyService(kb).create("监控采集", Role.OPERATOR).token}
    with TestClient(create_app(kb=kb, settings=Settings(rate_limit_per_minute=0))) as c:
        anonymous = c.get("/metrics")
        assert anonymous.status_code == 401 and "policyqa_" not in anonymous.text and error_body(anonymous)
        assert c.get("/metrics", headers=key).status_code == 200 and "policyqa_requests_total" in c.get("/metrics", headers=key).text
    with TestClient(create_app(kb=kb, settings=Settings(rate_limit_per_minute=0, metrics="public"))) as c:
        assert c.get("/metrics").status_code == 200
    with TestClient(create_app(kb=kb, settings=Settings(rate_limit_per_minute=0, metrics="off"))) as c:
        off = c.get("/metrics", headers=key)
        assert off.status_code == 404 and error_body(off)
