"""`stackwright fernet-rotate`: a new primary Keystone token key, on every
Keystone host."""

from __future__ import annotations

from pathlib import Path

import click

from .. import credentials, main
from ..paths import secrets_file


@click.command("fernet-rotate")
@main.inventory_argument
@main.private_key_option
@main.vault_password_option
@click.pass_obj
def fernet_rotate(app: main.App, inventory: Path, private_key: Path | None, vault_password_file: Path | None) -> None:
    """Rotate the fernet keys of INVENTORY's Keystone and give every
    Keystone host the same ones (playbooks/fernet-rotate.yml).  A token
    issued before is checked to validate after; one issued after too.
    Run it regularly (cron): a token outlives max_active_keys - 1
    rotations (default 2)."""
    inv = main.load_or_exit(app, inventory, deploying=True)
    password = main.read_secrets(inventory, vault_password_file)["keystone_admin_password"]
    _cloud, conn = credentials.connect(inv, password, inventory)
    before = conn.auth_token
    result = main.day2_playbook(app, inv, inventory, "fernet-rotate.yml", private_key,
                                secrets_file=secrets_file(inventory), vault_password_file=vault_password_file)
    if result.rc != 0:
        raise main.StackwrightError("fernet-rotate failed: " + "; ".join(f"{f.host}: {f.task}: {f.message}"
                                                                  for f in result.failures))
    _cloud, fresh = credentials.connect(inv, password, inventory)
    after = fresh.auth_token
    for what, token in (("the token issued before the rotation", before), ("a new token", after)):
        answer = fresh.identity.get("/auth/tokens", headers={"X-Subject-Token": token}, raise_exc=False)
        if answer.status_code != 200:
            raise main.StackwrightError(f"fernet-rotate: {what} does not validate (HTTP {answer.status_code})")
    hosts = sorted(h for h, n in result.changed_by_host.items() if n)
    app.console.print(f"fernet keys rotated on {', '.join(hosts) or 'no host'}; tokens issued before and after "
                      "validate", style="green")
