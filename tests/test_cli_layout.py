"""The command line is one Typer app of sub-apps; eval's commands come in through entry points (that eval never
imports the CLI back is a rule of tests/test_architecture.py)."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import EntryPoint, PathDistribution, entry_points
from pathlib import Path

from typer.testing import CliRunner

from qa_service.cli import COMMANDS, SUB_APPS, app, build_app

REPO = Path(__file__).resolve().parents[1]


def test_every_area_is_a_sub_app_listed_in_help():
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name, _ in SUB_APPS:
        assert name in result.output
    assert {"kb", "faq", "keys", "model"} <= {name for name, _ in SUB_APPS}
    for command in ("ingest", "ask", "search", "serve", "settings", "eval", "bench"):
        assert command in result.output


def test_settings_lists_every_variable_and_a_bad_channel_is_a_usage_error():
    result = CliRunner().invoke(app, ["settings", "--markdown"])
    assert result.exit_code == 0 and "`POLICYQA_KB`" in result.output and "`POLICYQA_RELOAD_INTERVAL`" in result.output
    bad = CliRunner().invoke(app, ["ask", "失业保险金能领多久？", "--channel", "fax"])
    assert bad.exit_code != 0


def declared_commands() -> list[EntryPoint]:
    """The `policyqa.commands` entry points this checkout's pyproject.toml declares."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    return [EntryPoint(name, value, COMMANDS) for name, value in project["entry-points"][COMMANDS].items()]


def test_eval_and_bench_are_mounted_from_entry_points_not_imported():
    declared = {c.name: c.value for c in declared_commands()}
    assert declared == {"eval": "eval.cli:eval_command", "bench": "eval.cli:bench_app"}
    alone = build_app()  # qa_service's own commands: no eval, no bench
    assert CliRunner().invoke(alone, ["eval", "--help"]).exit_code != 0
    assert CliRunner().invoke(alone, ["bench", "--help"]).exit_code != 0
    composed = build_app(declared_commands())
    assert "--gold" in CliRunner().invoke(composed, ["eval", "--help"], env={"COLUMNS": "200"}).output
    bench = CliRunner().invoke(composed, ["bench", "--help"], env={"COLUMNS": "200"})
    assert bench.exit_code == 0 and {"ingest", "query", "scale"} <= set(bench.output.split())


def test_the_built_package_metadata_lists_the_declared_commands(tmp_path):
    """What `pip install` records (the wheel's metadata, prepared by the build backend) lists eval and bench."""
    build = "from setuptools import build_meta; import sys; print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))"
    done = subprocess.run([sys.executable, "-c", build, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    dist = PathDistribution(tmp_path / done.stdout.strip().splitlines()[-1])
    built = {c.name: c.value for c in dist.entry_points.select(group=COMMANDS)}
    assert built == {c.name: c.value for c in declared_commands()}


def test_the_installed_metadata_is_the_declared_one():
    """`policyqa eval` exists only when the installed metadata lists it: after changing the entry points in
    pyproject.toml, reinstall."""
    installed = {c.name: c.value for c in entry_points(group=COMMANDS)}
    assert installed == {c.name: c.value for c in declared_commands()}, (
        "the installed package metadata is stale: run `pip install -e . --no-deps` in this checkout")
