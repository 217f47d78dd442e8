"""The `policyqa` command line: one Typer app, one sub-app per area.

    policyqa ingest ../shared/corpus --kb kb      # progress bar, then a summary table
    policyqa kb stats --kb kb                     # kb …    knowledge-base inspection
    policyqa faq publish FAQ-004 --as 李审核 …    # faq …   the FAQ lifecycle
    policyqa keys create --role reviewer …        # keys …  staff API keys
    policyqa model train-judge --kb kb            # model … the learned answer judge
    policyqa eval --gold dev.jsonl --kb kb        # eval    answer quality (eval/cli.py)
    policyqa bench query --kb kb                  # bench … benchmarks (eval/cli.py)
    policyqa serve                                # serves the bundled demo knowledge base (built on first run)

A new area is a module with `app = typer.Typer(…)` and one line in SUB_APPS. The dependency runs one way: this
package imports `eval.cli`; `eval` uses only the public API (`qa_service.demo.open_kb`, the engine, HTTP).
"""
from __future__ import annotations

import typer

from eval import cli as eval_cli
from knowledge_base.settings import SettingsError, get_settings

from . import answer, faq, ingest, keys, kb, model, report, serve
from .common import KbOption, console, err, fail, open_kb

__all__ = ["app", "main", "KbOption", "console", "err", "fail", "open_kb"]

app = typer.Typer(help="policyqa: 一库多平台 policy Q&A with cited sources.", no_args_is_help=True, add_completion=False)


@app.callback()
def _check_settings() -> None:
    """Every command starts by reading the POLICYQA_* settings: a bad one is an error line, not a traceback later."""
    try:
        get_settings()
    except SettingsError as e:
        fail(str(e))


app.command("ingest")(ingest.ingest)
app.command("remove")(ingest.remove)
app.command("ask")(answer.ask)
app.command("search")(answer.search)
app.command("serve")(serve.serve)
app.command("settings")(serve.settings_table)
app.command("eval")(eval_cli.eval_command)

SUB_APPS: tuple[tuple[str, typer.Typer], ...] = (
    ("kb", kb.app),
    ("faq", faq.app),
    ("keys", keys.app),
    ("model", model.app),
    ("bench", eval_cli.bench_app),
)
for name, sub_app in SUB_APPS:
    app.add_typer(sub_app, name=name)
report.register(app)  # policyqa report, policyqa workorders …


def main() -> None:  # pragma: no cover - console-script entry
    app()
