"""Turn an inventory model into a standard Ansible inventory directory:
hosts.yml (groups), group_vars/all.yml (cloud-wide) and host_vars/<node>.yml.
The templates live in the top-level templates/inventory/ folder.  Output is
deterministic: the same model always gives the same bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from . import catalog
from .catalog import NODE_ROLES
from .layout import NodeLayout, build
from .model import Inventory, Node
from .paths import data_dir


def _yaml(value: Any) -> str:
    """A YAML scalar/flow value (JSON is valid YAML and always quoted right)."""
    return json.dumps(value, sort_keys=False)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir() / "templates" / "inventory")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - renders YAML, not HTML
    )
    env.filters["yaml"] = _yaml
    return env


def node_vars(inv: Inventory, node: Node, layout: NodeLayout) -> dict[str, Any]:
    ssh = inv.ssh_for(node)
    networks = {}
    for name, att in node.networks.items():
        net = inv.network(name)
        networks[name] = {
            "role": net.role,
            "interface": att.interface,
            "address": str(att.address) if att.address else None,
            "prefix": net.cidr.prefixlen,
            "cidr": str(net.cidr),
            "vlan": net.vlan,
            "mtu": net.mtu,
        }
    addresses = {}
    for role in ("management", "api", "tenant", "external", "storage", "admin"):
        addr = inv.address(node, role)
        addresses[role] = str(addr) if addr else None
    return {
        "ssh": ssh,
        "roles": sorted(set(node.roles), key=NODE_ROLES.index),
        "networks": networks,
        "addresses": addresses,
        "nics": [n.model_dump(exclude_none=True) for n in node.nics],
        "bonds": [b.model_dump(exclude_none=True) for b in node.bonds],
        "layout": layout.as_vars(),
        # its BMC: pacemaker's fence device for it (the password is the
        # secrets file's fence_password_<node>)
        "fence": node.fence.model_dump(mode="json") if node.fence else None,
    }


def vips(inv: Inventory) -> list[dict[str, Any]]:
    """The cloud's virtual IPs, each with the network it lives in (the
    internal one on management, the public one on the api network, or on
    management without one): what pacemaker's IPaddr2 resources hold."""
    out = []
    for name, roles in (("internal", ("management",)), ("public", ("api", "management"))):
        vip = getattr(inv.cloud, f"{name}_vip")
        if vip is None:
            continue
        net = next((n for role in roles for n in inv.networks if n.role == role and vip in n.cidr), None)
        if net is not None:
            out.append({"name": name, "address": str(vip), "prefix": net.cidr.prefixlen, "network": net.name,
                        "role": net.role})
    return out


def cloud_vars(inv: Inventory) -> dict[str, Any]:
    c = inv.cloud
    return {
        "name": c.name,
        "region": c.region,
        "release": c.release,
        "domain": c.domain,
        "internal_vip": str(c.internal_vip) if c.internal_vip else None,
        "public_vip": str(c.public_vip) if c.public_vip else None,
        "vips": vips(inv),
        "internal_host": inv.internal_endpoint_host(),
        "public_host": inv.public_endpoint_host(),
        "internal_address": inv.internal_endpoint_address(),
        "public_address": inv.public_endpoint_address(),
        "ntp_servers": list(c.ntp_servers),
        "apt_proxy": c.apt_proxy,
        "internal_fqdn": c.internal_fqdn,
        "public_fqdn": c.public_fqdn,
        "tls": c.tls,
        "tls_files": {name: str(getattr(c, name)) if getattr(c, name) else None
                      for name in ("tls_certificate", "tls_key", "tls_ca")},
        "services": c.services.model_dump(),
        "ovs_datapath": c.ovs_datapath,
        "kernel_bonding": c.kernel_bonding,
        "default_route": c.default_route,
        "dpkg_unsafe_io": c.dpkg_unsafe_io,
        "hypervisor": c.hypervisor,
        "networks": {
            n.name: {
                "role": n.role,
                "cidr": str(n.cidr),
                "gateway": str(n.gateway) if n.gateway else None,
                "vlan": n.vlan,
                "mtu": n.mtu,
                "type": n.segmentation,
                "physnet": n.physical_network,
                "bridge": n.ovs_bridge,
                "vlan_range": n.vlan_range,
                "floating_range": (
                    [str(n.floating_range.start), str(n.floating_range.end)] if n.floating_range else None
                ),
            }
            for n in inv.networks
        },
    }


def groups(inv: Inventory) -> dict[str, list[str]]:
    return {role: sorted(n.name for n in inv.nodes_with_role(role)) for role in NODE_ROLES}


def service_groups(inv: Inventory) -> tuple[dict[str, tuple[str, ...]], dict[str, list[str]]]:
    """The catalog's groups: those made of whole node roles as children of
    the node-role groups (the hosts file says where a service runs), the
    others (computed from the layout, or left out by this inventory: empty)
    as host lists."""
    by_role: dict[str, tuple[str, ...]] = {}
    by_host: dict[str, list[str]] = {}
    for svc in catalog.deployable():
        if svc.members is None and not svc.left_out(inv):
            by_role[svc.group] = svc.runs_on
        else:
            by_host[svc.group] = svc.hosts(inv)
    return by_role, by_host


def render_files(inv: Inventory) -> dict[str, str]:
    """Relative path -> file content, for every file of the inventory."""
    env = _env()
    layouts = build(inv)  # each node's layout once, for its vars and the openvswitch group
    by_role, by_host = service_groups(inv)
    files = {
        "hosts.yml": env.get_template("hosts.yml.j2").render(
            cloud=cloud_vars(inv), groups=groups(inv), service_groups=by_role, host_groups=by_host,
            nodes=sorted(n.name for n in inv.nodes),
        ),
        "group_vars/all.yml": env.get_template("group_vars_all.yml.j2").render(
            cloud=cloud_vars(inv), packages=catalog.packages(inv), units=catalog.units(), databases=catalog.databases(),
            ports=catalog.ports(),
            shared=catalog.shared_values(inv), frontends=catalog.frontends(inv)),
    }
    for node in sorted(inv.nodes, key=lambda n: n.name):
        files[f"host_vars/{node.name}.yml"] = env.get_template("host_vars.yml.j2").render(
            name=node.name, node=node_vars(inv, node, layouts[node.name])
        )
    return files


def render(inv: Inventory, out: Path) -> list[Path]:
    """Write the inventory into *out*; files we did not write are left alone,
    files we wrote before are replaced only when their content changed."""
    written = []
    for rel, content in render_files(inv).items():
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and target.read_text() == content:
            continue
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(content)
        tmp.replace(target)
        written.append(target)
    return written
