"""How the lab wires its nodes: one host bridge per network segment, or,
when the inventory has bonds or VLAN tags, the lab switch (a userspace Open
vSwitch in a network namespace of its own: the LACP partner of the nodes'
bonds, with access and trunk ports).  The host takes the last address of
each admin/management/API/external network and never routes for the nodes:
FORWARD drops their traffic."""

from __future__ import annotations

import ipaddress
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..checks import parse_vlan_range
from ..layout import ovs_bond
from ..model import Inventory, Node
from .host import alive, link_exists, no_tx_checksum, run, short_name, stop
from .proxy import proxy_rules

HOST_NETWORK_ROLES = ("management", "api", "external", "admin")


@dataclass(frozen=True)
class Segment:
    """One host bridge: the networks that share L2 in the lab."""

    bridge: str
    networks: tuple[str, ...]


def segments(inv: Inventory) -> list[Segment]:
    """Union networks that are carried by the same interface on some node
    (without the switch: tags pass a Linux bridge untouched, so all networks
    of an interface share it; with the switch only untagged ones share a
    segment, tagged networks keep their own VLAN)."""
    switched = needs_switch(inv)
    parent = {n.name: n.name for n in inv.networks}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for node in inv.nodes:
        by_iface: dict[str, list[str]] = {}
        for net_name, att in node.networks.items():
            if switched and inv.network(net_name).vlan:
                continue
            by_iface.setdefault(att.interface, []).append(net_name)
        for nets in by_iface.values():
            for other in nets[1:]:
                parent[find(other)] = find(nets[0])
    groups: dict[str, list[str]] = {}
    for net in inv.networks:
        groups.setdefault(find(net.name), []).append(net.name)
    tag = short_name(inv.cloud.name)
    return [Segment(f"sw{tag}b{i}", tuple(nets)) for i, nets in enumerate(groups.values())]


def needs_switch(inv: Inventory) -> bool:
    """Bonds (LACP needs a partner) and VLAN-tagged networks are wired
    through the lab switch; plain layouts through Linux bridges."""
    return any(node.bonds for node in inv.nodes) or any(
        net.vlan for net in inv.networks if any(net.name in node.networks for node in inv.nodes))


def adapt(inv: Inventory) -> Inventory:
    """The inventory as the lab kernel can build it: userspace OVS datapath,
    bonds and VLANs through OVS, no default route; and dpkg without fsync
    (lab nodes are thrown away)."""
    cloud = inv.cloud.model_copy(update={"ovs_datapath": "netdev", "kernel_bonding": False,
                                         "default_route": False, "dpkg_unsafe_io": True})
    return inv.model_copy(update={"cloud": cloud})


def switch_vlans(inv: Inventory) -> dict[str, int]:
    """Network -> the VLAN that carries it on the lab switch: its own tag,
    else one free id per untagged segment (counting down from 4094)."""
    used = {n.vlan for n in inv.networks if n.vlan} | tenant_vlans(inv, [n.name for n in inv.networks])
    out: dict[str, int] = {n.name: n.vlan for n in inv.networks if n.vlan}
    free = (v for v in range(4094, 1, -1) if v not in used)
    for seg in segments(inv):
        vid = next(free)
        for net in seg.networks:
            out.setdefault(net, vid)
    return out


def tenant_vlans(inv: Inventory, nets: list[str]) -> set[int]:
    """The VLAN ids Neutron hands out on these networks (their vlan_range)."""
    out: set[int] = set()
    for name in nets:
        rng = inv.network(name).vlan_range
        if rng:
            lo, hi = parse_vlan_range(rng)
            out |= set(range(lo, hi + 1))
    return out


def host_address(inv: Inventory, network: str) -> str:
    """The lab host's own address on a network: the last usable one."""
    return str(inv.network(network).cidr.broadcast_address - 1)


