"""`stackwright server migrate`: day-2 actions on one server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .. import credentials
from .. import migrate as migrate_mod
from ..main import App, StackwrightError, inventory_argument, load_or_exit, read_secrets, vault_password_option
from ..model import Inventory


def session(app: App, inventory: Path, fmt: str,
            vault_password_file: Path | None) -> tuple[Inventory, Any, Callable[[str], None], dict[str, Any]]:
    """A day-2 command's inventory, admin connection (Nova microversion for
    moves to a named host), progress printer (silent with JSON) and
    secrets."""
    inv = load_or_exit(app, inventory, deploying=True)
    secrets = read_secrets(inventory, vault_password_file)
    _cloud, conn = credentials.connect(inv, secrets["keystone_admin_password"], inventory)
    conn.compute.default_microversion = migrate_mod.MICROVERSION

    def say(msg: str) -> None:
        if fmt != "json":
            app.console.print(f"[{time.strftime('%H:%M:%S')}] {msg}", markup=False, highlight=False)

    return inv, conn, say, secrets


@click.group()
def server() -> None:
    """Day-2 actions on a server of the cloud."""


@server.command()
@inventory_argument
@click.argument("name", metavar="SERVER")
@click.option("--live", is_flag=True, help="Move it while it runs (else cold: it is stopped, moved, started).")
@click.option("--to", "target", metavar="NODE", help="The compute node to move it to (default: the scheduler picks).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--timeout", default=900, show_default=True, type=click.IntRange(30, 7200),
              help="Seconds the move may take.")
@vault_password_option
@click.pass_obj
def migrate(app: App, inventory: Path, name: str, live: bool, target: str | None, fmt: str, timeout: int,
            vault_password_file: Path | None) -> None:
    """Move SERVER (name or ID) to another compute node of INVENTORY's cloud,
    live or cold (a cold move is confirmed: the server ends in the state
    it had, ACTIVE or SHUTOFF).  Pre-checks name what is missing before Nova
    is asked; without shared instance storage a live move copies the disk
    too (block migration)."""
    inv, conn, say, _secrets = session(app, inventory, fmt, vault_password_file)
    try:
        move = migrate_mod.check(conn, inv, name, live, target)
        result = migrate_mod.run(conn, move, say, timeout)
    except migrate_mod.Refused as exc:
        if fmt == "json":
            click.echo(json.dumps({"server": name, "result": "refused", "reason": str(exc)}))
            raise SystemExit(1) from None
        raise StackwrightError(f"server migrate: {exc}") from None
    if fmt == "json":
        click.echo(json.dumps({**result, "result": "moved"}))
        return
    app.console.print(f"server {result['server']} moved ({result['mode']}) from {result['source']} to "
                      f"{result['to']} in {result['seconds']:.0f} s; it is {result['status_after']}",
                      style="green")
