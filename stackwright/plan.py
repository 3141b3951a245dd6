"""The plan: what Stackwright will build on each node, derived from the
inventory alone (no host is contacted).

For every network a node is on, the chain from NICs to the address:
NIC(s) -> bond -> VLAN tag -> OVS bridge -> network, with MTU; the NIC that
carries SSH; the OVS bridges and their ports; the services that land there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, cast

from . import catalog, render
from .layout import NodeLayout, Port
from .layout import build as build_layouts
from .model import Bond, Inventory, Network, Node


@dataclass
class Link:
    network: str
    role: str
    address: str | None
    mtu: int
    nics: list[str]
    bond: dict[str, Any] | None
    vlan: int | None
    bridge: str | None
    bridges: list[str]
    chain: str


@dataclass
class NodePlan:
    name: str
    roles: list[str]
    ssh: str
    ssh_via: str | None
    links: list[Link] = field(default_factory=list)
    ovs_bridges: dict[str, list[str]] = field(default_factory=dict)
    services: list[str] = field(default_factory=list)
    # what the host_network and openvswitch roles build (links, bridges, ports)
    layout: dict[str, Any] = field(default_factory=dict)


def _port_desc(port: Port) -> str:
    if port.type == "internal":
        return f"{port.name} (internal port{f', tag {port.tag}' if port.tag else ''})"
    if port.type == "patch":
        return f"patch to br-{port.name.removeprefix('pt-')}"
    if port.type == "bond":
        return f"{port.name} (bond {'+'.join(port.members)} {port.bond_mode} lacp={port.lacp})"
    return port.name


BRIDGE_NOTES = {"br-int": "(instance ports; Neutron patches it to the other bridges)",
                "br-tun": "(vxlan/gre tunnel ports to the other nodes)"}


def _bond_desc(bond: Bond, lay: NodeLayout) -> dict[str, Any]:
    """The bond as it is built: an OVS bond (also a Linux bond where the
    kernel has no bonding), or a kernel bond."""
    port = next((p for b in lay.bridges for p in b.ports if p.type == "bond" and p.name == bond.name), None)
    if port is not None:
        return {"name": bond.name, "provider": "ovs", "members": list(bond.members), "mode": port.bond_mode,
                "lacp": port.lacp}
    return {"name": bond.name, "provider": "linux", "members": list(bond.members),
            "mode": bond.linux_mode, "miimon": bond.miimon or 100,
            "lacp_rate": bond.lacp_rate, "xmit_hash_policy": bond.xmit_hash_policy}


def node_plan(inv: Inventory, node: Node, lay: NodeLayout, services: list[str]) -> NodePlan:
    access = inv.ssh_for(node)
    bonds = {b.name: b for b in node.bonds}
    plan = NodePlan(node.name, list(node.roles), f"{access.user}@{access.host}:{access.port}", None)
    for net_name, att in node.networks.items():
        net: Network = inv.network(net_name)
        bond = bonds.get(att.interface)
        members = list(bond.members) if bond else [att.interface]
        steps = ["+".join(members)]
        desc = _bond_desc(bond, lay) if bond else None
        if desc:
            extra = f" lacp={desc['lacp']}" if desc["provider"] == "ovs" else f" miimon={desc['miimon']}"
            steps.append(f"{desc['name']} ({desc['provider']} {desc['mode']}{extra})")
        route = lay.network_bridge.get(net_name)
        path = route.split(" -> ") if route else []
        for i, bridge in enumerate(path):
            steps.append(f"patch -> {bridge}" if i else bridge)
        if net.vlan:
            steps.append(f"vlan {net.vlan}")
        holder = lay.address_link.get(net_name)
        addr = f"{att.address}/{net.cidr.prefixlen}" if att.address else "(no address)"
        on = f" on {holder}" if holder and holder != att.interface and holder != net_name else ""
        steps.append(f"{net_name} {addr}{on} mtu {net.mtu}")
        if net.role == "tenant" and net.segmentation in ("vxlan", "gre") and lay.ovs:
            steps.append(f"{net.segmentation} tunnel endpoint (br-tun)")
        plan.links.append(Link(
            network=net_name, role=net.role, address=str(att.address) if att.address else None,
            mtu=net.mtu, nics=members, bond=desc, vlan=net.vlan, bridge=path[-1] if path else None,
            bridges=path, chain=" -> ".join(steps),
        ))
        if att.address is not None and str(att.address) == str(access.host):
            plan.ssh_via = "+".join(members)
    plan.ovs_bridges = {b.name: [_port_desc(p) for p in b.ports] or ([BRIDGE_NOTES[b.name]] if b.name in BRIDGE_NOTES
                                                                      else [])
                        for b in lay.bridges}
    plan.layout = lay.as_vars()
    plan.services = services
    return plan


def instance_storage(inv: Inventory) -> dict[str, str]:
    """Where instance disks live, and what that lets migrate and evacuate do."""
    if inv.cloud.services.ceph:
        return {"disks": "Ceph pool vms (shared by every compute node)",
                "live_migration": "memory only: the disk stays in Ceph",
                "evacuate": "the instance restarts elsewhere on its own disk"}
    return {"disks": "each compute node's local disk (/var/lib/nova/instances)",
            "live_migration": "block migration: the disk is copied too (slower, more traffic)",
            "evacuate": "rebuilds the instance from its image elsewhere: what was on its disk is lost "
                        "(volumes stay; set services.ceph for shared instance disks)"}


def cluster(inv: Inventory) -> dict[str, Any] | None:
    """The HA layout, None without a VIP: the members holding the VIPs
    (corosync on their management addresses, pacemaker, HAProxy), the
    votes a partition needs to keep its resources, each member's fence
    device, the VIPs, the database members in HAProxy's order (the first
    takes every connection, the others stand by), the brokers, and the APIs
    HAProxy serves with their backends."""
    members = catalog.ha_controllers(inv)
    if not members:
        return None

    def fence(node: Node) -> str | None:
        f = node.fence
        return f"fence_{f.agent} {f.username}@{f.address}:{f.port}" if f else None

    return {
        "members": [{"name": m, "corosync": str(inv.address(inv.node(m), "management")),
                     "fence": fence(inv.node(m))} for m in members],
        "quorum": len(members) // 2 + 1,
        "vips": [{"name": v["name"], "address": v["address"], "network": v["network"]} for v in render.vips(inv)],
        "database": catalog.service("mariadb").hosts(inv),
        "brokers": catalog.service("rabbitmq").hosts(inv),
        "frontends": [{"name": f["name"], "port": f["port"], "public": f["public"],
                       "backends": [b["name"] for b in cast("list[dict[str, str]]", f["backends"])]}
                      for f in catalog.frontends(inv)],
    }


def build(inv: Inventory) -> dict[str, Any]:
    layouts = build_layouts(inv)
    units = catalog.units_by_node(inv)
    nodes = [node_plan(inv, n, layouts[n.name], units[n.name]) for n in sorted(inv.nodes, key=lambda n: n.name)]
    totals = {role: len(inv.nodes_with_role(role)) for role in ("controller", "network", "compute", "storage")}
    return {
        "cloud": inv.cloud.name,
        "endpoints": {"internal": inv.internal_endpoint_host(), "public": inv.public_endpoint_host(),
                      "tls": inv.cloud.tls},
        "ovs_datapath": inv.cloud.ovs_datapath,
        "kernel_bonding": inv.cloud.kernel_bonding,
        "hypervisor": inv.cloud.hypervisor,
        "totals": totals,
        "left_out": catalog.left_out(inv),
        "instance_storage": instance_storage(inv),
        "cluster": cluster(inv),
        "nodes": [asdict(n) for n in nodes],
    }
