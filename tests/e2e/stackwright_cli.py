"""The end-to-end tests run the stackwright CLI as a user would: a failure or
a timeout fails the test with the command's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stackwright.secrets import CA, UUIDS
from stackwright.secrets import read as read_secrets

# every command's output in this test session, for the secret scans
OUTPUTS: list[str] = []


def opt_in_lab(variable: str, reason: str) -> list[Any]:
    """The marks of a long lab test that runs only when *variable* is set
    (its make target sets it), as root."""
    return [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
            pytest.mark.skipif(not os.environ.get(variable), reason=reason)]


def assert_https_only(host: str, cacert: str | None) -> None:
    """The public endpoints on *host* speak only HTTPS, with a certificate
    of *cacert*: Keystone's version document links https:// (the APIs read
    HAProxy's X-Forwarded-Proto), plain HTTP on its port gets no answer,
    and the dashboard's port 80 only redirects to HTTPS."""
    import requests

    version = requests.get(f"https://{host}:5000/v3", verify=cacert, timeout=10).json()["version"]
    assert version["links"][0]["href"].startswith(f"https://{host}:5000/"), version
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{host}:5000/v3", timeout=10)
    redirect = requests.get(f"http://{host}/", allow_redirects=False, timeout=10)
    assert redirect.status_code == 301 and redirect.headers["Location"].startswith(f"https://{host}/")


def _tail(output: str | bytes | None, lines: int = 60) -> str:
    text = output.decode(errors="replace") if isinstance(output, bytes) else output or ""
    return "\n".join(text.splitlines()[-lines:])


