"""Operator credentials for the admin user: clouds.yaml and an openrc, next
to the inventory, mode 0600.  Other clouds in an existing clouds.yaml stay."""

from __future__ import annotations

import shlex
from io import StringIO
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from . import catalog
from .model import Inventory
from .secrets import write_private


def admin_cloud(inv: Inventory, password: str) -> dict[str, Any]:
    return {
        "auth": {
            "auth_url": f"http://{inv.public_endpoint_host()}:{catalog.ports()['keystone']}/v3",
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


def connect(inv: Inventory, password: str) -> tuple[dict[str, Any], Any]:
    """The admin cloud entry and an openstacksdk connection with it, through
    the public endpoints."""
    import openstack  # slow to import: only here

    cloud = admin_cloud(inv, password)
    conn = openstack.connect(**cloud["auth"], region_name=cloud["region_name"], interface=cloud["interface"],
                             identity_api_version="3")
    return cloud, conn


def write(inv: Inventory, inventory_file: Path, password: str) -> tuple[Path, Path]:
    folder = inventory_file.resolve().parent
    clouds_path = folder / "clouds.yaml"
    yaml = YAML()
    data: dict[str, Any] = {}
    if clouds_path.exists():
        loaded = yaml.load(clouds_path.read_text())
        if isinstance(loaded, dict):
            data = loaded
    data.setdefault("clouds", {})[inv.cloud.name] = admin_cloud(inv, password)
    buf = StringIO()
    yaml.dump(data, buf)
    write_private(clouds_path, buf.getvalue())
    auth = admin_cloud(inv, password)["auth"]
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
        "",
    ]
    write_private(rc, "\n".join(lines))
    return clouds_path, rc
