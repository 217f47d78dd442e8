"""Helpers for the end-to-end browser tests: a real `policyqa serve` process, a host page on another origin
that embeds the widget, and Debian's headless Chromium driven by Playwright.

    with ApiServer(kb_dir, env={"POLICYQA_RATE_LIMIT_PER_MINUTE": "0"}) as api, HostPage(api.url) as host:
        browser = launch_chromium(playwright)
        page = browser.new_page(); page.goto(host.url); screenshot(page, "widget-open")

Browsers are never downloaded: tests use /usr/bin/chromium (`make browser` installs it) and are skipped,
with the reason, when it is missing.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
LOGS = ARTIFACTS / "logs"

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling Google services, which a closed network
# answers slowly or not at all.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Chromium not installed at /usr/bin/chromium (install it with `make browser`)"
)

DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
# Loading the encoder takes seconds on an idle machine and minutes on a 2-core one shared with other jobs.
SERVER_START_TIMEOUT = 900.0
ANSWER_TIMEOUT_MS = 60_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(method: str, url: str, body: dict | None = None, headers: dict | None = None, timeout: float = 60.0):
    """(status, parsed JSON or None) — for set-up and warm-up, not for the behaviour under test."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as e:
        raw, status = e.read(), e.code
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, None


class ApiServer:
    """`policyqa serve --kb DIR` on a free port, as a subprocess with its own environment.

    `ready_path` is polled until it answers (any HTTP status); /healthz also loads the answering engine, so
    the first question in a test is not the one that pays for loading the model.
    """

    def __init__(self, kb_dir: Path, env: dict[str, str] | None = None, name: str = "api", ready_path: str = "/healthz"):
        self.kb_dir = Path(kb_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = name
        self.ready_path = ready_path
        self.env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "POLICYQA_KB": str(self.kb_dir),
            "POLICYQA_RATE_LIMIT_PER_MINUTE": "0",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(REPO),  # this checkout's code, not the one the virtualenv's editable install points at
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None
        self.log_path = LOGS / f"{name}-{self.port}.log"  # unique: test runs may overlap

    def __enter__(self) -> "ApiServer":
        LOGS.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        policyqa = Path(sys.executable).with_name("policyqa")
        command = [str(policyqa)] if policyqa.exists() else [sys.executable, "-m", "qa_service.cli"]
        self.process = subprocess.Popen(
            [*command, "serve", "--kb", str(self.kb_dir), "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server {self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=60):
                    return
            except urllib.error.HTTPError:
                return  # it answers: up (a 503 on /healthz is the test's to judge)
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.3)
        raise TimeoutError(f"server {self.name} not ready after {SERVER_START_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def __exit__(self, *exc) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if getattr(self, "_log", None):
            self._log.close()


HOST_PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>市民之家 · 测试宿主页面</title>
<style>
  /* A host site with heavy global styles: none of this may reach the widget, and the widget may change none of it. */
  html {{ font-size: 10px; }}
  * {{ letter-spacing: .1em; }}
  body {{ margin: 0; font: 1.4rem/2.2 serif; color: #4a1010; background: #fbf6ec; }}
  header {{ padding: 1.6rem 2.4rem; background: #8c1c13; color: #fff; font-size: 2.4rem; }}
  main {{ padding: 2.4rem; }}
  button {{ padding: 1rem 3rem; background: #c0392b; color: yellow; border: 3px dashed black; font: 2rem fantasy; }}
  div {{ border: 1px solid transparent; }}
  p {{ margin: 2rem 0; }}
  code {{ word-break: break-all; }}
</style>
</head>
<body>
<header>某市政务服务网（测试宿主页）</header>
<main>
  <p id="host-text">本页面来自另一个来源（{host_origin}），通过一行 script 标签嵌入政策问答挂件：</p>
  <p><code>&lt;script src="{api}/widget.js" data-title="{title}" async&gt;&lt;/script&gt;</code></p>
  <button id="host-button" type="button">宿主页面的按钮</button>
</main>
<script src="{api}/widget.js" data-title="{title}" data-suggestions="{suggestions}" async></script>
</body>
</html>
"""


class HostPage:
    """A page on another origin (localhost:PORT versus the API's 127.0.0.1:PORT) that embeds the widget."""

    def __init__(self, api_url: str, title: str = "市民政策问答", suggestions: str = ""):
        self.port = free_port()
        self.url = f"http://localhost:{self.port}/"
        html = HOST_PAGE.format(
            api=api_url, title=title, suggestions=suggestions, host_origin=f"http://localhost:{self.port}"
        ).encode("utf-8")

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                if self.path.split("?")[0] != "/":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(html)))
                self.end_headers()
                self.wfile.write(html)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "HostPage":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def screenshot(page, name: str, full_page: bool = False) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def copy_kb(source: Path, target: Path) -> Path:
    """A private copy of a knowledge base: the server writes its query log and feedback into it."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.lock"))
    return target


def create_key(kb_dir: Path, role: str, name: str) -> str:
    """`policyqa keys create --role R --name N`, as an administrator would; returns the printed key."""
    policyqa = Path(sys.executable).with_name("policyqa")
    command = [str(policyqa)] if policyqa.exists() else [sys.executable, "-m", "qa_service.cli"]
    result = subprocess.run(
        [*command, "keys", "create", "--role", role, "--name", name, "--kb", str(kb_dir)],
        env={**os.environ, "HF_HUB_OFFLINE": "1", "POLICYQA_KB": str(kb_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    found = re.search(r"pqa_[A-Za-z0-9_\-]+", result.stdout + result.stderr)
    if result.returncode != 0 or not found:
        raise RuntimeError(f"policyqa keys create failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return found.group(0)


def bearer(key: str) -> dict[str, str]:
    """The header a staff request carries."""
    return {"Authorization": f"Bearer {key}"}
