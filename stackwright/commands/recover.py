"""`stackwright recover database`: start the Galera cluster again after
MariaDB stopped on every controller (playbooks/recover-database.yml; the
mariadb role's `recover` tasks decide, docs/ha.md "Galera")."""

from __future__ import annotations

from pathlib import Path

import click

from .. import catalog, main


@click.group()
def recover() -> None:
    """Bring a cluster back after a whole-cluster outage."""


@recover.command("database")
@main.inventory_argument
@click.option("--from", "from_node", metavar="NODE",
              help="Start from NODE (refused when another member holds newer commits, unless --force).")
@click.option("--force", is_flag=True,
              help="Start even when a member cannot report its position or NODE is behind another: your call.")
@main.private_key_option
@main.vault_password_option
@click.pass_obj
def database(app: main.App, inventory: Path, from_node: str | None, force: bool, private_key: Path | None,
             vault_password_file: Path | None) -> None:
    """Start INVENTORY's Galera cluster after every member stopped: each
    member reports its last commit (grastate.dat, or InnoDB's recovered
    position after a crash), the most advanced one starts a new cluster and
    the others join it one at a time.  Refused, naming every member's
    position, while a member still runs, when one cannot report, or when the
    member you name is behind another."""
    inv = main.load_or_exit(app, inventory, deploying=True)
    members = catalog.service("mariadb").hosts(inv)
    if len(members) < 2:
        raise main.StackwrightError(f"{inventory}: one database server ({members[0]}), no cluster to recover: "
                                    "start MariaDB on it (systemctl start mariadb)")
    if from_node is not None and from_node not in members:
        raise main.StackwrightError(f"--from {from_node}: not a database member (members: {', '.join(members)})")
    extravars: dict[str, object] = {
        "mariadb_recover_force": force,
        # the role's refusal names the command's options, not its variables
        "mariadb_recover_hint": "run `stackwright recover database` again with --force (and --from NODE)."}
    if from_node:
        extravars["mariadb_recover_from"] = from_node
    main.day2_checked(app, inv, inventory, "recover-database.yml", private_key, vault_password_file, extravars,
                      what="recover database: ")
    app.console.print(f"database cluster running again: {', '.join(members)} synced", style="green")
