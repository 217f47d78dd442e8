"""What every command shares: the consoles, the --kb option, opening the knowledge base, failing with a message."""
from __future__ import annotations

from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console

from knowledge_base.store import KnowledgeBase

from ..demo import open_kb as open_or_seed

console = Console()
err = Console(stderr=True)

KbOption = typer.Option(None, "--kb", help="Knowledge-base directory (default: POLICYQA_KB, else the default KB in the cache).")


def open_kb(kb: Optional[Path], seed_demo: bool = False) -> KnowledgeBase:
    """Open the knowledge base; the default one is seeded with the bundled demo corpus on first use."""
    try:
        return open_or_seed(kb, seed_demo=seed_demo, notify=say)
    except RuntimeError as e:  # the first-run demo build failed
        fail(str(e))


def say(line: str) -> None:
    """One whole line on stderr: rich would otherwise break it at the console width (80 in a log), mid-sentence."""
    err.print(line, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """An `error:` line on stderr and a non-zero exit."""
    err.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)
