"""Operator credentials for the admin user: clouds.yaml and an openrc, next
to the inventory, mode 0600.  Other clouds in an existing clouds.yaml stay.
With TLS they name the CA that signed the public endpoints' certificate:
the operator's `tls_ca`, or the cloud's own CA, written beside them."""

from __future__ import annotations

import shlex
from io import StringIO
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from . import catalog
from .model import Inventory
from .secrets import write_private


def ca_file(inv: Inventory, inventory_file: Path | None) -> str | None:
    """The CA file clients trust for the public endpoints: the operator's
    tls_ca; the cloud's own CA (written by `write`) when it signed them;
    none without TLS, or when the operator's certificate comes from a CA
    the clients trust already."""
    c = inv.cloud
    if not c.tls:
        return None
    if c.tls_certificate is not None:
        return str(c.tls_ca) if c.tls_ca else None
    if inventory_file is None:
        raise ValueError("the cloud's own CA signed its endpoints: name the inventory, beside which its CA file is")
    return str(inventory_file.resolve().parent / f"{c.name}-ca.pem")


def admin_cloud(inv: Inventory, password: str, inventory_file: Path | None = None) -> dict[str, Any]:
    cloud: dict[str, Any] = {
        "auth": {
            "auth_url": f"{catalog.shared_values(inv)['public_endpoint']}:{catalog.ports()['keystone']}/v3",
            "username": "admin",
            "password": password,
            "project_name": "admin",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": inv.cloud.region,
        "interface": "public",
        "identity_api_version": 3,
    }
    if (ca := ca_file(inv, inventory_file)) is not None:
        cloud["cacert"] = ca
    return cloud


def connect(inv: Inventory, password: str, inventory_file: Path | None = None) -> tuple[dict[str, Any], Any]:
    """The admin cloud entry and an openstacksdk connection with it, through
    the public endpoints (trusting the CA of ca_file with TLS)."""
    import openstack  # slow to import: only here

    cloud = admin_cloud(inv, password, inventory_file)
    conn = openstack.connect(**cloud["auth"], region_name=cloud["region_name"], interface=cloud["interface"],
                             identity_api_version="3", **({"cacert": cloud["cacert"]} if "cacert" in cloud else {}))
    return cloud, conn


def dashboard(inv: Inventory, inventory_file: Path) -> str | None:
    """Where the dashboard is, for the deploy's last words (None without
    Horizon), with the CA file its certificate comes from."""
    if not catalog.service("horizon").hosts(inv):
        return None
    ca = ca_file(inv, inventory_file)
    return (f"dashboard: {catalog.shared_values(inv)['public_endpoint']}/ (user admin)"
            + (f", its certificate from the CA in {ca}" if ca else ""))


def write(inv: Inventory, inventory_file: Path, password: str, ca_certificate: str) -> tuple[Path, Path]:
    """clouds.yaml and the openrc; with TLS from the cloud's own CA, its
    certificate (*ca_certificate*, the secrets file's) beside them."""
    folder = inventory_file.resolve().parent
    cloud = admin_cloud(inv, password, inventory_file)
    if inv.cloud.tls and inv.cloud.tls_certificate is None:
        write_private(Path(cloud["cacert"]), ca_certificate)
    clouds_path = folder / "clouds.yaml"
    yaml = YAML()
    data: dict[str, Any] = {}
    if clouds_path.exists():
        loaded = yaml.load(clouds_path.read_text())
        if isinstance(loaded, dict):
            data = loaded
    data.setdefault("clouds", {})[inv.cloud.name] = cloud
    buf = StringIO()
    yaml.dump(data, buf)
    write_private(clouds_path, buf.getvalue())
    auth = cloud["auth"]
    rc = folder / f"{inv.cloud.name}-openrc.sh"
    lines = [
        f"# admin credentials of cloud {inv.cloud.name} (written by stackwright deploy)",
        f"export OS_AUTH_URL={shlex.quote(auth['auth_url'])}",
        "export OS_USERNAME=admin",
        f"export OS_PASSWORD={shlex.quote(password)}",
        "export OS_PROJECT_NAME=admin",
        "export OS_USER_DOMAIN_NAME=Default",
        "export OS_PROJECT_DOMAIN_NAME=Default",
        f"export OS_REGION_NAME={shlex.quote(inv.cloud.region)}",
        "export OS_INTERFACE=public",
        "export OS_IDENTITY_API_VERSION=3",
        *([f"export OS_CACERT={shlex.quote(cloud['cacert'])}"] if "cacert" in cloud else []),
        "",
    ]
    write_private(rc, "\n".join(lines))
    return clouds_path, rc
