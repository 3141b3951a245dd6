"""The test guest's console protocol (what the post_deploy role's builder
makes it print) and a pinger for watching it from outside: shared by
`verify`, bench/migration.py and the end-to-end tests."""

from __future__ import annotations

import contextlib
import itertools
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BOOTED = "STACKWRIGHT-GUEST booted"
READY = "STACKWRIGHT-READY"  # after DHCP and metadata
DHCP_MARK = re.compile(r"STACKWRIGHT-DHCP (\S+)")
METADATA_MARK = re.compile(r"STACKWRIGHT-METADATA (\S+)")
DISK_MARK = re.compile(r"STACKWRIGHT-DISK (\S+) (\d+) sectors")
# written to its root disk at the first boot, printed at every boot
DISKMARK = re.compile(r"STACKWRIGHT-DISKMARK (\S+)")
# every 5 s: a live-migrated guest's keeps counting, a rebooted one restarts
UPTIME = re.compile(r"STACKWRIGHT-UPTIME (\d+(?:\.\d+)?)")
# the SSH host key the guest made at this boot (for the client to pin), and
# dropbear started with the metadata service's keys for root
HOSTKEY_MARK = re.compile(r"STACKWRIGHT-HOSTKEY (ssh-ed25519) ([A-Za-z0-9+/=]+)")
SSH_MARK = re.compile(r"STACKWRIGHT-SSH keys (\d+)")


def console(conn: Any, server: Any) -> str:
    return conn.compute.get_server_console_output(server).get("output") or ""


def uptime(conn: Any, server: Any) -> float:
    """The guest's latest uptime on its console (0.0: none yet)."""
    found = UPTIME.findall(console(conn, server))
    return float(found[-1]) if found else 0.0


def diskmarks(conn: Any, server: Any) -> list[str]:
    return DISKMARK.findall(console(conn, server))


@contextlib.contextmanager
def pingable(conn: Any, name: str, node: str, image: str = "stackwright-testguest", flavor: str = "m1.nano",
             network: str = "demo-net", external: str = "public") -> Iterator[tuple[Any, Any]]:
    """The test guest booted on compute *node*, ACTIVE, with a floating IP
    and a security group of its own that lets ping in: (server, floating
    IP).  All three are removed afterwards."""
    group = conn.network.create_security_group(name=name, description=f"{name}: ping")
    conn.network.create_security_group_rule(security_group_id=group.id, direction="ingress", ethertype="IPv4",
                                            protocol="icmp")
    server = conn.compute.create_server(
        name=name, image_id=conn.image.find_image(image, ignore_missing=False).id,
        flavor_id=conn.compute.find_flavor(flavor, ignore_missing=False).id,
        networks=[{"uuid": conn.network.find_network(network, ignore_missing=False).id}],
        security_groups=[{"name": group.name}], availability_zone=f"nova:{node}")
    fip = None
    try:
        server = conn.compute.wait_for_server(server, wait=600)
        port = next(conn.network.ports(device_id=server.id))
        fip = conn.network.create_ip(floating_network_id=conn.network.find_network(external, ignore_missing=False).id,
                                     port_id=port.id)
        yield server, fip
    finally:
        if fip is not None:
            conn.network.delete_ip(fip)
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=300)
        conn.network.delete_security_group(group)


class Ssh:
    """Root's shell on a test guest: a key pair made here (the private key
    never leaves a temporary directory of this machine), the guest's host
    key pinned from its console (no trust on first use), OpenSSH's client."""

    def __init__(self, workdir: Path):
        self.key = workdir / "id_ed25519"
        self.known_hosts = workdir / "known_hosts"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "stackwright-verify", "-f",
                        str(self.key)], check=True, capture_output=True)

    @property
    def public_key(self) -> str:
        return self.key.with_suffix(".pub").read_text().strip()

    def pin(self, address: str, console_log: str) -> bool:
        """Trust the host key the guest printed at its latest boot."""
        found = HOSTKEY_MARK.findall(console_log)
        if not found:
            return False
        kind, key = found[-1]
        self.known_hosts.write_text(f"{address} {kind} {key}\n")
        return True

    def run(self, address: str, command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ssh", "-i", str(self.key), "-o", f"UserKnownHostsFile={self.known_hosts}",
             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
             "-o", "LogLevel=ERROR", f"root@{address}", command],
            capture_output=True, text=True, check=False, timeout=timeout)


class Pinger(threading.Thread):
    """One echo request every *interval* seconds; keeps the time of every
    answer (ping -D stamps each).  Below 0.2 s ping needs root."""

    def __init__(self, address: str, interval: float = 0.05):
        super().__init__(daemon=True)
        self.address, self.interval = address, interval
        self.answered: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        proc = subprocess.Popen(["ping", "-n", "-D", "-i", str(self.interval), "-W", "1", self.address],
                                stdout=subprocess.PIPE, text=True)
        start = time.time()
        for line in proc.stdout or ():
            if self.stop.is_set():
                break
            if "bytes from" in line and line.startswith("["):
                self.answered.append(float(line[1:line.index("]")]))
        proc.terminate()
        proc.wait()
        self.seconds = time.time() - start

    def gap(self, since: float, until: float) -> tuple[float, int]:
        """Longest time without an answer within [since, until], and the
        requests lost in it (estimated from the interval)."""
        times = [since, *[t for t in self.answered if since <= t <= until], until]
        longest = max(b - a for a, b in itertools.pairwise(times))
        lost = max(0, round((until - since) / self.interval) - (len(times) - 2))
        return longest, lost
