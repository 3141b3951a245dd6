"""`stackwright lab up|down|power|status|ssh`: the built-in lab on this machine."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click
from rich.table import Table

from .. import secrets as secrets_mod
from ..lab import Lab, LabError
from ..main import App, StackwrightError, inventory_argument, load_or_exit
from ..model import Node
from ..paths import secrets_file
from ..problems import InventoryError


def _lab(app: App, inventory: Path) -> Lab:
    inv = load_or_exit(app, inventory)
    return Lab(inv, log=lambda msg: app.console.print(f"[lab] {msg}", markup=False, highlight=False))


def _node(the_lab: Lab, inventory: Path, name: str) -> Node:
    match = [n for n in the_lab.inv.nodes if n.name == name]
    if not match:
        names = ", ".join(n.name for n in the_lab.inv.nodes)
        raise StackwrightError(f"no node {name!r} in {inventory} (nodes: {names})")
    return match[0]


@click.group()
def lab() -> None:
    """Lab nodes (systemd-nspawn) for an inventory, on this machine."""


@lab.command()
@inventory_argument
@click.pass_obj
def up(app: App, inventory: Path) -> None:
    """Create (or restart) the lab nodes of INVENTORY; running twice is harmless.

    Nodes with a fence device get a simulated BMC on the lab host, its
    password added to the secrets file (fence_password_NODE)."""
    the_lab = _lab(app, inventory)
    start = time.monotonic()
    fenced = [n.name for n in the_lab.inv.nodes if n.fence is not None]
    try:
        passwords = secrets_mod.lab_fence_passwords(secrets_file(inventory), fenced) if fenced else {}
    except InventoryError as exc:
        raise StackwrightError("lab up: " + "; ".join(f"{exc.filename}: {p.message} ({p.fix})"
                                                      for p in exc.problems)) from None
    try:
        the_lab.up(passwords)
    except LabError as exc:
        raise StackwrightError(f"lab up: {exc}") from None
    app.console.print(f"lab {the_lab.inv.cloud.name!r} is up: {len(the_lab.inv.nodes)} node(s) "
                      f"in {time.monotonic() - start:.0f} s; try `stackwright lab status {inventory}`")


@lab.command()
@inventory_argument
@click.pass_obj
def down(app: App, inventory: Path) -> None:
    """Remove the lab nodes, bridges and processes of INVENTORY (keeps the base image and apt cache)."""
    the_lab = _lab(app, inventory)
    try:
        the_lab.down()
    except LabError as exc:
        raise StackwrightError(f"lab down: {exc}") from None
    app.console.print(f"lab {the_lab.inv.cloud.name!r} removed")


@lab.command()
@inventory_argument
@click.argument("state", type=click.Choice(["off", "on"]))
@click.argument("node_name", metavar="NODE")
@click.pass_obj
def power(app: App, inventory: Path, state: str, node_name: str) -> None:
    """Cut a lab node's power (every process killed at once, as when a
    server loses power) or boot it again: for fault tests (evacuate, HA)."""
    the_lab = _lab(app, inventory)
    node = _node(the_lab, inventory, node_name)
    try:
        if state == "off":
            was_on = the_lab.power_off(node)
            app.console.print(f"node {node.name}: power cut" if was_on else f"node {node.name} was off already")
        else:
            the_lab.power_on(node)
            app.console.print(f"node {node.name} is up ({the_lab.ssh_target(node)})")
    except LabError as exc:
        raise StackwrightError(f"lab power {state}: {exc}") from None


def _cable_command(name: str, plug: bool, help_text: str) -> click.Command:
    """`lab cut` (plug False) or `lab heal` (plug True): the same arguments,
    the node's cables taken down or up (Lab.set_cables)."""

    @lab.command(name, help=help_text)
    @inventory_argument
    @click.argument("node_name", metavar="NODE")
    @click.argument("network", required=False)
    @click.pass_obj
    def command(app: App, inventory: Path, node_name: str, network: str | None) -> None:
        the_lab = _lab(app, inventory)
        node = _node(the_lab, inventory, node_name)
        try:
            nics = the_lab.set_cables(node, network, up=plug)
        except LabError as exc:
            raise StackwrightError(f"lab {name}: {exc}") from None
        app.console.print(f"node {node.name}: {', '.join(nics)} {'plugged back in' if plug else 'unplugged'}")

    return command


cut = _cable_command("cut", False, """Pull a lab node's cables: all, or those of the NICs that carry
    NETWORK.  The node keeps running and sees no carrier, as when a cable or
    switch port fails: for fault tests (partitions, HA).""")
heal = _cable_command("heal", True, "Plug a lab node's cables back in (all, or those carrying NETWORK).")


@lab.command()
@inventory_argument
@click.pass_obj
def status(app: App, inventory: Path) -> None:
    """Show each lab node: running, SSH address, systemd state."""
    the_lab = _lab(app, inventory)
    table = Table(title=f"lab {the_lab.inv.cloud.name}")
    for col in ("node", "roles", "running", "ssh", "state"):
        table.add_column(col)
    rows = list(the_lab.status())
    for row in rows:
        table.add_row(row["node"], row["roles"], "yes" if row["running"] else "no", row["ssh"], row["state"])
    app.console.print(table)
    if not all(r["running"] for r in rows):
        raise SystemExit(3)


@lab.command(context_settings={"ignore_unknown_options": True})
@inventory_argument
@click.argument("node")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_obj
def ssh(app: App, inventory: Path, node: str, command: tuple[str, ...]) -> None:
    """Open a shell (or run COMMAND) on lab NODE over SSH."""
    the_lab = _lab(app, inventory)
    args = the_lab.ssh_args(_node(the_lab, inventory, node))
    if not command:
        args.insert(1, "-t")
    os.execvp(args[0], [*args, *command])  # noqa: S606 - hands the terminal to ssh
