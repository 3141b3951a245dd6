"""Rules that relate several parts of an inventory.

Each rule yields :class:`Problem` objects; :func:`check` runs them all so the
operator sees every mistake in one go.  A rule never touches a host.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from .model import Inventory, Node
from .problems import Problem

# Which network roles each node role needs.
REQUIRED_NETWORKS: dict[str, tuple[str, str]] = {
    "compute": ("tenant", "compute nodes carry the VM (tenant) traffic"),
    "network": ("external", "network nodes route tenant networks to the external network"),
}

OVS_BOND_MODES = ("active-backup", "balance-slb", "balance-tcp")
LINUX_BOND_MODES = (
    "balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb",
)


def check(inv: Inventory) -> list[Problem]:
    problems: list[Problem] = []
    for rule in (_networks, _nodes_unique, _node_interfaces, _node_networks, _topology, _vips):
        problems.extend(rule(inv))
    return problems


def _networks(inv: Inventory) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, net in enumerate(inv.networks):
        if net.name in seen:
            yield Problem(
                ("networks", i, "name"),
                f"network name {net.name!r} is already used by networks[{seen[net.name]}]",
                "give every network its own name",
            )
        seen.setdefault(net.name, i)
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
    used = {name for node in inv.nodes for name in node.networks}
    for i, net in enumerate(inv.networks):
        if net.name not in used:
            yield Problem(
                ("networks", i, "name"),
                f"network {net.name!r} is not attached to any node",
                "attach it under a node's `networks:` or remove it",
                severity="warning",
            )


def _nodes_unique(inv: Inventory) -> Iterator[Problem]:
    seen: dict[str, int] = {}
    for i, node in enumerate(inv.nodes):
        if node.name in seen:
            yield Problem(
                ("nodes", i, "name"),
                f"node name {node.name!r} is already used by nodes[{seen[node.name]}]",
                "give every node its own name",
            )
        seen.setdefault(node.name, i)
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


def _node_interfaces(inv: Inventory) -> Iterator[Problem]:
    for i, node in enumerate(inv.nodes):
        nic_names: dict[str, int] = {}
        for j, nic in enumerate(node.nics):
            if nic.name in nic_names:
                yield Problem(
                    ("nodes", i, "nics", j, "name"),
                    f"NIC {nic.name!r} is listed twice",
                    "list each NIC once",
                )
            nic_names.setdefault(nic.name, j)
        bonded: dict[str, str] = {}
        for j, bond in enumerate(node.bonds):
            if bond.name in nic_names:
                yield Problem(
                    ("nodes", i, "bonds", j, "name"),
                    f"bond {bond.name!r} has the name of a NIC",
                    "name bonds differently from NICs, e.g. bond0",
                )
            if len(set(bond.members)) < 2:
                yield Problem(
                    ("nodes", i, "bonds", j, "members"),
                    f"bond {bond.name!r} has {len(set(bond.members))} member(s); a bond needs at least two",
                    "list two or more NICs under `members:`, or attach the network to the NIC directly",
                )
            for k, member in enumerate(bond.members):
                if member not in nic_names:
                    yield Problem(
                        ("nodes", i, "bonds", j, "members", k),
                        f"{member!r} is not a NIC of node {node.name!r}",
                        _did_you_mean(member, nic_names) or "add it under `nics:`",
                    )
                elif member in bonded:
                    yield Problem(
                        ("nodes", i, "bonds", j, "members", k),
                        f"NIC {member!r} is used twice: already a member of bond {bonded[member]!r}",
                        "a NIC can belong to one bond only",
                    )
                else:
                    bonded[member] = bond.name
            modes = OVS_BOND_MODES if bond.provider == "ovs" else LINUX_BOND_MODES
            if bond.mode is not None and bond.mode not in modes:
                yield Problem(
                    ("nodes", i, "bonds", j, "mode"),
                    f"{bond.mode!r} is not a {bond.provider} bond mode",
                    "use one of " + ", ".join(modes),
                )
        for net_name, att in node.networks.items():
            if att.interface in bonded:
                yield Problem(
                    ("nodes", i, "networks", net_name, "interface"),
                    f"NIC {att.interface!r} is used twice: it is a member of bond "
                    f"{bonded[att.interface]!r} and also carries network {net_name!r}",
                    f"attach {net_name!r} to {bonded[att.interface]!r} instead",
                )
            elif att.interface not in nic_names and att.interface not in {b.name for b in node.bonds}:
                yield Problem(
                    ("nodes", i, "networks", net_name, "interface"),
                    f"{att.interface!r} is neither a NIC nor a bond of node {node.name!r}",
                    _did_you_mean(att.interface, list(nic_names) + [b.name for b in node.bonds])
                    or "add it under `nics:` or `bonds:`",
                )


def _node_networks(inv: Inventory) -> Iterator[Problem]:
    known = {n.name: n for n in inv.networks}
    owners: dict[str, tuple[str, int]] = {}
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
            addr = att.address
            if addr not in net.cidr:
                yield Problem(
                    (*path, "address"),
                    f"{addr} is outside network {net_name!r} ({net.cidr})",
                    f"use an address inside {net.cidr}",
                )
                continue
            if addr in (net.cidr.network_address, net.cidr.broadcast_address):
                yield Problem(
                    (*path, "address"),
                    f"{addr} is the network or broadcast address of {net.cidr}",
                    "use a host address",
                )
            if net.gateway is not None and addr == net.gateway:
                yield Problem(
                    (*path, "address"),
                    f"{addr} is the gateway of network {net_name!r}",
                    "use another address for the node",
                )
            key = str(addr)
            if key in owners and owners[key][0] != node.name:
                yield Problem(
                    (*path, "address"),
                    f"address {addr} is already used by node {owners[key][0]!r}",
                    "give every node its own address",
                )
            owners.setdefault(key, (node.name, i))


def _topology(inv: Inventory) -> Iterator[Problem]:
    roles_present = {n.role for n in inv.networks}
    if not inv.nodes_with_role("controller"):
        yield Problem(
            ("nodes",),
            "no node has the controller role",
            "add `controller` to the `roles:` of at least one node",
        )
    for i, node in enumerate(inv.nodes):
        node_net_roles = {inv.network(n).role for n in node.networks if n in {x.name for x in inv.networks}}
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


def _vips(inv: Inventory) -> Iterator[Problem]:
    controllers = inv.nodes_with_role("controller")
    if len(controllers) > 1 and inv.cloud.internal_vip is None:
        yield Problem(
            ("cloud", "internal_vip"),
            f"{len(controllers)} controllers need a virtual IP in front of them",
            "set `internal_vip:` (and `public_vip:`) to free addresses of the management (api) network",
        )
    addresses = {str(att.address): node.name for node in inv.nodes for att in node.networks.values()}
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


def nodes_by_name(inv: Inventory) -> dict[str, Node]:
    return {n.name: n for n in inv.nodes}
