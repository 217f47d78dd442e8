"""The `policyqa` command line: one Typer app, one sub-app per area.

    policyqa ingest ../shared/corpus --kb kb      # progress bar, then a summary table
    policyqa kb stats --kb kb                     # kb …    knowledge-base inspection
    policyqa faq publish FAQ-004 --as 李审核 …    # faq …   the FAQ lifecycle
    policyqa keys create --role reviewer …        # keys …  staff API keys
    policyqa model train-judge --kb kb            # model … the learned answer judge
    policyqa eval --gold dev.jsonl --kb kb        # eval    answer quality (eval/cli.py, an entry point)
    policyqa bench query --kb kb                  # bench … benchmarks (eval/cli.py, an entry point)
    policyqa serve                                # serves the bundled demo knowledge base (built on first run)

A new area is a module with `app = typer.Typer(…)` and one line in SUB_APPS. Commands of packages above this one
(`eval`) come in through the `policyqa.commands` entry-point group (pyproject.toml), so the dependency runs one way:
`eval` uses the public API (`qa_service.demo.open_kb`, the engine, HTTP) and this package never imports it.
"""
from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Iterable

import typer

from knowledge_base.settings import SettingsError, get_settings

from . import answer, faq, ingest, keys, kb, model, report, serve
from .common import KbOption, console, err, fail, open_kb

__all__ = ["COMMANDS", "SUB_APPS", "add_commands", "app", "build_app", "main", "KbOption", "console", "err", "fail",
           "open_kb"]

COMMANDS = "policyqa.commands"  # entry points: a Typer app becomes a sub-app, a function a command, of that name


def _check_settings() -> None:
    """Every command starts by reading the POLICYQA_* settings: a bad one is an error line, not a traceback later."""
    try:
        get_settings()
    except SettingsError as e:
        fail(str(e))

SUB_APPS: tuple[tuple[str, typer.Typer], ...] = (
    ("kb", kb.app),
    ("faq", faq.app),
    ("keys", keys.app),
    ("model", model.app),
)


def add_commands(app: typer.Typer, commands: Iterable[EntryPoint]) -> None:
    """Mount each entry point under its name: a Typer app as a sub-app, a function as a command."""
    for command in commands:
        target = command.load()
        if isinstance(target, typer.Typer):
            app.add_typer(target, name=command.name)
        elif callable(target):
            app.command(command.name)(target)
        else:
            raise TypeError(f"entry point {command.name} = {command.value} is neither a Typer app nor a function")


def build_app(commands: Iterable[EntryPoint] = ()) -> typer.Typer:
    """The command line: this package's commands, and `commands` (entry points of the `policyqa.commands` group)."""
    app = typer.Typer(help="policyqa: 一库多平台 policy Q&A with cited sources.", no_args_is_help=True,
                      add_completion=False, callback=_check_settings)
    app.command("ingest")(ingest.ingest)
    app.command("remove")(ingest.remove)
    app.command("ask")(answer.ask)
    app.command("search")(answer.search)
    app.command("serve")(serve.serve)
    app.command("settings")(serve.settings_table)
    for name, sub_app in SUB_APPS:
        app.add_typer(sub_app, name=name)
    add_commands(app, sorted(commands, key=lambda c: c.name))
    report.register(app)  # policyqa report, policyqa workorders …
    return app


app = build_app(entry_points(group=COMMANDS))


def main() -> None:  # pragma: no cover - console-script entry
    app()
