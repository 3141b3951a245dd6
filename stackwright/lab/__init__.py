"""The built-in lab: inventory nodes as systemd-nspawn containers on this machine.

Each node gets its own network namespace (created here, ``ip netns``), one
veth per NIC of its inventory entry, plugged into a host bridge per network
segment or into the lab switch (:mod:`.wiring`); its root file system is a
copy of a Debian 12 base image (:mod:`.image`); apt goes through the package
cache every lab shares (:mod:`.proxy`), which serves this machine's own
Debian archives (:mod:`.sources`).  The nodes get no default route and the
host never routes for them.

This module holds the lab's life cycle (up, status, down) and its nodes:
everything it creates is recorded under the lab directory so that ``down``
removes exactly that and nothing else.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..model import Inventory, Node
from ..paths import state_dir
from . import bmc
from .host import LabError, Log, alive, host_addresses, pid_of, remove_cgroup, run, stop, stop_all, wait_until
from .image import ensure_image, make_rootfs
from .proxy import PROXY_PORT, ensure_proxy, proxy_dir, release_proxy
from .sources import debian_archive_uri, node_sources
from .wiring import HOST_NETWORK_ROLES, Segment, Wiring, adapt, address_clashes, host_address, segments, switch_vlans

__all__ = ["Lab", "LabError", "Segment", "adapt", "address_clashes", "alive", "debian_archive_uri", "host_address",
           "node_sources", "proxy_dir", "segments", "stop", "switch_vlans"]

HOST_TOOLS = {"systemd-nspawn": "systemd-container", "debootstrap": "debootstrap",
              "apt-cacher-ng": "apt-cacher-ng", "ssh": "openssh-client", "iptables": "iptables",
              "ovs-vswitchd": "openvswitch-switch", "ethtool": "ethtool", "ping": "iputils-ping"}


class Lab:
    def __init__(self, inv: Inventory, log: Log = print):
        self.inv = inv
        self.log = log
        self.dir = state_dir() / "labs" / inv.cloud.name
        self.image = state_dir() / "images" / "bookworm-base"
        self.key = self.dir / "id_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.wiring = Wiring(inv, self.dir)

    # -- names --------------------------------------------------------------
    def netns(self, node: Node) -> str:
        return f"sw-{self.inv.cloud.name}-{node.name}"

    def veth(self, node_index: int, nic_index: int) -> str:
        return self.wiring.veth(node_index, nic_index)

    def node_dir(self, node: Node) -> Path:
        return self.dir / "nodes" / node.name

    def proxy_address(self) -> str:
        return self.wiring.proxy_address()

    # -- checks ---------------------------------------------------------------
    def preflight(self) -> None:
        if os.geteuid() != 0:
            raise LabError("the lab needs root (it creates network namespaces, bridges and containers)")
        missing = [pkg for tool, pkg in HOST_TOOLS.items()
                   if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists()]
        if missing:
            raise LabError("missing host packages: " + " ".join(sorted(set(missing)))
                           + f" (apt-get install {' '.join(sorted(set(missing)))})")
        if bmc.fenced(self.inv) and not shutil.which("ipmi_sim"):
            raise LabError("the inventory's fence devices need the lab's BMC simulator: apt-get install openipmi")
        if bmc.problems(self.inv):
            raise LabError("; ".join(bmc.problems(self.inv)))
        taken = {str(a.address) for n in self.inv.nodes for a in n.networks.values()}
        for net in self.inv.networks:
            if net.role in HOST_NETWORK_ROLES and host_address(self.inv, net.name) in taken:
                raise LabError(f"network {net.name}: {host_address(self.inv, net.name)} is reserved for the lab host")
        clashes = address_clashes(self.inv, self.wiring.host_devices(), host_addresses())
        if clashes:
            raise LabError("; ".join(clashes))

    # -- nodes -------------------------------------------------------------------
    def ensure_key(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.key.exists():
            run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"stackwright-lab-{self.inv.cloud.name}",
                "-f", str(self.key))

    def ensure_netns(self, index: int, node: Node) -> None:
        ns = self.netns(node)
        if not Path(f"/run/netns/{ns}").exists():
            run("ip", "netns", "add", ns)
        self.wiring.plug(index, node, ns)

    def cgroups(self, node: Node) -> list[Path]:
        """The node's own cgroup in each hierarchy systemd uses (the named v1
        one and the unified one).  nspawn --keep-unit puts the node under the
        cgroup it starts in; started from one process, every node shared one
        tree, so systemd on one node saw the others' units as its own: a VM
        scope of cmp2 blocked cmp3's VM of the same name ("Unit
        machine-qemu-1-instance-00000002.scope was already loaded") and a
        stopped service's cgroup never emptied while another node ran it."""
        roots = [Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified")]
        return [root / "stackwright" / self.netns(node) for root in roots if (root / "cgroup.procs").exists()]

    def start_node(self, node: Node) -> None:
        ndir = self.node_dir(node)
        pidfile = ndir / "nspawn.pid"
        if alive(pidfile):
            return
        cgroups = self.cgroups(node)
        for cgroup in cgroups:
            cgroup.mkdir(parents=True, exist_ok=True)
        # the shell moves itself into the node's cgroups, then becomes nspawn
        enter = "".join(f'echo $$ > "{c}/cgroup.procs" && ' for c in cgroups)
        args = [
            "sh", "-c", enter + 'exec "$@"', "sh",
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
        wait_until(ok, timeout, f"node {node.name} did not answer on SSH (see {self.node_dir(node) / 'console.log'})")

    # -- life cycle -------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One `lab up`/`lab down` of this lab at a time."""
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        with open(self.dir.parent / f".{self.inv.cloud.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def up(self, fence_passwords: dict[str, str] | None = None) -> None:
        """Create or restart the lab; *fence_passwords* (node -> password)
        for the BMCs of the nodes with a fence device."""
        self.preflight()
        with self._locked():
            self._up()
            bmc.start(self, fence_passwords or {})

    def _up(self) -> None:
        ensure_image(self.image, self.log)
        self.ensure_key()
        self.wiring.ensure()
        ensure_proxy()
        public_key = self.key.with_suffix(".pub").read_text()
        for i, node in enumerate(self.inv.nodes):
            make_rootfs(self.node_dir(node) / "rootfs", self.image, self.inv, node, public_key, self.proxy_address())
            self.ensure_netns(i, node)
        self.write_known_hosts()
        for node in self.inv.nodes:
            self.start_node(node)
        for node in self.inv.nodes:
            self.wait_ssh(node)
            self.log(f"node {node.name} is up ({self.ssh_target(node)})")
        (self.dir / "lab.json").write_text(json.dumps(self.describe(), indent=2) + "\n")

    def describe(self) -> dict[str, Any]:
        return {
            "cloud": self.inv.cloud.name,
            **self.wiring.describe(),
            "proxy": f"http://{self.proxy_address()}:{PROXY_PORT}",
            "nodes": {n.name: {"netns": self.netns(n), "ssh": self.ssh_target(n)} for n in self.inv.nodes},
        }

    def status(self) -> Iterator[dict[str, Any]]:
        for node in self.inv.nodes:
            running = alive(self.node_dir(node) / "nspawn.pid")
            reachable = running and subprocess.run(
                [*self.ssh_args(node), "systemctl", "is-system-running"], capture_output=True, text=True, check=False
            ).stdout.strip()
            yield {"node": node.name, "roles": ",".join(node.roles), "running": running,
                   "ssh": self.ssh_target(node), "state": reachable or "-"}

    # -- power, for fault tests ---------------------------------------------------
    def power_off(self, node: Node) -> bool:
        """Pull the plug: SIGKILL the node's init (PID 1 of its PID
        namespace), which the kernel follows by killing every process of the
        node at once - no shutdown, no flush, no goodbye on the network.
        False when it was off already.  Only this lab's own node process
        (its pid file) is touched."""
        pidfile = self.node_dir(node) / "nspawn.pid"
        init = self.init_pid(node)
        if init is None:
            return False
        # the NICs first: killed processes close their sockets, and a kernel
        # whose links still worked would send every peer a FIN or RST at
        # once - a crash's goodbye, which a dead server never sends (seen:
        # HAProxy and Galera noticed the "power cut" within 0.05 s)
        self._dark(node)
        os.kill(init, signal.SIGKILL)
        stop(pidfile, timeout=10)  # nspawn itself, once its container is gone
        return True

    def init_pid(self, node: Node) -> int | None:
        """The node's init as this host sees it (nspawn's one child), or None
        when the node is off.  Its descendants are the node's processes."""
        pidfile = self.node_dir(node) / "nspawn.pid"
        pid = pid_of(pidfile)
        if pid is None or not alive(pidfile):
            return None
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return int(children[0]) if children else None

    def _dark(self, node: Node) -> None:
        """What a dead server's NICs do: nothing.  The node's network
        namespace outlives its processes and would keep every address
        configured (a VIP too) and answer ARP and ping for it; so its links
        go down without addresses, as a powered-off server's would, and come
        back at boot with only what the node's own configuration sets."""
        ns = self.netns(node)
        links = json.loads(run("ip", "-j", "-n", ns, "link", "show") or "[]")
        for link in links:
            if link["ifname"] != "lo":
                run("ip", "-n", ns, "addr", "flush", "dev", link["ifname"], check=False)
                run("ip", "-n", ns, "link", "set", "dev", link["ifname"], "down", check=False)

    def power_on(self, node: Node) -> None:
        """Boot a node that is off (its disk and cables are kept) and wait
        for its SSH."""
        self.start_node(node)
        self.wait_ssh(node)

    # -- cables, for fault tests: pull them and plug them back ----------------
    def cables(self, node: Node, network: str | None = None) -> list[tuple[str | None, str]]:
        """The far ends of the node's cables, as (network namespace or None
        for the host, device): all of them, or those of the NICs that carry
        *network* (a bond's members)."""
        names = {nic.name for nic in node.nics}
        if network is not None:
            att = node.networks.get(network)
            if att is None:
                raise LabError(f"node {node.name} is not on network {network!r} "
                               f"(its networks: {', '.join(sorted(node.networks))})")
            bond = next((b for b in node.bonds if b.name == att.interface), None)
            names = set(bond.members) if bond else {att.interface}
        index = self.inv.nodes.index(node)
        where = self.wiring.switch_ns() if self.wiring.switched else None
        return [(where, self.wiring.veth(index, j)) for j, nic in enumerate(node.nics) if nic.name in names]

    def set_cables(self, node: Node, network: str | None = None, up: bool = False) -> list[str]:
        """Take the far ends of the node's cables down (a pulled cable: the
        node sees no carrier) or, with *up*, up again; return the node's NICs
        touched."""
        ends = self.cables(node, network)
        for where, dev in ends:
            run("ip", *(["-n", where] if where else []), "link", "set", dev, "up" if up else "down")
        index = self.inv.nodes.index(node)
        devices = {dev for _, dev in ends}
        return [nic.name for j, nic in enumerate(node.nics) if self.wiring.veth(index, j) in devices]

    def is_up(self) -> bool:
        return self.dir.exists() and all(alive(self.node_dir(n) / "nspawn.pid") for n in self.inv.nodes)

    def down(self) -> None:
        with self._locked():
            self._down()

    def _down(self) -> None:
        bmc.stop_all(self)  # first: nobody powers a node on again
        self._down_nodes()
        stop(self.dir / "acng" / "pid", timeout=10)  # a lab's own proxy (before the shared one)
        self.wiring.remove()
        shutil.rmtree(self.dir, ignore_errors=True)
        release_proxy(self.dir)

    def _down_nodes(self) -> None:
        """Stop the nodes, then remove their cgroups, namespaces and cables."""
        stop_all([self.node_dir(node) / "nspawn.pid" for node in self.inv.nodes], timeout=30)
        for node in self.inv.nodes:
            for cgroup in self.cgroups(node):
                remove_cgroup(cgroup)
        for node in self.inv.nodes:
            ns = self.netns(node)
            if Path(f"/run/netns/{ns}").exists():
                run("ip", "netns", "del", ns, check=False)
        for i, node in enumerate(self.inv.nodes):
            self.wiring.unplug(i, node)
