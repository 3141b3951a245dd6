"""Rules that relate several parts of an inventory.

Each rule yields :class:`Problem` objects; :func:`check` runs them all so the
operator sees every mistake in one go.  A rule never touches a host.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from ipaddress import IPv4Address

from . import catalog, tls
from .model import (
    LINUX_BOND_MODES,
    OVS_BOND_MODES,
    AddressRange,
    Bond,
    Inventory,
    Network,
    Node,
    linux_bond_mode,
)
from .problems import Problem

# Which network roles each node role needs.
REQUIRED_NETWORKS: dict[str, tuple[str, str]] = {
    "compute": ("tenant", "compute nodes carry the VM (tenant) traffic"),
    "network": ("external", "network nodes route tenant networks to the external network"),
}

# Bytes a tunnel header takes from the underlay MTU.
TUNNEL_OVERHEAD = {"vxlan": 50, "gre": 42}


def _address_required(net: Network) -> bool:
    if net.role == "external":
        return False
    return not (net.role == "tenant" and net.segmentation in ("vlan", "flat"))


def parse_vlan_range(text: str) -> tuple[int, int]:
    start, end = text.split(":")
    return int(start), int(end)


def check(inv: Inventory) -> list[Problem]:
    problems: list[Problem] = []
    for rule in (_networks, _network_roles, _network_types, _nodes_unique, _node_interfaces, _bond_options,
                 _node_networks, _mtus, _vlans, _topology, _vips, _cluster_fencing, _services,
                 tls.problems, catalog.problems):
        problems.extend(rule(inv))
    return problems


def _duplicate_names(section: str, what: str, names: list[str]) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            yield Problem((section, i, "name"), f"{what} name {name!r} is already used by {section}[{seen[name]}]",
                          f"give every {what} its own name")
        seen.setdefault(name, i)


def _networks(inv: Inventory) -> Iterator[Problem]:
    yield from _duplicate_names("networks", "network", [n.name for n in inv.networks])
    for i, net in enumerate(inv.networks):
        if net.gateway is not None and net.gateway not in net.cidr:
            yield Problem(
                ("networks", i, "gateway"),
                f"gateway {net.gateway} is outside the network {net.cidr}",
                f"use an address inside {net.cidr} or remove `gateway:`",
            )
        if net.cidr.prefixlen > 30:
            yield Problem(
                ("networks", i, "cidr"),
                f"{net.cidr} is too small to hold nodes",
                "use a prefix of /30 or shorter",
            )
    for i, a in enumerate(inv.networks):
        for b in inv.networks[:i]:
            if a.cidr.overlaps(b.cidr):
                yield Problem(
                    ("networks", i, "cidr"),
                    f"{a.cidr} overlaps network {b.name!r} ({b.cidr})",
                    "give each network its own address range",
                )
    used = {name for node in inv.nodes for name in node.networks}
    for i, net in enumerate(inv.networks):
        if net.name not in used:
            yield Problem(
                ("networks", i, "name"),
                f"network {net.name!r} is not attached to any node",
                "attach it under a node's `networks:` or remove it",
                severity="warning",
            )


def _network_roles(inv: Inventory) -> Iterator[Problem]:
    """One management network (required) and at most one admin network."""
    for i in [i for i, n in enumerate(inv.networks) if n.role == "admin"][1:]:
        yield Problem(("networks", i, "role"), "only one admin network is supported",
                      "give the other networks a different role")
    mgmt = [i for i, n in enumerate(inv.networks) if n.role == "management"]
    if not mgmt:
        yield Problem(
            ("networks",),
            "no network has role `management`",
            "add a network with `role: management`; every node needs one",
        )
    for i in mgmt[1:]:
        yield Problem(
            ("networks", i, "role"),
            "only one management network is supported",
            "give the other networks a different role",
        )


def _nodes_unique(inv: Inventory) -> Iterator[Problem]:
    yield from _duplicate_names("nodes", "node", [n.name for n in inv.nodes])
    for i, node in enumerate(inv.nodes):
        dupes = sorted({r for r in node.roles if node.roles.count(r) > 1})
        if dupes:
            yield Problem(
                ("nodes", i, "roles"),
                f"role {dupes[0]!r} is listed more than once",
                "list each role once",
                severity="warning",
            )
    macs: dict[str, tuple[int, int]] = {}
    for i, node in enumerate(inv.nodes):
        for j, nic in enumerate(node.nics):
            if nic.mac is None:
                continue
            mac = nic.mac.lower()
            if mac in macs:
                a, b = macs[mac]
                yield Problem(
                    ("nodes", i, "nics", j, "mac"),
                    f"MAC {nic.mac} is already used by nodes[{a}].nics[{b}]",
                    "every NIC has its own MAC address",
                )
            macs.setdefault(mac, (i, j))
    # one BMC powers one node: two nodes sharing one would fence each other
    bmcs: dict[tuple[str, int], int] = {}
    for i, node in enumerate(inv.nodes):
        if node.fence is None:
            continue
        where = (node.fence.address, node.fence.port)
        if where in bmcs:
            yield Problem(("nodes", i, "fence"),
                          f"fence device {where[0]}:{where[1]} is already nodes[{bmcs[where]}]'s",
                          "give each node its own BMC address (or port)")
        bmcs.setdefault(where, i)


def _node_interfaces(inv: Inventory) -> Iterator[Problem]:
    for i, node in enumerate(inv.nodes):
        nic_names: dict[str, int] = {}  # NIC -> its index, filled by _nic_rules
        bonded: dict[str, str] = {}  # member NIC -> its bond, filled by _bond_rules
        yield from _nic_rules(i, node, nic_names)
        for j, bond in enumerate(node.bonds):
            yield from _bond_rules((i, j), node, bond, nic_names, bonded)
        yield from _attachment_rules(i, node, nic_names, bonded)


def _nic_rules(i: int, node: Node, nic_names: dict[str, int]) -> Iterator[Problem]:
    for j, nic in enumerate(node.nics):
        if nic.name in nic_names:
            yield Problem(("nodes", i, "nics", j, "name"), f"NIC {nic.name!r} is listed twice", "list each NIC once")
        nic_names.setdefault(nic.name, j)


def _bond_rules(at: tuple[int, int], node: Node, bond: Bond, nic_names: dict[str, int],
                bonded: dict[str, str]) -> Iterator[Problem]:
    path = ("nodes", at[0], "bonds", at[1])
    if bond.name in nic_names:
        yield Problem((*path, "name"), f"bond {bond.name!r} has the name of a NIC",
                      "name bonds differently from NICs, e.g. bond0")
    if len(set(bond.members)) < 2:
        yield Problem((*path, "members"),
                      f"bond {bond.name!r} has {len(set(bond.members))} member(s); a bond needs at least two",
                      "list two or more NICs under `members:`, or attach the network to the NIC directly")
    for k, member in enumerate(bond.members):
        if member not in nic_names:
            yield Problem((*path, "members", k), f"{member!r} is not a NIC of node {node.name!r}",
                          _did_you_mean(member, nic_names) or "add it under `nics:`")
        elif member in bonded:
            yield Problem((*path, "members", k),
                          f"NIC {member!r} is used twice: already a member of bond {bonded[member]!r}",
                          "a NIC can belong to one bond only")
        else:
            bonded[member] = bond.name
    modes = OVS_BOND_MODES if bond.provider == "ovs" else LINUX_BOND_MODES
    mode = bond.mode if bond.provider == "ovs" else linux_bond_mode(bond.mode)
    if mode is not None and mode not in modes:
        yield Problem((*path, "mode"), f"{bond.mode!r} is not a {bond.provider} bond mode",
                      "use one of " + ", ".join(modes) + (" (or 0-6)" if bond.provider == "linux" else ""))


def _attachment_rules(i: int, node: Node, nic_names: dict[str, int], bonded: dict[str, str]) -> Iterator[Problem]:
    bonds = [b.name for b in node.bonds]
    for net_name, att in node.networks.items():
        if att.interface in bonded:
            yield Problem(
                ("nodes", i, "networks", net_name, "interface"),
                f"NIC {att.interface!r} is used twice: it is a member of bond "
                f"{bonded[att.interface]!r} and also carries network {net_name!r}",
                f"attach {net_name!r} to {bonded[att.interface]!r} instead",
            )
        elif att.interface not in nic_names and att.interface not in bonds:
            yield Problem(
                ("nodes", i, "networks", net_name, "interface"),
                f"{att.interface!r} is neither a NIC nor a bond of node {node.name!r}",
                _did_you_mean(att.interface, list(nic_names) + bonds) or "add it under `nics:` or `bonds:`",
            )


def _node_networks(inv: Inventory) -> Iterator[Problem]:
    known = {n.name: n for n in inv.networks}
    owners: dict[str, str] = {}  # address -> the first node that has it
    for i, node in enumerate(inv.nodes):
        roles_seen: dict[str, str] = {}
        for net_name, att in node.networks.items():
            path = ("nodes", i, "networks", net_name)
            net = known.get(net_name)
            if net is None:
                yield Problem(
                    path,
                    f"unknown network {net_name!r}",
                    _did_you_mean(net_name, known) or "define it under `networks:`",
                )
                continue
            if net.role in roles_seen:
                yield Problem(
                    path,
                    f"node is on two {net.role} networks ({roles_seen[net.role]!r} and {net_name!r})",
                    "attach the node to one network of each role",
                )
            roles_seen.setdefault(net.role, net_name)
            yield from _address_rules(path, node.name, net, att.address, owners)


def _address_rules(path: tuple[str | int, ...], node: str, net: Network, addr: IPv4Address | None,
                   owners: dict[str, str]) -> Iterator[Problem]:
    """The node's address on one network: present where required, a host
    address inside the network, not the gateway, not another node's."""
    if addr is None:
        if _address_required(net):
            yield Problem(path, f"no address for node {node!r} on {net.role} network {net.name!r}",
                          f"add `address:` inside {net.cidr}")
        return
    where = (*path, "address")
    if addr not in net.cidr:
        yield Problem(where, f"{addr} is outside network {net.name!r} ({net.cidr})",
                      f"use an address inside {net.cidr}")
        return
    if addr in (net.cidr.network_address, net.cidr.broadcast_address):
        yield Problem(where, f"{addr} is the network or broadcast address of {net.cidr}", "use a host address")
    if net.gateway is not None and addr == net.gateway:
        yield Problem(where, f"{addr} is the gateway of network {net.name!r}", "use another address for the node")
    owner = owners.setdefault(str(addr), node)
    if owner != node:
        yield Problem(where, f"address {addr} is already used by node {owner!r}", "give every node its own address")