def address_clashes(inv: Inventory, own: set[str], host: list[tuple[str, str]]) -> list[str]:
    """The lab's host networks that an interface of this machine other than
    the lab's own (*own*) already has an address in; *host* is (interface,
    address/prefix).  Two labs on one subnet give the host two routes to it:
    the nodes of the second never answer on SSH, which says nothing of why."""
    out = []
    for net in inv.networks:
        if net.role not in HOST_NETWORK_ROLES:
            continue
        for dev, cidr in host:
            if dev not in own and ipaddress.ip_interface(cidr).network.overlaps(net.cidr):
                out.append(f"network {net.name}: {net.cidr} is in use on this host already ({cidr} on {dev}; "
                           "another lab? `stackwright lab down` it, or give this inventory other subnets)")
    return out


def ssh_network(inv: Inventory) -> str:
    """The network the host reaches the nodes on (admin, else management):
    it also serves the package proxy."""
    admin = inv.networks_with_role("admin")
    return (admin or inv.networks_with_role("management"))[0].name


def forward_rules(bridge: str) -> list[list[str]]:
    """FORWARD rules for a lab bridge, in order: traffic between the nodes on
    the bridge passes (with br_netfilter, bridged frames cross FORWARD too);
    anything routed into or out of the bridge is dropped."""
    tag = ["-m", "comment", "--comment", "stackwright-lab"]
    return [
        ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT", *tag],
        ["FORWARD", "-i", bridge, "-j", "DROP", *tag],
        ["FORWARD", "-o", bridge, "-j", "DROP", *tag],
    ]


