"""The lab's dealings with this machine: commands, processes, names."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

Log = Callable[[str], None]


class LabError(Exception):
    pass


def run(*args: str, check: bool = True, capture: bool = True, input_: str | None = None,
        env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(list(args), check=False, text=True, input=input_,
                          env=dict(os.environ, **env) if env else None,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None)
    if check and proc.returncode != 0:
        raise LabError(f"`{' '.join(args)}` failed ({proc.returncode}): {(proc.stderr or '').strip()}")
    return proc.stdout or ""


def short_name(cloud: str) -> str:
    """A short tag of a cloud's name for its device names (15 characters at most)."""
    return hashlib.sha1(cloud.encode()).hexdigest()[:5]  # noqa: S324 - a name, not security


def link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def no_tx_checksum(dev: str, netns: str | None = None) -> None:
    """Have the kernel finish checksums before a frame leaves *dev*: veth
    frames otherwise carry partial checksums that a userspace Open vSwitch
    forwards as they are, and the receiver drops (ICMP works, TCP does not)."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    run(*prefix, "ethtool", "-K", dev, "tx", "off")


def host_addresses() -> list[tuple[str, str]]:
    """This machine's IPv4 addresses: (interface, address/prefix)."""
    links = json.loads(run("ip", "-j", "-4", "addr", "show"))
    return [(link["ifname"], f"{a['local']}/{a['prefixlen']}") for link in links for a in link.get("addr_info", [])]


def pid_of(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pidfile: Path) -> bool:
    pid = pid_of(pidfile)
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


def remove_cgroup(cgroup: Path) -> None:
    """Remove a stopped node's cgroup and what its systemd made below it
    (deepest first; a cgroup still holding a process stays)."""
    if not cgroup.is_dir():
        return
    for sub in sorted((p for p in cgroup.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        cgroup.rmdir()


def stop(pidfile: Path, timeout: float) -> None:
    """End the process of *pidfile* (one the lab started), by its pid."""
    stop_all([pidfile], timeout)


def stop_all(pidfiles: list[Path], timeout: float) -> None:
    """End the processes of *pidfiles* (the lab's own), by their pids: all
    asked at once, then given *timeout* together before they are killed.
    (One node after the other, each shutting down its forty OpenStack
    services, took an HA lab's `lab down` 100 s; at once, about 30 s.)"""
    running = {pid: pidfile for pidfile in pidfiles if (pid := pid_of(pidfile)) is not None and alive(pidfile)}
    for pid in running:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(f) for f in running.values()):
        for pid in running:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.3)
    left = [pid for pid, pidfile in running.items() if alive(pidfile)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    if left:
        time.sleep(0.5)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(cond: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(1)
    raise LabError(message)