def sw(*args: str, env: dict[str, str] | None = None, check: bool = True,
       timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run([sys.executable, "-m", "stackwright", *args], capture_output=True, text=True,
                              env=env, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"stackwright {' '.join(args)} did not finish in {e.timeout:.0f}s\n{_tail(e.stdout)}")
    OUTPUTS.append(proc.stdout + proc.stderr)
    if check and proc.returncode != 0:
        pytest.fail(f"stackwright {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def last_deploy(inventory: Path) -> dict[str, Any]:
    """The summary the last complete deploy of *inventory*'s cloud left (its
    copies are named after their cloud)."""
    return json.loads((inventory.parent / ".stackwright" / inventory.stem / "last-deploy.json").read_text())


def lab_copy(source: Path, old_name: str, new_name: str, folder: Path, subnets: dict[str, str],
             extra: str = "") -> Iterator[Path]:
    """A copy of an example inventory for a test's own lab (another cloud
    name, other subnets, *extra* text appended), its lab removed before
    (leftovers of an interrupted run) and after."""
    text = source.read_text().replace(f"name: {old_name}\n", f"name: {new_name}\n")
    for old, new in subnets.items():
        text = text.replace(old, new)
    path = folder / f"{new_name}.yml"
    path.write_text(text + extra)
    sw("lab", "down", str(path))
    yield path
    sw("lab", "down", str(path))


# How `ss` shows a listener on every address of a node (IPv4, either, IPv6)
WILDCARDS = ("0.0.0.0", "*", "[::]")  # noqa: S104 - matched, not bound


def on_every_address(addresses: set[str]) -> set[str]:
    """The `ss` local addresses (address:port) that listen on every address."""
    return {a for a in addresses if a.rsplit(":", 1)[0] in WILDCARDS}


# Where a node may keep a secret: a service's configuration and state,
# root's own files; and only where not every user reads it.  What the scan
# reads: everything but the system's own programs and kernel filesystems.
SECRET_HOMES = ("/etc/", "/var/lib/", "/root/")
SCANNED = "/etc /root /home /tmp /var /opt /srv /run /usr/local"
# how many journal entries hold a pattern of standard input (grep's own
# standard input is the journal: the patterns come through fd 3)
_JOURNAL = "set -o pipefail; exec 3<&0; journalctl -o json --no-pager | { grep -caF -f /dev/fd/3 || [ $? -eq 1 ]; }"
# the files holding a pattern of standard input, with mode and owner
_GREP = f"grep -rlaF -f /dev/stdin {SCANNED} 2>/dev/null | xargs -r -d '\\n' stat -c '%a %U:%G %n'"


# What each node's data path looked like, for a failed verify's message
# (the lab is gone when CI reports): bridges and ports, the DHCP and router
# namespaces, dnsmasq, the re-plug watcher and Open vSwitch's complaints.
_NETWORK_REPORT = r"""
ovs-vsctl show
ovs-vsctl --columns=name,ofport,error,external_ids list Interface | grep -A3 'name *: tap'
for ns in $(ip netns list | cut -d' ' -f1); do echo "== $ns"; ip netns exec "$ns" ip -br addr; done
pgrep -a dnsmasq | cut -c1-200
journalctl -q -u stackwright-ovs-replug -u neutron-dhcp-agent -u neutron-openvswitch-agent -p warning -n 40 --no-pager
grep -E 'WARN|ERR' /var/log/openvswitch/ovs-vswitchd.log | grep -v 'VLAN 0 packet' | tail -n 30
"""


def listening(lab: Any, node: Any, flags: str) -> set[str]:
    """The local addresses (address:port) `ss FLAGS` lists in *node*'s
    network namespace (-Hltn: TCP listeners, -Hlun: UDP)."""
    out = subprocess.run(["ip", "netns", "exec", lab.netns(node), "ss", flags], capture_output=True,
                         text=True, check=True).stdout
    return {line.split()[3] for line in out.splitlines()}


def assert_listeners(lab: Any, udp: Callable[[Any], set[str]]) -> None:
    """On every node nothing listens on every address but the lab's sshd,
    and UDP listeners are exactly *udp(node)*."""
    for node in lab.inv.nodes:
        wildcard = on_every_address(listening(lab, node, "-Hltn"))
        assert {a.rsplit(":", 1)[1] for a in wildcard} <= {"22"}, (node.name, sorted(wildcard))
        assert listening(lab, node, "-Hlun") == udp(node), node.name


def network_report(lab: Any) -> str:
    """_NETWORK_REPORT of every node of *lab* (a failed verify's evidence)."""
    parts = []
    for node in lab.inv.nodes:
        done = subprocess.run([*lab.ssh_args(node), "sh"], input=_NETWORK_REPORT, capture_output=True, text=True,
                              check=False, timeout=120)
        parts.append(f"===== {node.name}\n{done.stdout}{done.stderr}")
    return "\n".join(parts)


def secret_values(secrets: dict[str, Any]) -> list[str]:
    """Every generated secret of a secrets file (passwords, keys, BMC
    passwords) and each line of the cloud CA's key; not the UUIDs, which
    are identifiers Ceph and virsh print."""
    values = [str(v) for k, v in secrets.items() if k not in UUIDS + CA]
    return values + [line for line in secrets["cloud_ca_key"].splitlines() if not line.startswith("-----")]


# The files of the work folder that must hold a secret, only with mode
# 0600: Tempest's configuration has the admin password it tests with.
WORK_HOLDERS = ("tempest/etc/tempest.conf",)


def secrets_leaked(lab: Any, work: Path, values: list[str]) -> list[str]:
    """Where a secret is found where it must not be: any command's output,
    a file of the deploy's work folder on this machine (rendered inventory,
    runner artifacts, caches; WORK_HOLDERS only when other than 0600), and
    on every node a file outside SECRET_HOMES or readable by every user, or
    a journal entry (any field: a process's command line too).  The values reach grep on its standard
    input, never a command line."""
    found = [f"the output of a command ({value[:3]}...)" for value in values
             for out in OUTPUTS if value in out][:5]
    for path in work.rglob("*"):
        if path.is_file():
            if str(path.relative_to(work)) in WORK_HOLDERS and path.stat().st_mode & 0o777 == 0o600:
                continue
            text = path.read_text(errors="replace")
            found += [f"{path} ({v[:3]}...)" for v in values if v in text][:1]
    patterns = "\n".join(values) + "\n"
    for node in lab.inv.nodes:
        files = subprocess.run([*lab.ssh_args(node), _GREP], input=patterns, capture_output=True, text=True,
                               check=False, timeout=600).stdout
        for line in files.splitlines():
            mode, owner, where = line.split(" ", 2)
            if not where.startswith(SECRET_HOMES) or int(mode, 8) & 0o007:
                found.append(f"{node.name}:{where} (mode {mode}, {owner})")
        journal = subprocess.run([*lab.ssh_args(node), _JOURNAL], input=patterns, capture_output=True, text=True,
                                 check=False, timeout=600)
        if journal.returncode != 0 or journal.stdout.strip() != "0":
            found.append(f"{node.name}: {journal.stdout.strip() or journal.stderr.strip()} journal entries")
    return found


def cloud_secrets_leaked(lab: Any, inventory: Path) -> list[str]:
    """secrets_leaked for the cloud of a lab copy of an inventory: its
    secrets file beside it, its work folder .stackwright/<cloud> there."""
    cloud = lab.inv.cloud.name
    values = secret_values(read_secrets(inventory.with_name(f"{cloud}.secrets.yml")))
    return secrets_leaked(lab, inventory.parent / ".stackwright" / cloud, values)
