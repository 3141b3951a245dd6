"""Fencing on the built-in lab: a node with a fence device gets a simulated
BMC (OpenIPMI's ipmi_sim) on the lab host; `stackwright node power` reads
and sets the node's power through it with the real agent, fence_ipmilan,
over IPMI 2.0 - the path `node evacuate` takes.  One node, no deploy: a
minute at most.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from stackwright_cli import lab_copy, sw

from stackwright.lab import Lab, alive
from stackwright.loader import load

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

INVENTORY = Path(__file__).resolve().parents[2] / "inventories" / "aio.yml"
BMC = "10.76.0.254:6240"


@pytest.fixture(scope="module")
def fence_lab(tmp_path_factory: pytest.TempPathFactory):
    for path in lab_copy(INVENTORY, "aio", "e2efence", tmp_path_factory.mktemp("fence"),
                         {"10.42.": "10.76.", "10.43.": "10.77.", "10.44.": "10.78.", "10.45.": "10.79."},
                         "    fence: {agent: ipmilan, address: 10.76.0.254, port: 6240, username: fence}\n"):
        sw("lab", "up", str(path))
        yield path


def power(path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sw("node", "power", str(path), "aio1", *args, check=check, timeout=120)


def answers(address: str, tries: int) -> bool:
    """The address answers a ping within *tries* seconds."""
    for _ in range(tries):
        if subprocess.run(["ping", "-c1", "-W1", address], capture_output=True, check=False).returncode == 0:
            return True
    return False


def addresses(netns: str) -> set[str]:
    """The IPv4 addresses configured in a node's network namespace, but loopback's."""
    links = json.loads(subprocess.run(["ip", "-j", "-n", netns, "-4", "addr", "show"], capture_output=True,
                                      text=True, check=True).stdout)
    return {a["local"] for link in links if link["ifname"] != "lo" for a in link.get("addr_info", [])}


def test_a_node_is_powered_off_and_on_through_its_bmc(fence_lab: Path):
    lab = Lab(load(fence_lab))
    node = lab.inv.nodes[0]
    running = lab.node_dir(node) / "nspawn.pid"
    bmc = lab.node_dir(node) / "bmc"
    assert power(fence_lab, "status").stdout.strip() == "aio1: power on"

    # the BMC answers on the lab host's management address only, at the
    # node's port; its configuration (which holds the password) is root's
    sockets = subprocess.run(["ss", "-Hlunp"], capture_output=True, text=True, check=True).stdout
    assert {line.split()[3] for line in sockets.splitlines() if "ipmi_sim" in line} >= {BMC}
    pid = (bmc / "pid").read_text().strip()
    assert [line.split()[3] for line in sockets.splitlines() if f"pid={pid}," in line] == [BMC]
    assert (bmc / "lan.conf").stat().st_mode & 0o777 == 0o600

    # the simulated BMC checks the password as a real one does: a wrong one
    # is refused by IPMI, and not shown
    secrets = fence_lab.with_name("e2efence.secrets.yml")
    good = secrets.read_text()
    wrong = "WrongPassword123"
    secrets.write_text(re.sub(r"(?m)^fence_password_aio1: .*$", f"fence_password_aio1: {wrong}", good))
    try:
        refused = power(fence_lab, "status", check=False)
    finally:
        secrets.write_text(good)
    assert refused.returncode != 0
    assert f"aio1's BMC at {BMC}: status failed" in refused.stderr
    assert wrong not in refused.stdout + refused.stderr

    # a pulled cable: the node runs on, unreachable on that network until
    # the cable is back; a network the node is not on is refused by name
    assert "eth0 unplugged" in sw("lab", "cut", str(fence_lab), "aio1", "mgmt").stdout
    assert alive(running) and not answers("10.76.0.11", tries=3)
    assert "eth0 plugged back in" in sw("lab", "heal", str(fence_lab), "aio1", "mgmt").stdout
    assert answers("10.76.0.11", tries=30)
    refused = sw("lab", "cut", str(fence_lab), "aio1", "storage", check=False)
    assert refused.returncode != 0 and "node aio1 is not on network 'storage'" in refused.stderr

    # off is a power cut: the node's processes are gone, and the BMC says so
    assert power(fence_lab, "off", "--yes").stdout.strip() == "aio1: power off"
    assert not alive(running)
    assert power(fence_lab, "status").stdout.strip() == "aio1: power off"
    # ... and its NICs are dark: its network namespace (which outlives the
    # processes) answers for none of its addresses, its links are down
    assert addresses(lab.netns(node)) == set()
    assert not answers("10.76.0.11", tries=1)
    # ... and on boots it again: it answers on SSH
    assert power(fence_lab, "on").stdout.strip() == "aio1: power on"
    assert alive(running)
    lab.wait_ssh(node, timeout=120)
    assert "10.76.0.11" in addresses(lab.netns(node))  # its own configuration set it again

    # `lab down` ends the BMC with the node
    sw("lab", "down", str(fence_lab))
    deadline = time.monotonic() + 10  # ended; its new parent, init, reaps it
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists()
