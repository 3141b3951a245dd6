"""`stackwright node drain|evacuate|enable|power|add|remove`: day-2
actions on a compute node."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.table import Table

from .. import fence as fence_mod
from .. import main, membership
from .. import migrate as migrate_mod
from ..main import (
    App,
    StackwrightError,
    inventory_argument,
    load_or_exit,
    private_key_option,
    read_secrets,
    vault_password_option,
)
from .server import session


def _refused(fmt: str, verb: str, name: str, exc: Exception) -> NoReturn:
    """A refused node action: JSON or the error, exit 1."""
    if fmt == "json":
        click.echo(json.dumps({"node": name, "result": "refused", "reason": str(exc)}))
        raise SystemExit(1) from None
    raise StackwrightError(f"node {verb}: {exc}") from None


def _per_server(app: App, fmt: str, verb: str, name: str, call: Callable[[], list[dict[str, Any]]],
                ok: str, key: str, all_done: str, some_left: str) -> None:
    """Run a whole-node action; print its row per server (or JSON); exit 1
    on refusal or when a server's result is not *ok*."""
    try:
        rows = call()
    except migrate_mod.Refused as exc:
        _refused(fmt, verb, name, exc)
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
    power = None if confirmed else fence_mod.control(inv, name, secrets)
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
    power = fence_mod.control(inv, name, secrets) if node is not None and node.fence is not None else None
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


def _changed_on(result: Any) -> str:
    return f"changed on {', '.join(sorted(h for h, n in result.changed_by_host.items() if n)) or 'no node'}"


def _steps_out(app: App, fmt: str, verb: str, name: str, steps: list[tuple[str, float, str]],
               extra: dict[str, Any], closing: str) -> None:
    """The summary of a node add or remove: a row per step, or JSON."""
    if fmt == "json":
        click.echo(json.dumps({"node": name, "result": {"add": "added", "remove": "removed"}[verb], **extra,
                               "steps": [{"step": s, "seconds": round(t, 1), "result": r} for s, t, r in steps]}))
        return
    table = Table(title=f"node {verb} {name}")
    for column in ("step", "result", "seconds"):
        table.add_column(column)
    for step, seconds, result in steps:
        table.add_row(step, result, f"{seconds:.0f}")
    app.console.print(table)
    app.console.print(closing, style="green")


@node.command()
@inventory_argument
@click.argument("name", metavar="NODE")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: the summary on standard output, the deploy's progress on standard error.")
@private_key_option
@vault_password_option
@click.pass_context
def add(ctx: click.Context, inventory: Path, name: str, fmt: str, private_key: Path | None,
        vault_password_file: Path | None) -> None:
    """Bring compute NODE, newly written into INVENTORY, into the running
    cloud: its own deploy (site.yml limited to it: the rest of the cloud is
    not touched), then what every node learns of it (/etc/hosts, the nova
    users' SSH trust: playbooks/node-peers.yml), then wait until it reports
    (nova-compute up and mapped into the cell, its hypervisor, its Open
    vSwitch agent).  Refused for a node the cloud knows already, or one
    with other roles than compute."""
    from .deploy import deploy

    app: App = ctx.obj
    inv, conn, _say, _secrets = session(app, inventory, fmt, vault_password_file)
    try:
        membership.check_add(conn, inv, name, str(inventory))
    except migrate_mod.Refused as exc:
        _refused(fmt, "add", name, exc)
    if fmt == "json":  # the progress goes to standard error
        app.console = app.err
    steps = []
    started = time.monotonic()
    with main.cloud_locked(inventory, inv):  # the deploy and the peers under one run lock
        ctx.invoke(deploy, inventory=inventory, private_key=private_key, vault_password_file=vault_password_file,
                   limit=name)
        steps.append((f"deploy {name} (site.yml --limit {name})", time.monotonic() - started, "done"))
        started = time.monotonic()
        result = main.day2_checked(app, inv, inventory, "node-peers.yml", private_key, vault_password_file, {},
                                   what="node add: ")
    steps.append(("the other nodes learn of it (node-peers.yml)", time.monotonic() - started, _changed_on(result)))
    started = time.monotonic()
    try:
        report = membership.joined(conn, name)
    except migrate_mod.Refused as exc:
        _refused(fmt, "add", name, exc)
    steps.append(("it reports to the cloud", time.monotonic() - started,
                  f"nova-compute up, hypervisor {report['hypervisor']}, Open vSwitch agent alive"))
    _steps_out(app, fmt, "add", name, steps, report,
               f"{name} is part of cloud {inv.cloud.name} and takes servers")


@node.command()
@inventory_argument
@click.argument("name", metavar="NODE")
@click.option("--drain", is_flag=True, help="Move NODE's servers away first (as `node drain` does).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--timeout", default=900, show_default=True, type=click.IntRange(30, 7200),
              help="Seconds each server's move may take (with --drain).")
@private_key_option
@vault_password_option
@click.pass_obj
def remove(app: App, inventory: Path, name: str, drain: bool, fmt: str, timeout: int, private_key: Path | None,
           vault_password_file: Path | None) -> None:
    """Take compute NODE out of the cloud: refused while servers live
    there (--drain moves them away first); its compute service is
    disabled; then playbooks/node-remove.yml: its Nova and Neutron
    services stopped (a dead node is skipped), its network agents and
    compute service deleted (with its resource provider and cell mapping),
    and the other nodes forget it (/etc/hosts, SSH and libvirt trust).  Then delete its
    entry from INVENTORY: a deploy would set it up again."""
    inv, conn, say, _secrets = session(app, inventory, fmt, vault_password_file)
    steps = []
    try:
        held = membership.check_remove(conn, inv, name, str(inventory), drain)
        if [s for s in conn.compute.services(binary="nova-compute") if s.host == name]:
            started = time.monotonic()
            rows = migrate_mod.drain(conn, inv, name, say, timeout)  # disables it; moves what is there
            left = [r["server"] for r in rows if r["result"] != "moved"]
            if left:
                raise migrate_mod.Refused(f"{', '.join(left)} stayed on {name}: nothing was removed")
            steps.append(("disable its compute service" + (f", move {len(held)} server(s) away" if held else ""),
                          time.monotonic() - started, "done"))
    except migrate_mod.Refused as exc:
        _refused(fmt, "remove", name, exc)
    if fmt == "json":
        app.console = app.err
    extravars: dict[str, Any] = {"stackwright_node": name, "stackwright_inventory": str(inventory.resolve())}
    if vault_password_file is not None:
        extravars["stackwright_vault_password_file"] = str(vault_password_file.resolve())
    result = main.day2_checked(app, inv, inventory, "node-remove.yml", private_key, vault_password_file, extravars,
                               what="node remove: ", dead_ok=True)
    labels = {"stop": "stop its Nova and Neutron services", "forget": "delete its agents and compute service",
              "peers": "the other nodes forget it"}
    for phase in result.phases:
        if phase.name in labels:
            steps.append((labels[phase.name], phase.seconds, "not reachable: skipped (keep it off: it would "
                          "report again)" if phase.unreachable else f"{phase.changed} change(s)"))
    _steps_out(app, fmt, "remove", name, steps, {},
               f"{name} left cloud {inv.cloud.name}. Delete its entry from {inventory} now: "
               "a deploy would set it up again")
