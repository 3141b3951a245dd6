"""`stackwright node drain|enable`: day-2 actions on a compute node."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from .. import fence as fence_mod
from .. import migrate as migrate_mod
from ..main import App, StackwrightError, inventory_argument, load_or_exit, read_secrets, vault_password_option
from ..model import Inventory
from .server import session


def _power(inv: Inventory, name: str, secrets: dict[str, Any]) -> migrate_mod.Power:
    """The node's fence device as the day-2 logic calls it."""
    def power(action: str) -> str:
        try:
            return fence_mod.power(inv, name, secrets, action)  # type: ignore[arg-type]
        except fence_mod.FenceError as exc:
            raise migrate_mod.Refused(str(exc)) from None
    return power


def _per_server(app: App, fmt: str, verb: str, name: str, call: Callable[[], list[dict[str, Any]]],
                ok: str, key: str, all_done: str, some_left: str) -> None:
    """Run a whole-node action; print its row per server (or JSON); exit 1
    on refusal or when a server's result is not *ok*."""
    try:
        rows = call()
    except migrate_mod.Refused as exc:
        if fmt == "json":
            click.echo(json.dumps({"node": name, "result": "refused", "reason": str(exc)}))
            raise SystemExit(1) from None
        raise StackwrightError(f"node {verb}: {exc}") from None
    left = [r for r in rows if r["result"] != ok]
    if fmt == "json":
        click.echo(json.dumps({"node": name, "servers": rows, key: not left}))
    else:
        app.console.print(_rows_table(f"node {verb} {name}", rows))
        app.console.print(all_done if not left else some_left.format(n=len(left)),
                          style="green" if not left else "bold red")
    if left:
        sys.exit(1)


def _rows_table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for column in ("server", "result", "to / reason", "seconds"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["server"], r["result"] + (f" ({r['mode']})" if "mode" in r else ""),
                      (f"{r['to']}, {r['status_after']}" if "status_after" in r else r.get("to"))
                      or r.get("reason", ""), f"{r['seconds']:.0f}" if "seconds" in r else "-")
    return table


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
    inv, conn, say, _secrets = session(app, inventory, fmt, vault_password_file)
    _per_server(app, fmt, "drain", name, lambda: migrate_mod.drain(conn, inv, name, say, timeout), "moved",
                "drained", f"{name} is drained: no server left", f"{name}: {{n}} server(s) stayed")


@node.command()
@inventory_argument
@click.argument("name", metavar="NODE")
@click.option("--fence", is_flag=True, help="Power NODE off through its BMC first, when it is on.")
@click.option("--confirm-powered-off", "confirmed", is_flag=True,
              help="NODE is off and you made sure of it yourself (its BMC is dead too, or it has none): no fence "
                   "device is asked; refused while Nova still hears from NODE.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--timeout", default=900, show_default=True, type=click.IntRange(30, 7200),
              help="Seconds the rebuilds may take together.")
@vault_password_option
@click.pass_obj
def evacuate(app: App, inventory: Path, name: str, fence: bool, confirmed: bool, fmt: str, timeout: int,
             vault_password_file: Path | None) -> None:
    """Rebuild the servers of dead compute NODE on the other compute nodes.

    Refused unless NODE is off for sure: its fence device (nodes[].fence,
    its BMC) reports the power off - with --fence Stackwright powers it
    off first; or, for a node without a working BMC, you confirm it is off
    (--confirm-powered-off) and Nova does not hear from it.  Nova is then told the node is down (forced down), the node
    is disabled, and every server is rebuilt elsewhere; with instance disks
    in Ceph they keep their disks.  Exits 1 when a server was not
    evacuated.  When the node is back, `stackwright node enable` lets
    servers land on it again."""
    if fence and confirmed:
        raise click.UsageError("--fence and --confirm-powered-off exclude each other")
    node = next((n for n in load_or_exit(app, inventory, deploying=True).nodes if n.name == name), None)
    if not confirmed and node is not None and node.fence is None:
        raise StackwrightError(f"node evacuate: {name} has no fence device in the inventory, so Stackwright cannot "
                               f"make sure it is off; power it off yourself and add --confirm-powered-off")
    inv, conn, say, secrets = session(app, inventory, fmt, vault_password_file)
    power = None if confirmed else _power(inv, name, secrets)
    _per_server(app, fmt, "evacuate", name,
                lambda: migrate_mod.evacuate(conn, inv, name, power, fence, say, timeout),
                "evacuated", "evacuated", f"{name}: every server evacuated", f"{name}: {{n}} server(s) not evacuated")


@node.command()
@inventory_argument
@click.argument("name", metavar="NODE")
@click.option("--timeout", default=300, show_default=True, type=click.IntRange(10, 3600),
              help="Seconds to wait for NODE's nova-compute.")
@vault_password_option
@click.pass_obj
def enable(app: App, inventory: Path, name: str, timeout: int, vault_password_file: Path | None) -> None:
    """Let servers land on compute NODE again, after a drain or an
    evacuation (then NODE must be back: powered on, nova-compute running,
    the evacuated servers' remains removed, which nova-compute does when
    it starts)."""
    inv, conn, say, secrets = session(app, inventory, "text", vault_password_file)
    node = inv.node(name) if name in {n.name for n in inv.nodes} else None
    power = _power(inv, name, secrets) if node is not None and node.fence is not None else None
    try:
        done = migrate_mod.enable(conn, inv, name, power, say, timeout)
    except migrate_mod.Refused as exc:
        raise StackwrightError(f"node enable: {exc}") from None
    app.console.print(f"{name}: " + "; ".join(done) if done else f"{name}: compute service was enabled")


@node.command()
@inventory_argument
@click.argument("name", metavar="NODE")
@click.argument("action", type=click.Choice(["status", "on", "off"]))
@click.option("--yes", is_flag=True, help="Power off without asking (it is a power cut, not a shutdown).")
@vault_password_option
@click.pass_obj
def power(app: App, inventory: Path, name: str, action: str, yes: bool, vault_password_file: Path | None) -> None:
    """Read or set NODE's power through its fence device (its BMC).  "off"
    cuts the power at once, as fencing does; it asks first unless --yes."""
    inv = load_or_exit(app, inventory)
    secrets = read_secrets(inventory, vault_password_file)
    if action == "off" and not yes:
        click.confirm(f"Cut the power of {name} now (no shutdown)?", abort=True)
    try:
        state = fence_mod.power(inv, name, secrets, action)  # type: ignore[arg-type]
    except fence_mod.FenceError as exc:
        raise StackwrightError(f"node power: {exc}") from None
    app.console.print(f"{name}: power {state}")