def _topology(inv: Inventory) -> Iterator[Problem]:
    role_of = {n.name: n.role for n in inv.networks}
    roles_present = set(role_of.values())
    if not inv.nodes_with_role("controller"):
        yield Problem(
            ("nodes",),
            "no node has the controller role",
            "add `controller` to the `roles:` of at least one node",
        )
    for i, node in enumerate(inv.nodes):
        node_net_roles = {role_of[n] for n in node.networks if n in role_of}
        if "management" not in node_net_roles:
            yield Problem(
                ("nodes", i, "networks"),
                f"node {node.name!r} is not on the management network",
                "attach it to the management network; every node needs one",
            )
        for role, (net_role, why) in REQUIRED_NETWORKS.items():
            if role in node.roles and net_role not in node_net_roles:
                yield Problem(
                    ("nodes", i, "networks"),
                    f"node {node.name!r} has role {role} but no {net_role} network ({why})",
                    f"attach it to a network with `role: {net_role}`",
                )
        if "controller" in node.roles and "api" in roles_present and "api" not in node_net_roles:
            yield Problem(
                ("nodes", i, "networks"),
                f"controller {node.name!r} is not on the api network (the public endpoints live there)",
                "attach it to the network with `role: api`",
            )


def _cluster_fencing(inv: Inventory) -> Iterator[Problem]:
    """Controllers holding VIPs together need fence devices."""
    members = catalog.ha_controllers(inv)
    if len(members) > 1:
        for i, node in enumerate(inv.nodes):
            if node.name in members and node.fence is None:
                yield Problem(
                    ("nodes", i),
                    f"controller {node.name} has no fence device: pacemaker runs with fencing on and moves a "
                    "failed controller's VIPs only once its BMC has powered it off (without one they would "
                    "stay with nobody)",
                    "add `fence: {agent: ipmilan, address: BMC, username: USER}` to the node, and its "
                    f"password as fence_password_{node.name} in the secrets file",
                )


