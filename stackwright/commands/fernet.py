"""`stackwright fernet-rotate`: a new primary Keystone token key, on every
Keystone host."""

from __future__ import annotations

from pathlib import Path

import click

from .. import credentials
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
from ..paths import secrets_file, work_dir
from ..runner import run_playbook


@click.command("fernet-rotate")
@inventory_argument
@private_key_option
@vault_password_option
@click.pass_obj
def fernet_rotate(app: App, inventory: Path, private_key: Path | None, vault_password_file: Path | None) -> None:
    """Rotate the fernet keys of INVENTORY's Keystone and give every
    Keystone host the same ones (playbooks/fernet-rotate.yml).  A token
    issued before is checked to validate after; one issued after too.
    Run it regularly (cron): a token outlives max_active_keys - 1
    rotations (default 2)."""
    inv = load_or_exit(app, inventory, deploying=True)
    password = read_secrets(inventory, vault_password_file)["keystone_admin_password"]
    work = work_dir(inventory, inv.cloud.name)
    if not (work / "inventory" / "hosts.yml").exists():
        raise StackwrightError(f"fernet-rotate: no rendered inventory in {work}: deploy the cloud first")
    _cloud, conn = credentials.connect(inv, password)
    before = conn.auth_token
    private_key, known_hosts = node_access(inv, private_key)
    result = run_playbook("fernet-rotate.yml", inventory_dir=work / "inventory", work=work / "fernet",
                          console=app.console, secrets_file=secrets_file(inventory),
                          vault_password_file=vault_password_file, private_key=private_key, known_hosts=known_hosts)
    if result.rc != 0:
        raise StackwrightError("fernet-rotate failed: " + "; ".join(f"{f.host}: {f.task}: {f.message}"
                                                                  for f in result.failures))
    _cloud, fresh = credentials.connect(inv, password)
    after = fresh.auth_token
    for what, token in (("the token issued before the rotation", before), ("a new token", after)):
        answer = fresh.identity.get("/auth/tokens", headers={"X-Subject-Token": token}, raise_exc=False)
        if answer.status_code != 200:
            raise StackwrightError(f"fernet-rotate: {what} does not validate (HTTP {answer.status_code})")
    hosts = sorted(h for h, n in result.changed_by_host.items() if n)
    app.console.print(f"fernet keys rotated on {', '.join(hosts) or 'no host'}; tokens issued before and after "
                      "validate", style="green")
