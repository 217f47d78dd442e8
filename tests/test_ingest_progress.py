"""Ingest progress when no terminal is attached: plain lines every few seconds (files, chunks, chunks/s, time
left), from `policyqa ingest` piped into a log and from the demo build's child process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.progress import ProgressConfig, ProgressLines

REPO = Path(__file__).resolve().parents[1]
REGULATIONS = REPO / "qa_service" / "demo" / "corpus" / "regulations"


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_interval_with_rate_and_time_left():
    clock, out = FakeClock(), []
    lines = ProgressLines(ProgressConfig(interval=5.0), write=out.append, clock=clock)
    clock.now = 2.0
    lines.plan(10, 1000)
    assert out == ["ingest: 10 new or changed files, 1000 chunks to embed (read in 2 s)"]
    for _ in range(9):  # 100 chunks a second, a batch every second
        clock.now += 1.0
        lines.embedded(100)
    assert out[1:] == [
        "ingest: embedded 500/1000 chunks (50%), 100.0 chunks/s, about 5 s left",
    ]
    clock.now += 1.0
    lines.embedded(100)  # the last batch always reports
    assert out[-1] == "ingest: embedded 1000/1000 chunks (100%), 100.0 chunks/s"


@pytest.mark.model
def test_ingest_into_a_pipe_prints_progress_lines(tmp_path):
    policyqa = Path(sys.executable).with_name("policyqa")
    result = subprocess.run(
        [str(policyqa), "ingest", str(REGULATIONS / "失业保险条例(1999-01-22).md"), str(REGULATIONS / "工伤保险条例(2010-12-20).md"),
         "--kb", str(tmp_path / "kb")],
        capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "ingest: 2 new or changed files" in result.stderr
    assert "chunks/s" in result.stderr and "ingest: embedded" in result.stderr


@pytest.mark.model
@pytest.mark.slow  # the whole demo knowledge base, a minute
def test_demo_child_build_prints_progress_and_builds_the_demo(tmp_path):
    from knowledge_base.store import KnowledgeBase

    cache = tmp_path / "cache"  # a first run: nothing rebuilt or exported yet
    result = subprocess.run(
        [sys.executable, "-m", "qa_service.demo", str(tmp_path / "kb")], capture_output=True, text=True, timeout=1800,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), "POLICYQA_CACHE_DIR": str(cache)}, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "demo: embedded" in result.stderr and "demo: done" in result.stderr
    counts = KnowledgeBase(tmp_path / "kb").counts()
    assert counts["chunks"] > 1000 and counts["faqs_published"] >= 10
    # the question encoder's ONNX export was made by the child, so the server only loads it
    assert list(cache.glob("models/*-onnx/onnx/model.onnx"))