def _vips(inv: Inventory) -> Iterator[Problem]:
    controllers = inv.nodes_with_role("controller")
    if len(controllers) > 1 and (len(controllers) < 3 or len(controllers) % 2 == 0):
        yield Problem(
            ("nodes",),
            f"{len(controllers)} controllers: a highly available control plane needs an odd number, at least 3 "
            "(quorum for Galera, RabbitMQ and pacemaker)",
            "use 1 controller, or 3 (5, 7...)",
        )
    if (len(controllers) > 1 and inv.cloud.public_vip is None
            and any(n.role == "api" for n in inv.networks)):
        yield Problem(
            ("cloud", "public_vip"),
            "several controllers need a public virtual IP on the api network",
            "set `public_vip:` to a free address of the api network",
        )
    if len(controllers) > 1 and inv.cloud.internal_vip is None:
        yield Problem(
            ("cloud", "internal_vip"),
            f"{len(controllers)} controllers need a virtual IP in front of them",
            "set `internal_vip:` (and `public_vip:`) to free addresses of the management (api) network",
        )
    addresses = {str(att.address): node.name for node in inv.nodes for att in node.networks.values() if att.address}
    for field, roles in (("internal_vip", ("management",)), ("public_vip", ("api", "management"))):
        vip = getattr(inv.cloud, field)
        if vip is None:
            continue
        nets = [n for n in inv.networks if n.role in roles]
        wanted = next((n for n in nets if n.role == roles[0]), None) or (nets[0] if nets else None)
        if wanted is not None and vip not in wanted.cidr:
            yield Problem(
                ("cloud", field),
                f"{vip} is outside the {wanted.role} network {wanted.name!r} ({wanted.cidr})",
                f"use a free address inside {wanted.cidr}",
            )
        if str(vip) in addresses:
            yield Problem(
                ("cloud", field),
                f"{vip} is already the address of node {addresses[str(vip)]!r}",
                "a virtual IP must be an address no node uses",
            )


