"""`policyqa serve` and `policyqa settings`.

    policyqa serve --kb kb --port 8000     # with no --kb: the bundled demo knowledge base (built on first run)
    policyqa settings --markdown           # the README's settings table
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from knowledge_base.settings import Settings

from .common import KbOption, console, open_kb


def serve(
    kb: Optional[Path] = KbOption,
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8000, help="Port."),
) -> None:
    """Serve the HTTP API, widget and pages; with no --kb, the bundled demo knowledge base (built on first run)."""
    import uvicorn  # lazy: 0.02 s at every command's start-up, only serve needs it

    from ..app import create_app  # lazy: the app and its routes cost 0.2-0.3 s at start-up, only serve needs them

    kbase = open_kb(kb, seed_demo=True)
    console.print(f"serving {kbase.directory} on http://{host}:{port}  (API docs: /docs, widget demo: /demo)",
                  soft_wrap=True)
    _json_access_log()
    # proxy_headers=False: uvicorn would otherwise rewrite the client address from X-Forwarded-For for any request
    # from 127.0.0.1; the app believes that header only from POLICYQA_TRUSTED_PROXIES (qa_service/auth.py).
    # access_log=False: uvicorn's line carries the query string (a /v1/search question); ours does not.
    uvicorn.run(create_app(kb=kbase), host=host, port=port, log_level="info", proxy_headers=False, access_log=False)


def _json_access_log() -> None:
    """One JSON object a line on stderr (qa_service/metrics.py writes them)."""
    access = logging.getLogger("policyqa.access")
    if not access.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False


def settings_rows() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default if field.default is not None else ""
        if isinstance(default, Path) and str(default).startswith(str(Path.home())):
            default = "~" + str(default)[len(str(Path.home())):]
        rows.append((f"POLICYQA_{name.upper()}", str(default), field.description or ""))
    return rows


def settings_table(markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table (the README's).")) -> None:
    """Every setting: environment variable, default, what it does."""
    rows = settings_rows()
    if markdown:
        print("| variable | default | what it does |\n|---|---|---|")
        for var, default, desc in rows:
            shown = f"`{default}`" if default else ""
            escaped = desc.replace("|", "\\|")
            print(f"| `{var}` | {shown} | {escaped} |")
        return
    table = Table("variable", "default", "what it does")
    for row in rows:
        table.add_row(*row)
    console.print(table)
