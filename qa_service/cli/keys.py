"""`policyqa keys …`: staff API keys (stored hashed; a new key is shown once).

    policyqa keys create --role reviewer --name 李审核 --department 市人社局 --kb kb   # prints the new key once
    policyqa keys list --kb kb · policyqa keys revoke 3 --kb kb

Whoever runs the CLI has the database in hand, so it acts as a local administrator.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from ..auth import ApiError, KeyService, Role
from .common import KbOption, console, err, fail, open_kb

app = typer.Typer(help="Staff API keys (stored hashed; a new key is shown once).", no_args_is_help=True)


@app.command("create")
def keys_create(
    role: Role = typer.Option(..., "--role", case_sensitive=False, help="Each role includes the ones before it."),
    name: str = typer.Option(..., "--name", help="Who the key is for; recorded as the actor of their changes."),
    department: Optional[str] = typer.Option(
        None, "--department",
        help="The 处室/单位 the key acts for: its editor or reviewer works only on that department's FAQ entries "
             "(omitted: every department)."),
    kb: Optional[Path] = KbOption,
) -> None:
    """Create a key and print it once (only its SHA-256 is stored)."""
    try:
        new = KeyService(open_kb(kb)).create(name, role, department)
    except ApiError as e:
        fail(e.message)
    where = new.info.department or "every department"
    err.print(
        f"key #{new.info.key_id} for {new.info.name} ({new.info.role.value}, {where}); it is shown only now, store it safely:",
        highlight=False,
    )
    typer.echo(new.token)


@app.command("list")
def keys_list(kb: Optional[Path] = KbOption) -> None:
    """Keys by id, name and role (never the keys themselves)."""
    table = Table(title="API keys")
    for col in ("id", "name", "role", "department", "created (UTC)", "revoked"):
        table.add_column(col)
    for k in KeyService(open_kb(kb)).list():
        table.add_row(str(k.key_id), k.name, k.role.value, k.department or "", k.created_at.isoformat(timespec="seconds"),
                      "yes" if k.revoked else "")
    console.print(table)


@app.command("revoke")
def keys_revoke(key_id: int = typer.Argument(..., min=1, help="The key's id (see `keys list`)."), kb: Optional[Path] = KbOption) -> None:
    """Revoke a key; requests with it get 401 from then on."""
    try:
        info = KeyService(open_kb(kb)).revoke(key_id)
    except ApiError as e:
        fail(e.message)
    console.print(f"revoked key #{info.key_id} ({info.name}, {info.role.value})")