def _did_you_mean(word: str, choices: object) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)  # type: ignore[call-overload]
    return f"did you mean {close[0]!r}?" if close else ""




def _network_types(inv: Inventory) -> Iterator[Problem]:
    for i, net in enumerate(inv.networks):
        path = ("networks", i)
        yield from _type_rules(net, path)
        yield from _vlan_range_rules(net, path)
        if net.floating_range is not None:
            yield from _floating_range_rules(inv, net, net.floating_range, path)
        if net.instance_mtu is not None:
            yield from _instance_mtu_rules(net, net.instance_mtu, path)


def _type_rules(net: Network, path: tuple[str, int]) -> Iterator[Problem]:
    if net.type is not None and net.role not in ("tenant", "external"):
        yield Problem((*path, "type"), f"`type` does not apply to a {net.role} network",
                      "remove it; only tenant and external networks have a type")
    if net.role == "external" and net.type in ("vxlan", "gre"):
        yield Problem((*path, "type"), f"an external network cannot be {net.type}", "use flat or vlan")
    if net.role == "external" and net.type == "vlan" and net.vlan is None:
        yield Problem((*path, "vlan"), "an external network of type vlan needs its VLAN id",
                      "set `vlan:` to the external network's tag")
    if net.physnet is not None and net.segmentation not in ("vlan", "flat"):
        yield Problem((*path, "physnet"), f"`physnet` does not apply to a {net.segmentation or net.role} network",
                      "remove it; physical networks are for vlan and flat types")