class Wiring:
    """The host side of a lab's networks: bridges or the switch, the cables
    to the nodes, the host's addresses and firewall rules."""

    def __init__(self, inv: Inventory, lab_dir: Path):
        self.inv = inv
        self.tag = short_name(inv.cloud.name)
        self.switch_dir = lab_dir / "switch"
        self.switched = needs_switch(inv)

    # -- names --------------------------------------------------------------
    def veth(self, node_index: int, nic_index: int) -> str:
        return f"s{self.tag}n{node_index}e{nic_index}"

    def switch_ns(self) -> str:
        return f"sw-{self.inv.cloud.name}-switch"

    def uplink(self, vid: int) -> str:
        return f"s{self.tag}h{vid}"

    def host_devices(self) -> set[str]:
        """The host-side devices that carry the host's addresses."""
        if self.switched:
            return {self.uplink(v) for v in set(switch_vlans(self.inv).values())}
        return {seg.bridge for seg in segments(self.inv)}

    def segment_of(self, network: str) -> Segment:
        return next(s for s in segments(self.inv) if network in s.networks)

    def proxy_address(self) -> str:
        return host_address(self.inv, ssh_network(self.inv))

    # -- bridges ---------------------------------------------------------------
    def ensure(self) -> None:
        """The lab's bridges, or its switch, with the host's addresses."""
        if self.switched:
            self.ensure_switch()
            return
        for seg in segments(self.inv):
            if not link_exists(seg.bridge):
                run("ip", "link", "add", seg.bridge, "type", "bridge")
            run("ip", "link", "set", seg.bridge, "up")
            no_tx_checksum(seg.bridge)
            self._host_side(seg.bridge, [n for n in seg.networks if self.inv.network(n).role in HOST_NETWORK_ROLES])

    def _host_side(self, dev: str, nets: list[str]) -> None:
        """The host's own addresses on these networks go on *dev*; nothing
        is routed into or out of it."""
        have = run("ip", "-o", "-4", "addr", "show", "dev", dev)
        for net_name in nets:
            net = self.inv.network(net_name)
            # the external network's gateway too: the host stands in for the
            # upstream router, which guests ping (Tempest does); it answers
            # and forwards nothing
            gateway = [net.gateway] if net.role == "external" and net.gateway else []
            for address in [host_address(self.inv, net_name), *gateway]:
                cidr = f"{address}/{net.cidr.prefixlen}"
                if f" {cidr} " not in have:
                    run("ip", "addr", "add", cidr, "dev", dev)
        rules = forward_rules(dev)
        if ssh_network(self.inv) in nets:
            # the nodes' proxy port leads to the shared cache on loopback
            run("sysctl", "-q", "-w", f"net.ipv4.conf.{dev}.route_localnet=1")
            rules += proxy_rules(dev, self.proxy_address())
        for rule in reversed(rules):
            if subprocess.run(["iptables", "-w", "-C", *rule], capture_output=True, check=False).returncode != 0:
                run("iptables", "-w", "-I", *rule)

    # -- the lab switch: an Open vSwitch (userspace datapath) in a namespace of
    # its own, for bonds (it is the LACP partner) and VLAN trunks ------------
    def _vsctl(self, *args: str) -> str:
        return run("ovs-vsctl", f"--db=unix:{self.switch_dir}/db.sock", "--timeout=20", *args)

    def ensure_switch(self) -> None:
        d = self.switch_dir
        d.mkdir(parents=True, exist_ok=True)
        ns = self.switch_ns()
        if not Path(f"/run/netns/{ns}").exists():
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        env = {"OVS_RUNDIR": str(d), "OVS_DBDIR": str(d), "OVS_LOGDIR": str(d)}
        if not alive(d / "ovsdb-server.pid"):
            if not (d / "conf.db").exists():
                run("ovsdb-tool", "create", str(d / "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema")
            run("ovsdb-server", str(d / "conf.db"), f"--remote=punix:{d}/db.sock", f"--pidfile={d}/ovsdb-server.pid",
                "--detach", f"--log-file={d}/ovsdb-server.log", f"--unixctl={d}/ovsdb-server.ctl", env=env)
            self._vsctl("--no-wait", "init")
        if not alive(d / "ovs-vswitchd.pid"):
            run("ip", "netns", "exec", ns, "ovs-vswitchd", f"unix:{d}/db.sock", f"--pidfile={d}/ovs-vswitchd.pid",
                "--detach", f"--log-file={d}/ovs-vswitchd.log", f"--unixctl={d}/ovs-vswitchd.ctl", env=env)
        self._vsctl("--may-exist", "add-br", "lab", "--", "set", "bridge", "lab", "datapath_type=netdev")
        # the host's own addresses: one uplink per VLAN it has addresses on
        vlans = switch_vlans(self.inv)
        by_vid: dict[int, list[str]] = {}
        for net in self.inv.networks:
            if net.role in HOST_NETWORK_ROLES:
                by_vid.setdefault(vlans[net.name], []).append(net.name)
        for vid, nets in sorted(by_vid.items()):
            host_end, sw_end = self.uplink(vid), f"s{self.tag}u{vid}"
            if not link_exists(host_end):
                run("ip", "link", "add", host_end, "type", "veth", "peer", "name", sw_end, "netns", ns)
            run("ip", "link", "set", host_end, "up")
            run("ip", "-n", ns, "link", "set", sw_end, "up")
            no_tx_checksum(host_end)
            self._host_side(host_end, nets)
            self._vsctl("--may-exist", "add-port", "lab", sw_end, "--", "set", "port", sw_end, f"tag={vid}",
                        "vlan_mode=access")

    def port_vlans(self, nets: list[str]) -> list[str]:
        """Switch port settings for an interface that carries these networks."""
        vlans = switch_vlans(self.inv)
        untagged = [n for n in nets if not self.inv.network(n).vlan]
        trunk = {vlans[n] for n in nets if self.inv.network(n).vlan} | tenant_vlans(self.inv, nets)
        if untagged and not trunk:
            return [f"tag={vlans[untagged[0]]}", "vlan_mode=access"]
        if untagged:
            native = vlans[untagged[0]]
            return [f"tag={native}", "vlan_mode=native-untagged",
                    "trunks=" + ",".join(str(v) for v in sorted(trunk | {native}))]
        return ["vlan_mode=trunk", "trunks=" + ",".join(str(v) for v in sorted(trunk))]

    def wire_switch(self, index: int, node: Node) -> None:
        """Plug the node's NICs into the switch: plain NICs as access or trunk
        ports, LACP bond members as a bond of the switch."""
        bonds = {b.name: b for b in node.bonds}
        nic_index = {nic.name: j for j, nic in enumerate(node.nics)}
        carried: dict[str, list[str]] = {}
        for net_name, att in node.networks.items():
            carried.setdefault(att.interface, []).append(net_name)
        for iface, nets in carried.items():
            settings = self.port_vlans(nets)
            bond = bonds.get(iface)
            if bond is not None:
                lacp = (ovs_bond(bond, kernel=False) or ("", "off"))[1]
                ends = [self.veth(index, nic_index[m]) for m in bond.members]
                if lacp != "off":
                    name = f"s{self.tag}n{index}{bond.name}"[:15]
                    self._vsctl("--may-exist", "add-bond", "lab", name, *ends, "lacp=active",
                                "bond_mode=balance-tcp", "other_config:lacp-time=fast", "--",
                                "set", "port", name, *settings)
                    continue
            else:
                ends = [self.veth(index, nic_index[iface])] if iface in nic_index else []
            for end in ends:
                self._vsctl("--may-exist", "add-port", "lab", end, "--", "set", "port", end, *settings)

    # -- cables -------------------------------------------------------------------
    def plug(self, index: int, node: Node, ns: str) -> None:
        """One veth per NIC of the node: its end in the node's namespace *ns*
        (named as the inventory names the NIC), the other on the node's
        bridge or in the switch."""
        if self.switched:
            sw = self.switch_ns()
            for j, nic in enumerate(node.nics):
                host_side = self.veth(index, j)
                if not link_exists(host_side) and subprocess.run(
                        ["ip", "-n", sw, "link", "show", host_side], capture_output=True, check=False).returncode:
                    mac = ["address", nic.mac] if nic.mac else []
                    run("ip", "link", "add", host_side, "type", "veth", "peer", "name", nic.name, *mac, "netns", ns)
                if link_exists(host_side):
                    run("ip", "link", "set", host_side, "netns", sw)
                run("ip", "-n", sw, "link", "set", host_side, "up")
                no_tx_checksum(nic.name, ns)
            self.wire_switch(index, node)
            return
        for j, nic in enumerate(node.nics):
            host_side = self.veth(index, j)
            nets = [n for n, att in node.networks.items() if att.interface == nic.name]
            if not link_exists(host_side):
                mac = ["address", nic.mac] if nic.mac else []
                run("ip", "link", "add", host_side, "type", "veth", "peer", "name", nic.name, *mac, "netns", ns)
            if nets:
                run("ip", "link", "set", host_side, "master", self.segment_of(nets[0]).bridge)
            run("ip", "link", "set", host_side, "up")
            no_tx_checksum(host_side)
            no_tx_checksum(nic.name, ns)

    def unplug(self, index: int, node: Node) -> None:
        for j, _ in enumerate(node.nics):
            if link_exists(self.veth(index, j)):
                run("ip", "link", "del", self.veth(index, j), check=False)

    def remove(self) -> None:
        """The switch, the bridges and uplinks, and their firewall rules."""
        if self.switched:
            stop(self.switch_dir / "ovs-vswitchd.pid", timeout=10)
            stop(self.switch_dir / "ovsdb-server.pid", timeout=10)
            if Path(f"/run/netns/{self.switch_ns()}").exists():
                run("ip", "netns", "del", self.switch_ns(), check=False)
        for dev in sorted(self.host_devices() | {seg.bridge for seg in segments(self.inv)}):
            for rule in forward_rules(dev) + proxy_rules(dev, self.proxy_address()):
                while subprocess.run(["iptables", "-w", "-D", *rule], capture_output=True, check=False).returncode == 0:
                    pass
            if link_exists(dev):
                run("ip", "link", "del", dev, check=False)

    def describe(self) -> dict[str, object]:
        if self.switched:
            return {"switch": {"netns": self.switch_ns(), "vlans": switch_vlans(self.inv)}}
        return {"bridges": {s.bridge: list(s.networks) for s in segments(self.inv)}}
