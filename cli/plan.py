"""The plan: what Stackwright will build on each node, derived from the
inventory alone (no host is contacted).

For every network a node is on, the chain from NICs to the address:
NIC(s) -> bond -> VLAN tag -> OVS bridge -> network, with MTU; the NIC that
carries SSH; the OVS bridges and their ports; the services that land there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .checks import linux_bond_mode
from .model import Bond, Inventory, Network, Node

# The services each node role runs.  In the seeds' scheme 1 (no network
# node) the Neutron agents run on the controllers.
CONTROLLER_SERVICES = (
    "chrony", "mariadb", "rabbitmq", "memcached", "keystone", "glance-api", "placement-api", "nova-api",
    "nova-conductor", "nova-scheduler", "nova-novncproxy", "neutron-server", "cinder-api", "cinder-scheduler",
    "horizon",
)
HA_SERVICES = ("haproxy", "pacemaker", "corosync")
NETWORK_SERVICES = ("chrony", "openvswitch", "neutron-openvswitch-agent", "neutron-l3-agent",
                    "neutron-dhcp-agent", "neutron-metadata-agent")
COMPUTE_SERVICES = ("chrony", "libvirt", "nova-compute", "openvswitch", "neutron-openvswitch-agent")
STORAGE_SERVICES = ("chrony", "cinder-volume")


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


def services_for(inv: Inventory, node: Node) -> list[str]:
    out: list[str] = []
    has_network_nodes = bool(inv.nodes_with_role("network"))
    ha = len(inv.nodes_with_role("controller")) > 1
    if "controller" in node.roles:
        out += CONTROLLER_SERVICES
        if ha:
            out += HA_SERVICES
        if not has_network_nodes:
            out += NETWORK_SERVICES
        svc = inv.cloud.services
        out += [s for s, on in (("heat-api", svc.heat), ("heat-engine", svc.heat), ("swift-proxy", svc.swift),
                                ("ceilometer-central", svc.ceilometer), ("ceph-mon", svc.ceph),
                                ("ceph-mgr", svc.ceph)) if on]
    if "network" in node.roles:
        out += NETWORK_SERVICES
    if "compute" in node.roles:
        out += COMPUTE_SERVICES
        if inv.cloud.services.ceilometer:
            out.append("ceilometer-compute")
    if "storage" in node.roles:
        out += STORAGE_SERVICES
        if inv.cloud.services.swift:
            out += ["swift-account", "swift-container", "swift-object"]
        if inv.cloud.services.ceph:
            out.append("ceph-osd")
    return list(dict.fromkeys(out))


def _bond_desc(bond: Bond) -> dict[str, Any]:
    if bond.provider == "ovs":
        return {"name": bond.name, "provider": "ovs", "members": list(bond.members),
                "mode": bond.mode or ("balance-tcp" if bond.lacp in ("active", "passive") else "active-backup"),
                "lacp": bond.lacp or "off"}
    return {"name": bond.name, "provider": "linux", "members": list(bond.members),
            "mode": linux_bond_mode(bond.mode) or "active-backup", "miimon": bond.miimon or 100,
            "lacp_rate": bond.lacp_rate, "xmit_hash_policy": bond.xmit_hash_policy}


def _uses_ovs(inv: Inventory, node: Node) -> bool:
    return bool({"network", "compute"} & set(node.roles)) or (
        "controller" in node.roles and not inv.nodes_with_role("network"))


def _add(bridges: dict[str, list[str]], bridge: str, port: str) -> None:
    ports = bridges.setdefault(bridge, [])
    if port not in ports:
        ports.append(port)


def node_plan(inv: Inventory, node: Node) -> NodePlan:
    access = inv.ssh_for(node)
    bonds = {b.name: b for b in node.bonds}
    ovs = _uses_ovs(inv, node)
    plan = NodePlan(node.name, list(node.roles), f"{access.user}@{access.host}:{access.port}", None)
    bridges: dict[str, list[str]] = {}
    if ovs:
        bridges["br-int"] = ["(instance ports, patch to every other bridge)"]
    # A NIC (or Linux bond) that joins a provider bridge belongs to OVS: the
    # node's own addresses on it become internal ports of that bridge.
    iface_bridge: dict[str, str] = {}
    for net_name, att in node.networks.items():
        provider = inv.network(net_name)
        bond = bonds.get(att.interface)
        on_ovs_bond = bond is not None and bond.provider == "ovs"
        if ovs and provider.role in ("external", "tenant") and provider.ovs_bridge and not on_ovs_bond:
            iface_bridge.setdefault(att.interface, provider.ovs_bridge)
    for net_name, att in node.networks.items():
        net: Network = inv.network(net_name)
        bond = bonds.get(att.interface)
        members = list(bond.members) if bond else [att.interface]
        steps = ["+".join(members)]
        if bond:
            d = _bond_desc(bond)
            extra = f" lacp={d['lacp']}" if bond.provider == "ovs" else f" miimon={d['miimon']}"
            steps.append(f"{bond.name} ({bond.provider} {d['mode']}{extra})")
        port = bond.name if bond else att.interface
        path: list[str] = []
        provider_bridge = net.ovs_bridge if ovs and net.role in ("external", "tenant") else None
        bridge = provider_bridge
        if bond and bond.provider == "ovs":
            # an OVS bond sits on a bridge of its own (seed 004's br-bondnew);
            # provider bridges reach it through patch ports
            bond_bridge = f"br-{bond.name}"[:15]
            _add(bridges, bond_bridge, bond.name)
            steps.append(bond_bridge)
            path.append(bond_bridge)
            if provider_bridge:
                _add(bridges, bond_bridge, f"patch to {provider_bridge}")
                _add(bridges, provider_bridge, f"patch to {bond_bridge}")
                steps.append(f"patch -> {provider_bridge}")
                path.append(provider_bridge)
            else:
                bridge = bond_bridge
                tag = f", tag {net.vlan}" if net.vlan else ""
                _add(bridges, bond_bridge, f"{net_name} (internal port{tag})")
        elif provider_bridge:
            _add(bridges, provider_bridge, port)
            steps.append(provider_bridge)
            path.append(provider_bridge)
        elif att.interface in iface_bridge:
            bridge = iface_bridge[att.interface]
            tag = f", tag {net.vlan}" if net.vlan else ""
            _add(bridges, bridge, f"{net_name} (internal port{tag})")
            steps.append(bridge)
            path.append(bridge)
        if net.vlan:
            steps.append(f"vlan {net.vlan}")
        addr = f"{att.address}/{net.cidr.prefixlen}" if att.address else "(no address)"
        steps.append(f"{net_name} {addr} mtu {net.mtu}")
        if net.role == "tenant" and net.segmentation in ("vxlan", "gre") and ovs:
            steps.append(f"{net.segmentation} tunnel endpoint (br-tun)")
        plan.links.append(Link(
            network=net_name, role=net.role, address=str(att.address) if att.address else None,
            mtu=net.mtu, nics=members, bond=_bond_desc(bond) if bond else None, vlan=net.vlan, bridge=bridge,
            bridges=path, chain=" -> ".join(steps),
        ))
        if att.address is not None and str(att.address) == str(access.host):
            plan.ssh_via = "+".join(members)
    if ovs and any(inv.network(n).segmentation in ("vxlan", "gre") for n in node.networks
                   if inv.network(n).role == "tenant"):
        bridges["br-tun"] = ["(vxlan/gre tunnel ports to the other nodes)"]
    plan.ovs_bridges = bridges
    plan.services = services_for(inv, node)
    return plan


def build(inv: Inventory) -> dict[str, Any]:
    nodes = [node_plan(inv, n) for n in sorted(inv.nodes, key=lambda n: n.name)]
    totals = {role: len(inv.nodes_with_role(role)) for role in ("controller", "network", "compute", "storage")}
    return {
        "cloud": inv.cloud.name,
        "endpoints": {"internal": inv.internal_endpoint_host(), "public": inv.public_endpoint_host()},
        "ovs_datapath": inv.cloud.ovs_datapath,
        "hypervisor": inv.cloud.hypervisor,
        "totals": totals,
        "nodes": [asdict(n) for n in nodes],
    }