def _vlan_range_rules(net: Network, path: tuple[str, int]) -> Iterator[Problem]:
    if net.vlan_range is not None:
        if net.segmentation != "vlan" or net.role != "tenant":
            yield Problem((*path, "vlan_range"), "`vlan_range` only applies to tenant networks of type vlan",
                          "remove it, or set `type: vlan`")
        else:
            start, end = parse_vlan_range(net.vlan_range)
            if not 1 <= start <= end <= 4094:
                yield Problem((*path, "vlan_range"), f"{net.vlan_range!r} is not a valid VLAN range",
                              "write START:END with 1 <= START <= END <= 4094, e.g. 100:199")
    elif net.role == "tenant" and net.segmentation == "vlan":
        yield Problem((*path, "vlan_range"), "a tenant network of type vlan needs the VLAN ids Neutron may use",
                      "add `vlan_range: START:END`, e.g. 100:199")


def _floating_range_rules(inv: Inventory, net: Network, fr: AddressRange,
                          path: tuple[str, int]) -> Iterator[Problem]:
    where = (*path, "floating_range")
    if net.role != "external":
        yield Problem(where, "floating IPs come from the external network",
                      "move `floating_range` to the network with `role: external`")
    elif fr.start not in net.cidr or fr.end not in net.cidr:
        yield Problem(where, f"{fr.start}-{fr.end} is not inside the network {net.cidr}",
                      f"choose a range inside {net.cidr}")
    elif fr.start > fr.end:
        yield Problem(where, f"start {fr.start} is after end {fr.end}", "swap start and end")
    elif net.gateway is not None and fr.start <= net.gateway <= fr.end:
        yield Problem(where, f"the range includes the gateway {net.gateway}",
                      "start the range after the gateway address")
    else:
        for node in inv.nodes:
            att = node.networks.get(net.name)
            if att and att.address and fr.start <= att.address <= fr.end:
                yield Problem(where, f"the range includes {att.address}, the address of node {node.name!r}",
                              "keep node addresses out of the floating IP range")


def _instance_mtu_rules(net: Network, mtu: int, path: tuple[str, int]) -> Iterator[Problem]:
    overhead = TUNNEL_OVERHEAD.get(net.segmentation or "", 0)
    if net.role != "tenant":
        yield Problem((*path, "instance_mtu"), "`instance_mtu` only applies to tenant networks", "remove it")
    elif mtu + overhead > net.mtu:
        yield Problem(
            (*path, "instance_mtu"),
            f"instances cannot get MTU {mtu}: {net.segmentation} takes {overhead} bytes of the "
            f"underlay's {net.mtu}",
            f"raise the network's `mtu` to {mtu + overhead} (jumbo frames) or lower "
            f"`instance_mtu` to {net.mtu - overhead}",
            severity="warning",
        )


