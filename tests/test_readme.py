"""README.md's generated parts are what their generators print today: the settings table (`policyqa settings
--markdown`) and the results block (`python -m eval.readme_table --from-results`, from eval/results/)."""
from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from eval import readme_table
from qa_service.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def block(text: str, name: str) -> str:
    found = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", text, re.S)
    assert found, f"README.md has no {name} block"
    return found.group(1)


def test_the_settings_table_is_the_one_policyqa_settings_prints():
    printed = CliRunner().invoke(app, ["settings", "--markdown"], catch_exceptions=False).output
    assert block(README.read_text("utf-8"), "settings") == printed


def test_the_results_block_is_rendered_from_eval_results():
    files = [readme_table.result_path(label, gold) for label, gold in
             [("demo", readme_table.DEV), ("demo", readme_table.TEST), ("full", readme_table.DEV), ("full", readme_table.TEST)]]
    assert all(f.exists() for f in files), files
    rendered = readme_table.render_block(files)
    assert readme_table.replace_block(README.read_text("utf-8"), rendered) == README.read_text("utf-8")
    assert "judge-" in rendered and "over HTTP" in rendered  # the served configuration's figures are in it
