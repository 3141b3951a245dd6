"""`stackwright verify`: smoke-test a deployed cloud end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import credentials
from .. import secrets as secrets_mod
from ..main import App, StackwrightError, inventory_argument, load_or_exit
from ..paths import secrets_file
from ..problems import InventoryError
from ..verify import Options, Verify, table


@click.command()
@inventory_argument
@click.option("--vault-password-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              envvar="STACKWRIGHT_VAULT_PASSWORD_FILE", help="Password file of a vault-encrypted secrets file.")
@click.option("--image", default=Options.image, show_default=True, help="Image of the test server.")
@click.option("--flavor", default=Options.flavor, show_default=True, help="Flavor of the test server.")
@click.option("--network", default=Options.network, show_default=True, help="Tenant network of the test server.")
@click.option("--external-network", default=Options.external_network, show_default=True,
              help="Network the floating IP comes from.")
@click.option("--timeout", default=Options.timeout, show_default=True, type=click.IntRange(10, 3600),
              help="Seconds each step may take.")
@click.option("--keep", is_flag=True, help="Leave the test server and what it uses in place (for debugging).")
@click.pass_obj
def verify(app: App, inventory: Path, vault_password_file: Path | None, image: str, flavor: str, network: str,
           external_network: str, timeout: int, keep: bool) -> None:
    """Smoke-test the cloud of INVENTORY: boot a server, DHCP, metadata,
    floating IP ping from this machine, volume; then clean up.  Exits 1 when
    a step fails."""
    import openstack  # slow to import: only here

    inv = load_or_exit(app, inventory)
    try:
        values = secrets_mod.read(secrets_file(inventory), vault_password_file)
    except InventoryError as exc:
        raise StackwrightError("; ".join(f"{exc.filename}: {p.message} ({p.fix})" for p in exc.problems)) from None
    cloud = credentials.admin_cloud(inv, values["keystone_admin_password"])
    conn = openstack.connect(**cloud["auth"], region_name=cloud["region_name"], interface=cloud["interface"],
                             identity_api_version="3")
    opts = Options(image=image, flavor=flavor, network=network, external_network=external_network,
                   timeout=timeout, keep=keep)
    app.console.print(f"verifying cloud {inv.cloud.name!r} through {cloud['auth']['auth_url']}")
    steps = Verify(conn, opts, app.console).run()
    app.console.print(table(steps))
    failed = [s.name for s in steps if s.result == "failed"]
    if failed:
        app.err.print(f"verify failed: {', '.join(failed)}", style="bold red")
        sys.exit(1)
    app.console.print(f"cloud {inv.cloud.name!r} verified", style="green")
