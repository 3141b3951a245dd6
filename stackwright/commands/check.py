"""`stackwright check`: the health of the running cloud."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from .. import credentials, health, main

STYLE = {health.OK: "green", health.WARNING: "yellow", health.FAILED: "bold red"}


def rows_table(title: str, rows: list[health.Row]) -> Table:
    """Health rows as check shows them (the deploy's cluster summary too)."""
    table = Table(title=title)
    for column in ("area", "item", "status", "detail"):
        table.add_column(column)
    for r in rows:
        table.add_row(r.area, r.item, f"[{STYLE[r.status]}]{r.status}[/]", r.detail)
    return table


@click.command()
@main.inventory_argument
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@main.private_key_option
@main.vault_password_option
@click.pass_obj
def check(app: main.App, inventory: Path, fmt: str, private_key: Path | None, vault_password_file: Path | None) -> None:
    """Health of everything in INVENTORY's cloud, changing nothing: every
    API endpoint answers; Nova's services and hypervisors, Neutron's agents
    and Cinder's services are up, as the service catalog expects them;
    a guest can move live between any two compute nodes (their CPUs);
    Ceph's health; RabbitMQ and MariaDB answer; the certificates
    Stackwright made are not near their end.  Exits 0 when nothing failed
    (warnings are shown), 1 when something did."""
    inv = main.load_or_exit(app, inventory, deploying=True)
    secrets = main.read_secrets(inventory, vault_password_file)
    _cloud, conn = credentials.connect(inv, secrets["keystone_admin_password"], inventory)
    report = health.NodeReport()
    main.day2_playbook(app, inv, inventory, "check.yml", private_key, console=app.console if fmt == "text" else app.err,
                  on_event=report.handle, locked=False)  # it only reads: it may run beside a deploy
    rows = [*health.endpoints(conn), *health.services(conn, inv), *health.hypervisors(conn, inv),
            *health.cpus(conn, inv),
            *health.node_rows(report)]
    if fmt == "json":
        click.echo(health.as_json(rows))
    else:
        app.console.print(rows_table(f"check {inv.cloud.name}", rows))
        overall = health.worst(rows)
        app.console.print(f"cloud {inv.cloud.name!r}: {overall}", style=STYLE[overall])
    if health.worst(rows) == health.FAILED:
        sys.exit(1)