def _bond_options(inv: Inventory) -> Iterator[Problem]:
    for i, node in enumerate(inv.nodes):
        for j, bond in enumerate(node.bonds):
            path = ("nodes", i, "bonds", j)
            if bond.provider == "linux":
                if bond.lacp is not None:
                    yield Problem((*path, "lacp"), "`lacp` is for OVS bonds; Linux bonds do LACP in mode 802.3ad",
                                  "use `mode: 802.3ad` (and `lacp_rate:`) instead")
                if bond.lacp_rate is not None and linux_bond_mode(bond.mode) != "802.3ad":
                    yield Problem((*path, "lacp_rate"), "`lacp_rate` only applies to mode 802.3ad (4)",
                                  "set `mode: 802.3ad` or remove `lacp_rate`")
            else:
                for option in ("miimon", "lacp_rate", "xmit_hash_policy"):
                    if getattr(bond, option) is not None:
                        yield Problem((*path, option), f"`{option}` is for Linux bonds, not OVS bonds",
                                      "remove it, or set `provider: linux`")
                if bond.mode == "balance-tcp" and bond.lacp in (None, "off"):
                    yield Problem((*path, "lacp"), "OVS balance-tcp needs LACP", "set `lacp: active`")


def _mtus(inv: Inventory) -> Iterator[Problem]:
    for i, node in enumerate(inv.nodes):
        nics = {n.name: n for n in node.nics}
        bonds = {b.name: b for b in node.bonds}
        for j, bond in enumerate(node.bonds):
            for member in bond.members:
                nic = nics.get(member)
                if bond.mtu and nic and nic.mtu and nic.mtu < bond.mtu:
                    yield Problem(("nodes", i, "bonds", j, "mtu"),
                                  f"bond MTU {bond.mtu} exceeds the MTU {nic.mtu} of its member {member!r}",
                                  f"raise {member!r}'s `mtu` or lower the bond's")
        for net_name, att in node.networks.items():
            net = next((n for n in inv.networks if n.name == net_name), None)
            if net is None:
                continue
            parent_mtu = None
            if att.interface in nics:
                parent_mtu = nics[att.interface].mtu
            elif att.interface in bonds:
                parent_mtu = bonds[att.interface].mtu
            if parent_mtu is not None and net.mtu > parent_mtu:
                kind = "VLAN" if net.vlan else "network"
                yield Problem(("nodes", i, "networks", net_name),
                              f"{kind} {net_name!r} has MTU {net.mtu} but {att.interface!r} only {parent_mtu}",
                              f"raise the `mtu` of {att.interface!r} to at least {net.mtu} or lower the network's")


def _vlans(inv: Inventory) -> Iterator[Problem]:
    known = {n.name: n for n in inv.networks}
    for i, node in enumerate(inv.nodes):
        seen: dict[tuple[str, int | None], str] = {}
        for net_name, att in node.networks.items():
            net = known.get(net_name)
            if net is None:
                continue
            key = (att.interface, net.vlan)
            if net.vlan is not None and key in seen:
                yield Problem(("nodes", i, "networks", net_name),
                              f"VLAN {net.vlan} on {att.interface!r} already carries network {seen[key]!r}",
                              "give each network on an interface its own VLAN id")
            seen.setdefault(key, net_name)
        for net_name, att in node.networks.items():
            tenant = known.get(net_name)
            if tenant is None or tenant.role != "tenant" or tenant.segmentation != "vlan" or not tenant.vlan_range:
                continue
            start, end = parse_vlan_range(tenant.vlan_range)
            for other_name, other_att in node.networks.items():
                other = known.get(other_name)
                if (other and other is not tenant and other_att.interface == att.interface and other.vlan
                        and start <= other.vlan <= end):
                    yield Problem(("nodes", i, "networks", other_name),
                                  f"VLAN {other.vlan} of {other_name!r} lies in the tenant VLAN range {start}:{end} "
                                  f"on the same interface {att.interface!r}",
                                  "move the network's VLAN out of the tenant range, or shrink the range")


def _services(inv: Inventory) -> Iterator[Problem]:
    svc = inv.cloud.services
    storage_nodes = inv.nodes_with_role("storage")
    for name in ("ceph", "swift"):
        if getattr(svc, name) and not storage_nodes:
            yield Problem(("cloud", "services", name), f"{name} needs nodes with the storage role",
                          "add `storage` to the roles of one or more nodes")
