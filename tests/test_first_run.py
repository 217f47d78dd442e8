"""The first-run messages of `policyqa serve` and its error lines are whole lines, however long the knowledge-base
path (issue 23, item 11): a log reader or a grep sees each sentence on one line, not cut at 80 columns."""
from __future__ import annotations

import pytest

from knowledge_base.settings import get_settings


@pytest.fixture
def default_kb_in(tmp_path, monkeypatch):
    """The default knowledge base under a long cache path, with the demo build itself left out (it is tested on its
    own); the settings cache is cleared so the path is read from the environment."""
    import qa_service.demo

    cache = tmp_path / "a-cache-directory-whose-path-is-longer-than-a-terminal-line" / "policyqa"
    monkeypatch.delenv("POLICYQA_KB", raising=False)
    monkeypatch.setenv("POLICYQA_CACHE_DIR", str(cache))
    monkeypatch.setattr(qa_service.demo, "build_demo_in_child", lambda directory: None)
    get_settings.cache_clear()
    yield cache / "kb"
    get_settings.cache_clear()


def test_the_first_run_message_is_one_line(default_kb_in, capsys):
    from qa_service.cli.common import open_kb

    open_kb(None, seed_demo=True)
    lines = capsys.readouterr().err.splitlines()
    first = [line for line in lines if line.startswith("First run:")]
    assert first == [f"First run: building the demo knowledge base in {default_kb_in} (a few minutes) …"], lines
    assert any(line.startswith("demo knowledge base ready:") and line.endswith("chunks") for line in lines), lines


def test_an_error_line_is_one_line(monkeypatch, capsys):
    import typer

    from qa_service.cli.common import fail

    message = "building the demo knowledge base failed (exit 1); see the lines above " * 2
    with pytest.raises(typer.Exit):
        fail(message.strip())
    assert capsys.readouterr().err.splitlines() == ["error: " + message.strip()]
