"""The command line is one Typer app of sub-apps, and the evaluation code never imports it back."""
from __future__ import annotations

import ast
from pathlib import Path

from typer.testing import CliRunner

from qa_service.cli import SUB_APPS, app

REPO = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):  # function-level imports count too: a cycle hidden in a function is still a cycle
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_eval_imports_nothing_from_the_cli():
    for path in sorted((REPO / "eval").glob("*.py")):
        assert not any(m == "qa_service.cli" or m.startswith("qa_service.cli.") for m in imported_modules(path)), path


def test_every_area_is_a_sub_app_listed_in_help():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name, _ in SUB_APPS:
        assert name in result.output
    assert {"kb", "faq", "keys", "bench"} <= {name for name, _ in SUB_APPS}
    for command in ("ingest", "ask", "search", "serve", "settings", "eval"):
        assert command in result.output


def test_settings_lists_every_variable_and_a_bad_channel_is_a_usage_error():
    result = CliRunner().invoke(app, ["settings", "--markdown"])
    assert result.exit_code == 0 and "`POLICYQA_KB`" in result.output and "`POLICYQA_RELOAD_INTERVAL`" in result.output
    bad = CliRunner().invoke(app, ["ask", "失业保险金能领多久？", "--channel", "fax"])
    assert bad.exit_code != 0
