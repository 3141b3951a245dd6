"""`stackwright check`: the health of the running cloud."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from .. import credentials, health
from ..main import (
    App,
    StackwrightError,
    inventory_argument,
    load_or_exit,
    node_access,
    private_key_option,
    read_secrets,
    vault_password_option,
)
from ..paths import work_dir
from ..runner import run_playbook

STYLE = {health.OK: "green", health.WARNING: "yellow", health.FAILED: "bold red"}


@click.command()
@inventory_argument
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@private_key_option
@vault_password_option
@click.pass_obj
def check(app: App, inventory: Path, fmt: str, private_key: Path | None, vault_password_file: Path | None) -> None:
    """Health of everything in INVENTORY's cloud, changing nothing: every
    API endpoint answers; Nova's services and hypervisors, Neutron's agents
    and Cinder's services are up, as the service catalog expects them;
    Ceph's health; RabbitMQ and MariaDB answer; the certificates
    Stackwright made are not near their end.  Exits 0 when nothing failed
    (warnings are shown), 1 when something did."""
    inv = load_or_exit(app, inventory, deploying=True)
    _cloud, conn = credentials.connect(inv, read_secrets(inventory, vault_password_file)["keystone_admin_password"])
    work = work_dir(inventory, inv.cloud.name)
    if not (work / "inventory" / "hosts.yml").exists():
        raise StackwrightError(f"check: no rendered inventory in {work}: deploy the cloud first")
    private_key, known_hosts = node_access(inv, private_key)
    report = health.NodeReport()
    quiet = app.console if fmt == "text" else app.err
    run_playbook("check.yml", inventory_dir=work / "inventory", work=work / "check", console=quiet,
                 private_key=private_key, known_hosts=known_hosts, on_event=report.handle)
    rows = [*health.endpoints(conn), *health.services(conn, inv), *health.hypervisors(conn, inv),
            *health.node_rows(report)]
    if fmt == "json":
        click.echo(health.as_json(rows))
    else:
        table = Table(title=f"check {inv.cloud.name}")
        for column in ("area", "item", "status", "detail"):
            table.add_column(column)
        for r in rows:
            table.add_row(r.area, r.item, f"[{STYLE[r.status]}]{r.status}[/]", r.detail)
        app.console.print(table)
        overall = health.worst(rows)
        app.console.print(f"cloud {inv.cloud.name!r}: {overall}", style=STYLE[overall])
    if health.worst(rows) == health.FAILED:
        sys.exit(1)
