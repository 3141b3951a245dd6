"""`stackwright deploy`: render the inventory, run the site playbook, write
the operator's credentials."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping
from pathlib import Path

import click

from .. import catalog, credentials, health, orchestrate
from .. import secrets as secrets_mod
from ..lab import adapt
from ..main import (
    App,
    StackwrightError,
    cloud_locked,
    inventory_argument,
    load_or_exit,
    node_access,
    private_key_option,
    read_secrets,
    vault_password_option,
)
from ..model import Inventory
from ..paths import data_dir, secrets_file, work_dir
from ..render import render
from ..runner import run_playbook, summary_table
from .check import rows_table


def _phases(value: str | None) -> str | None:
    """--tags: only phases the catalog knows (an unknown tag would run
    nothing and say nothing)."""
    if value is None:
        return None
    known = catalog.phases()
    for tag in (t.strip() for t in value.split(",")):
        if tag not in known:
            close = difflib.get_close_matches(tag.replace("-", "_"), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise click.BadParameter(f"no phase {tag!r}; {hint}phases: {', '.join(known)}")
    return value


@click.command()
@inventory_argument
@private_key_option
@vault_password_option
@click.option("--limit", help="Only these hosts or groups (Ansible --limit pattern).")
@click.option("--tags", callback=lambda ctx, param, value: _phases(value),
              help=f"Only these phases, comma-separated ({', '.join(catalog.phases())}).")
@click.option("--mitogen", is_flag=True, envvar="STACKWRIGHT_MITOGEN",
              help="Run the tasks through Mitogen: about 5x less overhead per task (see docs/benchmarks.md), "
                   "but a third-party Ansible strategy plugin that ansible-core deprecates, so opt-in only.")
@click.option("--full", is_flag=True,
              help="Run every phase, also those whose nodes show no change since the last complete deploy "
                   "(the check sees files, services and packages, not database rows, users or API objects).")
@click.pass_obj
def deploy(app: App, inventory: Path, private_key: Path | None, vault_password_file: Path | None,
           limit: str | None, tags: str | None, mitogen: bool, full: bool) -> None:
    """Deploy the cloud described by INVENTORY (shared services and Keystone)."""
    inv = load_or_exit(app, inventory, deploying=True)
    # one run at a time against the cloud: a second deploy is refused
    with cloud_locked(inventory, inv):
        secrets_path = secrets_file(inventory)
        if not secrets_path.exists():
            secrets_mod.write(secrets_path)
            app.console.print(f"generated the secrets file {secrets_path} (mode 0600)")
        elif added := secrets_mod.complete(secrets_path):
            app.console.print(f"added {len(added)} new secret(s) to {secrets_path}: {', '.join(added)}")
        values = read_secrets(inventory, vault_password_file)
        work = work_dir(inventory, inv.cloud.name)
        private_key, known_hosts = node_access(inv, private_key)
        if known_hosts is not None:  # the lab's nodes: its kernel's limits apply
            inv = adapt(inv)
            app.console.print(f"using the lab's SSH key for cloud {inv.cloud.name!r}; lab kernel: userspace OVS "
                              "datapath, bonds and VLANs built by OVS, no default route, dpkg without fsync")
        render(inv, work / "inventory")
        run = functools.partial(run_playbook, inventory_dir=work / "inventory", work=work, console=app.console,
                                vault_password_file=vault_password_file, private_key=private_key,
                                known_hosts=known_hosts, mitogen=mitogen)
        req = orchestrate.Request(
            cloud=inv.cloud.name, work=work, inventory_dir=work / "inventory", secrets=secrets_path, data=data_dir(),
            hosts=sorted(n.name for n in inv.nodes), extravars={"stackwright_local_cache": str(work / "cache")},
            tags=tags, limit=limit, full=full)
        outcome = orchestrate.deploy(req, run, lambda msg: app.console.print(msg, markup=False, highlight=False))
        result = outcome.result
        if result is None:
            app.console.print(f"nothing to do: every phase of cloud {inv.cloud.name!r} matches the last "
                              "complete deploy (deploy --full runs them all anyway).")
            _credentials(app, inv, inventory, values)
            return
        app.console.print(summary_table(result))
        changed = ", ".join(f"{h}={result.changed_by_host.get(h, 0)}" for h in req.hosts)
        app.console.print("changed per host: " + changed)
        if result.rc != 0:
            where = ("; ".join(f"{f.host}: {f.task}" for f in result.failures) or " ".join(result.errors)
                     or result.status)
            raise StackwrightError(f"deploy failed ({where}); full log in {result.artifacts}")
        if tags:
            app.console.print(f"phases {tags} of cloud {inv.cloud.name!r} done in {result.seconds:.0f}s.")
            return
        _credentials(app, inv, inventory, values, result.seconds)
        if catalog.ha_controllers(inv):
            _clusters(app, inv, inventory, private_key, known_hosts)


def _credentials(app: App, inv: Inventory, inventory: Path, values: Mapping[str, str],
                 seconds: float | None = None) -> None:
    clouds, rc = credentials.write(inv, inventory, values["keystone_admin_password"], values["cloud_ca_certificate"])
    done = f"cloud {inv.cloud.name!r} deployed in {seconds:.0f}s.\n" if seconds is not None else ""
    app.console.print(f"{done}credentials: {clouds} (cloud {inv.cloud.name!r}) and {rc}, both mode 0600\n"
                      f"try: OS_CLIENT_CONFIG_FILE={clouds} OS_CLOUD={inv.cloud.name} openstack token issue")
    if line := credentials.dashboard(inv, inventory):
        app.console.print(line)


def _clusters(app: App, inv: Inventory, inventory: Path, private_key: Path | None, known_hosts: Path | None) -> None:
    """Several controllers: the clusters as the deploy leaves them (check.yml's
    cluster plays, read as `stackwright check` reads them) - who holds each
    VIP, Galera's members and states, the brokers, pacemaker's resources
    and failed actions."""
    report = health.NodeReport()
    work = work_dir(inventory, inv.cloud.name)
    run_playbook("check.yml", inventory_dir=work / "inventory", work=work / "check", console=app.err,
                 private_key=private_key, known_hosts=known_hosts, tags="cluster", on_event=report.handle)
    app.console.print(rows_table(f"clusters of {inv.cloud.name}", list(health.node_rows(report))))
