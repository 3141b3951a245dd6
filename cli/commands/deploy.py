"""`stackwright deploy`: render the inventory, run the site playbook, write
the operator's credentials."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import credentials
from .. import secrets as secrets_mod
from ..lab import Lab, adapt
from ..main import App, StackwrightError, inventory_argument, load_or_exit
from ..paths import secrets_file, work_dir
from ..problems import InventoryError
from ..render import render
from ..runner import run_playbook, summary_table


@click.command()
@inventory_argument
@click.option("--private-key", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              envvar="STACKWRIGHT_PRIVATE_KEY",
              help="SSH key Ansible uses (default: the lab's key when INVENTORY's lab is up, else your SSH setup).")
@click.option("--vault-password-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              envvar="STACKWRIGHT_VAULT_PASSWORD_FILE", help="Password file of a vault-encrypted secrets file.")
@click.option("--limit", help="Only these hosts or groups (Ansible --limit pattern).")
@click.option("--tags", help="Only these phases, comma-separated (prepare, network, time, mariadb, rabbitmq, "
                             "memcached, keystone, placement, glance, nova, neutron, post_deploy).")
@click.option("--mitogen", is_flag=True, envvar="STACKWRIGHT_MITOGEN",
              help="Run the tasks through Mitogen: about 5x less overhead per task (see docs/benchmarks.md), "
                   "but a third-party Ansible strategy plugin that ansible-core deprecates, so opt-in only.")
@click.pass_obj
def deploy(app: App, inventory: Path, private_key: Path | None, vault_password_file: Path | None,
           limit: str | None, tags: str | None, mitogen: bool) -> None:
    """Deploy the cloud described by INVENTORY (shared services and Keystone)."""
    inv = load_or_exit(app, inventory)
    secrets_path = secrets_file(inventory)
    if not secrets_path.exists():
        secrets_mod.write(secrets_path)
        app.console.print(f"generated the secrets file {secrets_path} (mode 0600)")
    try:
        values = secrets_mod.read(secrets_path, vault_password_file)
    except InventoryError as exc:
        raise StackwrightError("; ".join(f"{exc.filename}: {p.message} ({p.fix})" for p in exc.problems)) from None
    work = work_dir(inventory, inv.cloud.name)
    known_hosts = None
    lab = Lab(inv)
    if private_key is None and lab.is_up():
        private_key, known_hosts = lab.key, lab.known_hosts
        inv = adapt(inv)
        app.console.print(f"using the lab's SSH key for cloud {inv.cloud.name!r}; lab kernel: userspace OVS "
                          "datapath, bonds and VLANs built by OVS, no default route, dpkg without fsync")
    render(inv, work / "inventory")
    app.console.print(f"deploying cloud {inv.cloud.name!r} ({len(inv.nodes)} node(s))")
    result = run_playbook(
        "site.yml", work / "inventory", work, app.console, secrets_file=secrets_path,
        vault_password_file=vault_password_file, private_key=private_key, known_hosts=known_hosts, limit=limit,
        tags=tags, extravars={"stackwright_local_cache": str(work / "cache")}, mitogen=mitogen,
    )
    app.console.print(summary_table(result))
    hosts = sorted(n.name for n in inv.nodes)
    app.console.print("changed per host: " + ", ".join(f"{h}={result.changed_by_host.get(h, 0)}" for h in hosts))
    summary = {
        "cloud": inv.cloud.name, "rc": result.rc, "status": result.status, "seconds": round(result.seconds, 1),
        "phases": [{"name": p.name, "seconds": round(p.seconds, 1), "ok": p.ok, "changed": p.changed,
                    "failed": p.failed + p.unreachable} for p in result.phases],
        "changed_by_host": {h: result.changed_by_host.get(h, 0) for h in hosts},
    }
    (work / "last-deploy.json").write_text(json.dumps(summary, indent=2) + "\n")
    if result.rc != 0:
        where = "; ".join(f"{f.host}: {f.task}" for f in result.failures) or " ".join(result.errors) or result.status
        raise StackwrightError(f"deploy failed ({where}); full log in {result.artifacts}")
    if tags:
        app.console.print(f"phases {tags} of cloud {inv.cloud.name!r} done in {result.seconds:.0f}s.")
        return
    clouds, rc = credentials.write(inv, inventory, values["keystone_admin_password"])
    app.console.print(f"cloud {inv.cloud.name!r} deployed in {result.seconds:.0f}s.\n"
                      f"credentials: {clouds} (cloud {inv.cloud.name!r}) and {rc}, both mode 0600\n"
                      f"try: OS_CLIENT_CONFIG_FILE={clouds} OS_CLOUD={inv.cloud.name} openstack token issue")
