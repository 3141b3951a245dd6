"""`stackwright node drain|enable`: day-2 actions on a compute node."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from .. import migrate as migrate_mod
from ..main import App, StackwrightError, inventory_argument, vault_password_option
from .server import session


@click.group()
def node() -> None:
    """Day-2 actions on a node of the cloud."""


@node.command()
@inventory_argument
@click.argument("name", metavar="NODE")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--timeout", default=900, show_default=True, type=click.IntRange(30, 7200),
              help="Seconds each server's move may take.")
@vault_password_option
@click.pass_obj
def drain(app: App, inventory: Path, name: str, fmt: str, timeout: int, vault_password_file: Path | None) -> None:
    """Empty compute NODE for maintenance: disable its compute service (with
    a reason), then move every server away - live when it runs, cold when
    it is shut off - and report each.  Exits 1 when a server stayed.
    `stackwright node enable` lets servers land there again."""
    inv, conn, say = session(app, inventory, fmt, vault_password_file)
    try:
        rows = migrate_mod.drain(conn, inv, name, say, timeout)
    except migrate_mod.Refused as exc:
        raise StackwrightError(f"node drain: {exc}") from None
    stayed = [r for r in rows if r["result"] != "moved"]
    if fmt == "json":
        click.echo(json.dumps({"node": name, "servers": rows, "drained": not stayed}))
    else:
        table = Table(title=f"node drain {name}")
        for column in ("server", "result", "to / reason", "seconds"):
            table.add_column(column)
        for r in rows:
            table.add_row(r["server"], r["result"] + (f" ({r['mode']})" if "mode" in r else ""),
                          r.get("to") or r.get("reason", ""), f"{r['seconds']:.0f}" if "seconds" in r else "-")
        app.console.print(table)
        app.console.print(f"{name} is drained: no server left" if not stayed else
                          f"{name}: {len(stayed)} server(s) stayed", style="green" if not stayed else "bold red")
    if stayed:
        sys.exit(1)


@node.command()
@inventory_argument
@click.argument("name", metavar="NODE")
@vault_password_option
@click.pass_obj
def enable(app: App, inventory: Path, name: str, vault_password_file: Path | None) -> None:
    """Let servers land on compute NODE again (after a drain)."""
    inv, conn, _say = session(app, inventory, "text", vault_password_file)
    try:
        changed = migrate_mod.enable(conn, inv, name)
    except migrate_mod.Refused as exc:
        raise StackwrightError(f"node enable: {exc}") from None
    app.console.print(f"{name}: compute service enabled" if changed else f"{name}: compute service was enabled")
