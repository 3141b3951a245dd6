"""The nodes' root file systems: a Debian 12 base image built once with
debootstrap, copied per node and made that node (its name, the lab's SSH
key and host keys, apt through the lab's proxy, its untagged addresses as
an installer leaves them)."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from ..model import Inventory, Node
from .host import Log, run
from .proxy import PROXY_PORT
from .sources import node_sources

BASE_PACKAGES = (
    "systemd,systemd-sysv,dbus,iproute2,openssh-server,python3,python3-apt,sudo,"
    "iputils-ping,ca-certificates,eatmydata"
)


def ensure_image(image: Path, log: Log) -> None:
    """The base image at *image*, built once.  Labs brought up at the same
    time (two clones' tests on one machine) build it once: the second waits
    on the lock for the first, then finds it made."""
    image.parent.mkdir(parents=True, exist_ok=True)
    with open(image.with_name(image.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _build_image(image, log)


def _build_image(image: Path, log: Log) -> None:
    marker = image / ".stackwright-image"
    if marker.exists() and marker.read_text().strip() == BASE_PACKAGES:
        return
    if image.exists() and not marker.exists() and (image / "etc/debian_version").exists():
        marker.write_text(BASE_PACKAGES + "\n")  # built by hand with the same recipe
        return
    tmp = image.with_name(image.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    log("building the Debian 12 base image with debootstrap (once; takes a few minutes)")
    run("debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(tmp))
    (tmp / ".stackwright-image").write_text(BASE_PACKAGES + "\n")
    shutil.rmtree(image, ignore_errors=True)
    tmp.rename(image)


def make_rootfs(root: Path, image: Path, inv: Inventory, node: Node, public_key: str, proxy_address: str) -> None:
    """The node's root file system at *root* (once: a node made before is kept)."""
    if (root / "etc/stackwright-lab-node").exists():
        return
    root.parent.mkdir(parents=True, exist_ok=True)
    for stale in root.parent.glob("rootfs.tmp*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix="rootfs.tmp", dir=root.parent))
    run("cp", "-a", "--reflink=auto", f"{image}/.", str(tmp))
    (tmp / ".stackwright-image").unlink(missing_ok=True)
    (tmp / "etc/hostname").write_text(node.name + "\n")
    (tmp / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    (tmp / "etc/hosts").write_text(f"127.0.0.1 localhost\n127.0.1.1 {node.name}\n")
    (tmp / "etc/resolv.conf").unlink(missing_ok=True)
    (tmp / "etc/resolv.conf").write_text("# the lab has no DNS: names come from /etc/hosts\n")
    # apt through the host's caching proxy, from the host's own Debian
    # archives; a stalled or failed download is retried, not waited on
    (tmp / "etc/apt/apt.conf.d/01stackwright-lab-proxy").write_text(
        f'Acquire::http::Proxy "http://{proxy_address}:{PROXY_PORT}";\n'
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
    (ssh / "authorized_keys").write_text(public_key)
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
        addrs = [f"{att.address}/{inv.network(n).cidr.prefixlen}"
                 for n, att in node.networks.items()
                 if att.interface == nic.name and att.address and not inv.network(n).vlan]
        body = f"[Match]\nName={nic.name}\n\n[Link]\nRequiredForOnline={'yes' if addrs else 'no'}\n\n[Network]\n"
        body += "LinkLocalAddressing=no\nIPv6AcceptRA=no\n" + "".join(f"Address={a}\n" for a in addrs)
        (netdir / f"10-stackwright-{nic.name}.network").write_text(body)
    wants = tmp / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / "systemd-networkd.service"
    if not link.exists():
        link.symlink_to("/lib/systemd/system/systemd-networkd.service")
    (tmp / "etc/stackwright-lab-node").write_text(inv.cloud.name + "\n")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
