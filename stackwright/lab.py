"""The built-in lab: inventory nodes as systemd-nspawn containers on this machine.

Each node gets its own network namespace (created here, ``ip netns``), one
veth per NIC of its inventory entry, plugged into a host bridge per network
segment (networks that share a NIC untagged share a segment).  The host takes
the last address of each management/api/external network, serves the package
archive on the management bridge, and never routes for the nodes: they get
no default route and FORWARD drops their traffic.

The package cache is one apt-cacher-ng for every lab on this machine
(several labs run side by side: molecule lanes, tests); it listens on the
host's loopback only and each lab's management bridge forwards its proxy
port to it.  apt-cacher-ng does not support two daemons on one cache
directory: they race on index files and a node's apt can stall.

Everything this module creates is recorded under the lab directory so that
``down`` removes exactly that and nothing else.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .checks import parse_vlan_range
from .layout import ovs_bond
from .model import Inventory, Node
from .paths import state_dir

BASE_PACKAGES = (
    "systemd,systemd-sysv,dbus,iproute2,openssh-server,python3,python3-apt,sudo,"
    "iputils-ping,ca-certificates,eatmydata"
)
HOST_TOOLS = {"systemd-nspawn": "systemd-container", "debootstrap": "debootstrap",
              "apt-cacher-ng": "apt-cacher-ng", "ssh": "openssh-client", "iptables": "iptables",
              "ovs-vswitchd": "openvswitch-switch", "ethtool": "ethtool", "ping": "iputils-ping"}
PROXY_PORT = 3142  # what the nodes connect to, on their bridge address
SHARED_PROXY = ("127.0.0.1", 3143)  # the one apt-cacher-ng (not the distribution's 3142)
HOST_NETWORK_ROLES = ("management", "api", "external", "admin")


class LabError(Exception):
    pass


Log = Callable[[str], None]


def run(*args: str, check: bool = True, capture: bool = True, input_: str | None = None,
        env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(list(args), check=False, text=True, input=input_,
                          env=dict(os.environ, **env) if env else None,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None)
    if check and proc.returncode != 0:
        raise LabError(f"`{' '.join(args)}` failed ({proc.returncode}): {(proc.stderr or '').strip()}")
    return proc.stdout or ""


def _short(cloud: str) -> str:
    return hashlib.sha1(cloud.encode()).hexdigest()[:5]  # noqa: S324 - a name, not security


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
    tag = _short(inv.cloud.name)
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


class Lab:
    def __init__(self, inv: Inventory, log: Log = print):
        self.inv = inv
        self.log = log
        self.dir = state_dir() / "labs" / inv.cloud.name
        self.image = state_dir() / "images" / "bookworm-base"
        self.key = self.dir / "id_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.tag = _short(inv.cloud.name)

    # -- names --------------------------------------------------------------
    def netns(self, node: Node) -> str:
        return f"sw-{self.inv.cloud.name}-{node.name}"

    def veth(self, node_index: int, nic_index: int) -> str:
        return f"s{self.tag}n{node_index}e{nic_index}"

    def node_dir(self, node: Node) -> Path:
        return self.dir / "nodes" / node.name

    def segment_of(self, network: str) -> Segment:
        return next(s for s in segments(self.inv) if network in s.networks)

    def ssh_network(self) -> str:
        """The network the host reaches the nodes on (admin, else management):
        it also serves the package proxy."""
        admin = self.inv.networks_with_role("admin")
        return (admin or self.inv.networks_with_role("management"))[0].name

    def proxy_address(self) -> str:
        return host_address(self.inv, self.ssh_network())

    @property
    def switched(self) -> bool:
        return needs_switch(self.inv)

    @property
    def switch_dir(self) -> Path:
        return self.dir / "switch"

    def switch_ns(self) -> str:
        return f"sw-{self.inv.cloud.name}-switch"

    def uplink(self, vid: int) -> str:
        return f"s{self.tag}h{vid}"

    # -- checks ---------------------------------------------------------------
    def preflight(self) -> None:
        if os.geteuid() != 0:
            raise LabError("the lab needs root (it creates network namespaces, bridges and containers)")
        missing = [pkg for tool, pkg in HOST_TOOLS.items()
                   if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists()]
        if missing:
            raise LabError("missing host packages: " + " ".join(sorted(set(missing)))
                           + f" (apt-get install {' '.join(sorted(set(missing)))})")
        taken = {str(a.address) for n in self.inv.nodes for a in n.networks.values()}
        for net in self.inv.networks:
            if net.role in HOST_NETWORK_ROLES and host_address(self.inv, net.name) in taken:
                raise LabError(f"network {net.name}: {host_address(self.inv, net.name)} is reserved for the lab host")

    # -- base image -------------------------------------------------------------
    def ensure_image(self) -> None:
        marker = self.image / ".stackwright-image"
        if marker.exists() and marker.read_text().strip() == BASE_PACKAGES:
            return
        if self.image.exists() and not marker.exists() and (self.image / "etc/debian_version").exists():
            marker.write_text(BASE_PACKAGES + "\n")  # built by hand with the same recipe
            return
        tmp = self.image.with_name(self.image.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        self.log("building the Debian 12 base image with debootstrap (once; takes a few minutes)")
        run("debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(tmp))
        (tmp / ".stackwright-image").write_text(BASE_PACKAGES + "\n")
        shutil.rmtree(self.image, ignore_errors=True)
        tmp.rename(self.image)

    # -- host networking -----------------------------------------------------
    def _link_exists(self, name: str) -> bool:
        return Path(f"/sys/class/net/{name}").exists()

    def ensure_bridges(self) -> None:
        for seg in segments(self.inv):
            if not self._link_exists(seg.bridge):
                run("ip", "link", "add", seg.bridge, "type", "bridge")
            run("ip", "link", "set", seg.bridge, "up")
            no_tx_checksum(seg.bridge)
            self._host_side(seg.bridge, [n for n in seg.networks if self.inv.network(n).role in HOST_NETWORK_ROLES])

    def _host_side(self, dev: str, nets: list[str]) -> None:
        """The host's own addresses on these networks go on *dev*; nothing
        is routed into or out of it."""
        have = run("ip", "-o", "-4", "addr", "show", "dev", dev)
        for net_name in nets:
            cidr = f"{host_address(self.inv, net_name)}/{self.inv.network(net_name).cidr.prefixlen}"
            if f" {cidr} " not in have:
                run("ip", "addr", "add", cidr, "dev", dev)
        rules = _forward_rules(dev)
        if self.ssh_network() in nets:
            # the nodes' proxy port leads to the shared cache on loopback
            run("sysctl", "-q", "-w", f"net.ipv4.conf.{dev}.route_localnet=1")
            rules += _proxy_rules(dev, self.proxy_address())
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
        if not _alive(d / "ovsdb-server.pid"):
            if not (d / "conf.db").exists():
                run("ovsdb-tool", "create", str(d / "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema")
            run("ovsdb-server", str(d / "conf.db"), f"--remote=punix:{d}/db.sock", f"--pidfile={d}/ovsdb-server.pid",
                "--detach", f"--log-file={d}/ovsdb-server.log", f"--unixctl={d}/ovsdb-server.ctl", env=env)
            self._vsctl("--no-wait", "init")
        if not _alive(d / "ovs-vswitchd.pid"):
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
            if not self._link_exists(host_end):
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

    def ensure_proxy(self) -> None:
        """Start the machine's shared apt-cacher-ng unless it runs already."""
        with _proxy_lock():
            if _alive(proxy_dir() / "pid"):
                return
            conf = proxy_dir() / "conf"
            shutil.rmtree(conf, ignore_errors=True)
            shutil.copytree("/etc/apt-cacher-ng", conf)
            (conf / "backends_debian").write_text(debian_archive_uri() + "\n")
            (proxy_dir() / "log").mkdir(parents=True, exist_ok=True)
            cache = Path("/var/cache/apt-cacher-ng")
            cache.mkdir(parents=True, exist_ok=True)
            address, port = SHARED_PROXY
            run("/usr/sbin/apt-cacher-ng", "-c", str(conf), "ForeGround=0", f"BindAddress={address}",
                f"Port={port}", f"PidFile={proxy_dir() / 'pid'}", f"LogDir={proxy_dir() / 'log'}",
                f"CacheDir={cache}",
                # an index file fetched less than 10 minutes ago is served
                # as it is: fewer refreshes of the same InRelease, which
                # collide when two arrive in the same second ("Failure to
                # move file ... out of the way ... File exists", after which
                # the client's apt hangs)
                "FreshIndexMaxAge=600")
            # the daemon writes its pid file after it listens: wait for both,
            # or the next lab would start a second one (which fails to bind
            # and takes the pid file with it)
            _wait(lambda: _port_open(address, port) and _alive(proxy_dir() / "pid"), 20,
                  "apt-cacher-ng did not start")

    def release_proxy(self) -> None:
        """Stop the shared apt-cacher-ng when no other lab is left."""
        with _proxy_lock():
            others = [d for d in self.dir.parent.iterdir() if d.is_dir() and d != self.dir]
            if not others:
                _stop(proxy_dir() / "pid", timeout=10)

    # -- nodes -------------------------------------------------------------------
    def ensure_key(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.key.exists():
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"stackwright-lab-{self.inv.cloud.name}",
                "-f", str(self.key))

    def prepare_rootfs(self, node: Node) -> None:
        root = self.node_dir(node) / "rootfs"
        if (root / "etc/stackwright-lab-node").exists():
            return
        root.parent.mkdir(parents=True, exist_ok=True)
        for stale in root.parent.glob("rootfs.tmp*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix="rootfs.tmp", dir=root.parent))
        run("cp", "-a", "--reflink=auto", f"{self.image}/.", str(tmp))
        (tmp / ".stackwright-image").unlink(missing_ok=True)
        (tmp / "etc/hostname").write_text(node.name + "\n")
        (tmp / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
        (tmp / "etc/hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {node.name}\n")
        (tmp / "etc/resolv.conf").unlink(missing_ok=True)
        (tmp / "etc/resolv.conf").write_text("# the lab has no DNS: names come from /etc/hosts\n")
        # apt through the host's caching proxy, from the host's own Debian
        # archives; a stalled or failed download is retried, not waited on
        (tmp / "etc/apt/apt.conf.d/01stackwright-lab-proxy").write_text(
            f'Acquire::http::Proxy "http://{self.proxy_address()}:{PROXY_PORT}";\n'
            'Acquire::http::Timeout "60";\nAcquire::Retries "3";\n')
        (tmp / "etc/apt/sources.list").write_text("")
        # lab nodes are throw-away: dpkg need not fsync every file it unpacks
        (tmp / "etc/dpkg/dpkg.cfg.d/stackwright-lab").write_text("force-unsafe-io\n")
        (tmp / "etc/apt/sources.list.d/debian.sources").write_text(node_sources())
        # debootstrap's package lists describe other sources: drop them so the
        # first `apt update` on the node really fetches (security included)
        lists = tmp / "var/lib/apt/lists"
        for lst in lists.glob("*_*"):
            lst.unlink()
        os.utime(lists, (0, 0))  # apt's "cache is fresh" test looks at this mtime
        (tmp / "var/lib/apt/periodic/update-success-stamp").unlink(missing_ok=True)
        # ssh: the lab key for root, host keys made now so known_hosts can be strict
        ssh = tmp / "root/.ssh"
        ssh.mkdir(mode=0o700, parents=True, exist_ok=True)
        (ssh / "authorized_keys").write_text(self.key.with_suffix(".pub").read_text())
        os.chmod(ssh / "authorized_keys", 0o600)
        for old in (tmp / "etc/ssh").glob("ssh_host_*"):
            old.unlink()
        run("ssh-keygen", "-A", "-f", str(tmp))
        # networking: one systemd-networkd file per NIC, addresses, no gateway
        netdir = tmp / "etc/systemd/network"
        netdir.mkdir(parents=True, exist_ok=True)
        # (what an installer leaves: untagged addresses on plain NICs; the
        # host_network role takes the files over on the first deploy)
        for nic in node.nics:
            addrs = [f"{att.address}/{self.inv.network(n).cidr.prefixlen}"
                     for n, att in node.networks.items()
                     if att.interface == nic.name and att.address and not self.inv.network(n).vlan]
            body = f"[Match]\nName={nic.name}\n\n[Link]\nRequiredForOnline={'yes' if addrs else 'no'}\n\n[Network]\n"
            body += "LinkLocalAddressing=no\nIPv6AcceptRA=no\n" + "".join(f"Address={a}\n" for a in addrs)
            (netdir / f"10-stackwright-{nic.name}.network").write_text(body)
        wants = tmp / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        link = wants / "systemd-networkd.service"
        if not link.exists():
            link.symlink_to("/lib/systemd/system/systemd-networkd.service")
        (tmp / "etc/stackwright-lab-node").write_text(self.inv.cloud.name + "\n")
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)

    def ensure_netns(self, index: int, node: Node) -> None:
        ns = self.netns(node)
        if not Path(f"/run/netns/{ns}").exists():
            run("ip", "netns", "add", ns)
        if self.switched:
            sw = self.switch_ns()
            for j, nic in enumerate(node.nics):
                host_side = self.veth(index, j)
                if not self._link_exists(host_side) and subprocess.run(
                        ["ip", "-n", sw, "link", "show", host_side], capture_output=True, check=False).returncode:
                    mac = ["address", nic.mac] if nic.mac else []
                    run("ip", "link", "add", host_side, "type", "veth", "peer", "name", nic.name, *mac, "netns", ns)
                if self._link_exists(host_side):
                    run("ip", "link", "set", host_side, "netns", sw)
                run("ip", "-n", sw, "link", "set", host_side, "up")
                no_tx_checksum(nic.name, ns)
            self.wire_switch(index, node)
            return
        for j, nic in enumerate(node.nics):
            host_side = self.veth(index, j)
            nets = [n for n, att in node.networks.items() if att.interface == nic.name]
            if not self._link_exists(host_side):
                mac = ["address", nic.mac] if nic.mac else []
                run("ip", "link", "add", host_side, "type", "veth", "peer", "name", nic.name, *mac, "netns", ns)
            if nets:
                run("ip", "link", "set", host_side, "master", self.segment_of(nets[0]).bridge)
            run("ip", "link", "set", host_side, "up")
            no_tx_checksum(host_side)
            no_tx_checksum(nic.name, ns)

    def start_node(self, node: Node) -> None:
        ndir = self.node_dir(node)
        pidfile = ndir / "nspawn.pid"
        if _alive(pidfile):
            return
        args = [
            "systemd-nspawn", "-D", str(ndir / "rootfs"), "-b", "--register=no", "--keep-unit",
            "-M", node.name, f"--network-namespace-path=/run/netns/{self.netns(node)}",
            "--capability=all", "--drop-capability=CAP_SYS_TIME", "--resolv-conf=off", "--timezone=off",
            "--console=read-only", "--bind=/dev/net/tun",
        ]
        if Path("/dev/kvm").exists():
            args.append("--bind=/dev/kvm")
        # /proc/sys/net writable inside the node (nspawn leaves /proc/sys
        # read-only): Neutron's routers set sysctls in their namespaces.
        # Each node has its own network namespace, so the host is untouched.
        env = dict(os.environ, SYSTEMD_NSPAWN_API_VFS_WRITABLE="network")
        with open(ndir / "console.log", "ab") as out:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, env=env)
        pidfile.write_text(f"{proc.pid}\n")

    def ssh_target(self, node: Node) -> str:
        return str(self.inv.ssh_for(node).host)

    def ssh_args(self, node: Node) -> list[str]:
        access = self.inv.ssh_for(node)
        return ["ssh", "-i", str(self.key), "-o", f"UserKnownHostsFile={self.known_hosts}",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
                "-p", str(access.port), f"{access.user}@{access.host}"]

    def write_known_hosts(self) -> None:
        lines = []
        for node in self.inv.nodes:
            root = self.node_dir(node) / "rootfs"
            names = sorted({self.ssh_target(node), node.name})
            for pub in sorted((root / "etc/ssh").glob("ssh_host_*_key.pub")):
                kind, key = pub.read_text().split()[:2]
                lines.append(f"{','.join(names)} {kind} {key}\n")
        self.known_hosts.write_text("".join(lines))

    def wait_ssh(self, node: Node, timeout: float = 180) -> None:
        def ok() -> bool:
            return subprocess.run([*self.ssh_args(node), "true"], capture_output=True, check=False).returncode == 0
        _wait(ok, timeout, f"node {node.name} did not answer on SSH (see {self.node_dir(node) / 'console.log'})")

    # -- commands -------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One `lab up`/`lab down` of this lab at a time."""
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.dir.parent / f".{self.inv.cloud.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def up(self) -> None:
        self.preflight()
        with self._locked():
            self._up()

    def _up(self) -> None:
        self.ensure_image()
        self.ensure_key()
        if self.switched:
            self.ensure_switch()
        else:
            self.ensure_bridges()
        self.ensure_proxy()
        for i, node in enumerate(self.inv.nodes):
            self.prepare_rootfs(node)
            self.ensure_netns(i, node)
        self.write_known_hosts()
        for node in self.inv.nodes:
            self.start_node(node)
        for node in self.inv.nodes:
            self.wait_ssh(node)
            self.log(f"node {node.name} is up ({self.ssh_target(node)})")
        (self.dir / "lab.json").write_text(json.dumps(self.describe(), indent=2) + "\n")

    def describe(self) -> dict[str, Any]:
        wiring: dict[str, Any] = (
            {"switch": {"netns": self.switch_ns(), "vlans": switch_vlans(self.inv)}} if self.switched
            else {"bridges": {s.bridge: list(s.networks) for s in segments(self.inv)}})
        return {
            "cloud": self.inv.cloud.name,
            **wiring,
            "proxy": f"http://{self.proxy_address()}:{PROXY_PORT}",
            "nodes": {n.name: {"netns": self.netns(n), "ssh": self.ssh_target(n)} for n in self.inv.nodes},
        }

    def status(self) -> Iterator[dict[str, Any]]:
        for node in self.inv.nodes:
            running = _alive(self.node_dir(node) / "nspawn.pid")
            reachable = running and subprocess.run(
                [*self.ssh_args(node), "systemctl", "is-system-running"], capture_output=True, text=True, check=False
            ).stdout.strip()
            yield {"node": node.name, "roles": ",".join(node.roles), "running": running,
                   "ssh": self.ssh_target(node), "state": reachable or "-"}

    def is_up(self) -> bool:
        return self.dir.exists() and all(_alive(self.node_dir(n) / "nspawn.pid") for n in self.inv.nodes)

    def down(self) -> None:
        with self._locked():
            self._down()

    def _down(self) -> None:
        self._down_nodes()
        _stop(self.dir / "acng" / "pid", timeout=10)  # a lab's own proxy (before the shared one)
        if self.switched:
            _stop(self.switch_dir / "ovs-vswitchd.pid", timeout=10)
            _stop(self.switch_dir / "ovsdb-server.pid", timeout=10)
            if Path(f"/run/netns/{self.switch_ns()}").exists():
                run("ip", "netns", "del", self.switch_ns(), check=False)
        host_devs = [self.uplink(v) for v in sorted(set(switch_vlans(self.inv).values()))] if self.switched else []
        for dev in host_devs + [seg.bridge for seg in segments(self.inv)]:
            for rule in _forward_rules(dev) + _proxy_rules(dev, self.proxy_address()):
                while subprocess.run(["iptables", "-w", "-D", *rule], capture_output=True, check=False).returncode == 0:
                    pass
            if self._link_exists(dev):
                run("ip", "link", "del", dev, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.release_proxy()

    def _down_nodes(self) -> None:
        """Stop the nodes, then remove their namespaces and cables."""
        for node in self.inv.nodes:
            _stop(self.node_dir(node) / "nspawn.pid", timeout=30)
        for node in self.inv.nodes:
            ns = self.netns(node)
            if Path(f"/run/netns/{ns}").exists():
                run("ip", "netns", "del", ns, check=False)
        for i, node in enumerate(self.inv.nodes):
            for j, _ in enumerate(node.nics):
                if self._link_exists(self.veth(i, j)):
                    run("ip", "link", "del", self.veth(i, j), check=False)


# -- helpers ------------------------------------------------------------------


def no_tx_checksum(dev: str, netns: str | None = None) -> None:
    """Have the kernel finish checksums before a frame leaves *dev*: veth
    frames otherwise carry partial checksums that a userspace Open vSwitch
    forwards as they are, and the receiver drops (ICMP works, TCP does not)."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    run(*prefix, "ethtool", "-K", dev, "tx", "off")


def _forward_rules(bridge: str) -> list[list[str]]:
    """FORWARD rules for a lab bridge, in order: traffic between the nodes on
    the bridge passes (with br_netfilter, bridged frames cross FORWARD too);
    anything routed into or out of the bridge is dropped."""
    tag = ["-m", "comment", "--comment", "stackwright-lab"]
    return [
        ["FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT", *tag],
        ["FORWARD", "-i", bridge, "-j", "DROP", *tag],
        ["FORWARD", "-o", bridge, "-j", "DROP", *tag],
    ]


def _proxy_rules(dev: str, address: str) -> list[list[str]]:
    """The nat rule that hands a lab's proxy port to the shared cache."""
    shared = ":".join(map(str, SHARED_PROXY))
    return [["PREROUTING", "-t", "nat", "-i", dev, "-p", "tcp", "-d", address, "--dport", str(PROXY_PORT),
             "-j", "DNAT", "--to-destination", shared, "-m", "comment", "--comment", "stackwright-lab"]]


def proxy_dir() -> Path:
    return state_dir() / "proxy"


@contextlib.contextmanager
def _proxy_lock() -> Iterator[None]:
    """Labs start and stop the shared proxy one at a time."""
    proxy_dir().mkdir(parents=True, exist_ok=True)
    with open(proxy_dir() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pidfile: Path) -> bool:
    pid = _pid(pidfile)
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie or a recycled pid is not ours
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _stop(pidfile: Path, timeout: float) -> None:
    pid = _pid(pidfile)
    if pid is None or not _alive(pidfile):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pidfile):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.3)
    if _alive(pidfile):
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _wait(cond: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(1)
    raise LabError(message)


def _deb822_entries(text: str) -> list[dict[str, str]]:
    """The stanzas of a deb822 .sources file that name URIs."""
    entries = []
    for stanza in text.split("\n\n"):
        fields = dict((k.strip(), v.strip()) for k, v in
                      (line.split(":", 1) for line in stanza.splitlines() if not line.startswith("#") and ":" in line))
        if fields.get("URIs"):
            entries.append(fields)
    return entries


def _one_line_entries(text: str) -> list[dict[str, str]]:
    """The `deb` lines of a sources.list file (options in brackets dropped)."""
    entries = []
    for line in text.splitlines():
        # options may hold spaces: [arch=amd64 signed-by=/usr/share/keyrings/x.gpg]
        parts = re.sub(r"\[[^\]]*\]", " ", line.split("#")[0]).split()
        if len(parts) >= 3 and parts[0] == "deb":
            entries.append({"URIs": parts[1], "Suites": parts[2], "Components": " ".join(parts[3:])})
    return entries


def _host_sources() -> list[dict[str, str]]:
    """The host's Debian apt sources (deb822 and one-line formats)."""
    entries = [e for f in sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
               for e in _deb822_entries(f.read_text())]
    lists = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]
    entries += [e for f in lists if f.exists() for e in _one_line_entries(f.read_text())]
    return [e for e in entries if "bookworm" in e.get("Suites", "") and "/debian" in e["URIs"]]


def debian_archive_uri() -> str:
    """The main Debian archive this host uses (read from its apt config)."""
    for e in _host_sources():
        uri = e["URIs"].split()[0]
        if not uri.rstrip("/").endswith("-security"):
            return uri.rstrip("/") + "/"
    raise LabError("cannot find the Debian archive in this host's apt sources (/etc/apt/sources.list*)")


def node_sources() -> str:
    """apt sources for lab nodes: the host's Debian archives, over plain HTTP
    so the caching proxy can serve them."""
    stanzas = []
    for e in _host_sources():
        uris = " ".join(u.replace("https://", "http://") for u in e["URIs"].split())
        stanzas.append(
            f"Types: deb\nURIs: {uris}\nSuites: {e['Suites']}\nComponents: {e.get('Components', 'main')}\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        )
    return "\n".join(stanzas)
