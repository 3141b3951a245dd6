"""The host_network role's systemd-networkd files, rendered by the role
itself (stage only, local connection, into a temporary directory): Linux
bonds and VLAN devices cannot be brought up by the lab kernel, so their files
are checked here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackwright.loader import load
from stackwright.render import render

REPO = Path(__file__).resolve().parents[2]


def stage(tmp_path: Path, inventory: str, host: str, out: Path | None = None) -> dict[str, str]:
    inv_dir = tmp_path / "inventory"
    render(load(REPO / "inventories" / inventory), inv_dir)
    out = out or tmp_path / "stage"
    playbook = tmp_path / "play.yml"
    playbook.write_text("- hosts: all\n  gather_facts: false\n  roles: [host_network]\n")
    args = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inv_dir), "--limit", host,
            "-e", "ansible_connection=local", "-e", f"ansible_python_interpreter={sys.executable}",
            "-e", "host_network_render_only=true", "-e", f"host_network_stage_dir={out}", str(playbook)]
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_ROLES_PATH=str(REPO / "roles"),
               ANSIBLE_FILTER_PLUGINS=str(REPO / "plugins" / "filter"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"))
    result = subprocess.run(args, capture_output=True, text=True, env=env, check=False, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    return {p.name: p.read_text() for p in sorted(out.iterdir())}


def body(text: str) -> list[str]:
    """The file without comments and blank lines."""
    return [ln for ln in text.splitlines() if ln and not ln.startswith("#")]


@pytest.fixture(scope="module")
def node3(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return stage(tmp_path_factory.mktemp("node3"), "fuel-bonded.yml", "node3")


def test_linux_bond_netdev(node3):
    assert body(node3["10-stackwright-bond0.netdev"]) == [
        "[NetDev]", "Name=bond0", "Kind=bond", "MTUBytes=1500",
        "[Bond]", "Mode=802.3ad", "MIIMonitorSec=100ms", "LACPTransmitRate=fast", "TransmitHashPolicy=layer3+4",
    ]


def test_bond_members_join_the_bond(node3):
    for member in ("eth2", "eth3"):
        lines = body(node3[f"10-stackwright-{member}.network"])
        assert f"Name={member}" in lines and "Bond=bond0" in lines
        assert not [ln for ln in lines if ln.startswith("Address=")]


def test_bond_in_ovs_carries_no_address(node3):
    lines = body(node3["10-stackwright-bond0.network"])
    assert "ConfigureWithoutCarrier=yes" in lines
    assert not [ln for ln in lines if ln.startswith("Address=")]


def test_vlan_device_and_its_parent(node3):
    assert body(node3["10-stackwright-eth1.101.netdev"]) == ["[NetDev]", "Name=eth1.101", "Kind=vlan",
                                                            "MTUBytes=1500", "[VLAN]", "Id=101"]
    assert "VLAN=eth1.101" in body(node3["10-stackwright-eth1.network"])
    assert "Address=192.168.0.13/24" in body(node3["10-stackwright-eth1.101.network"])


def test_address_on_ovs_internal_port_and_bridges_spec(node3):
    assert "Address=192.168.1.13/24" in body(node3["10-stackwright-storage.network"])
    assert '"name": "br-physnet1"' in node3["ovs-bridges.json"]
    assert set(node3) == {"10-stackwright-eth0.network", "10-stackwright-eth1.network",
                          "10-stackwright-eth1.101.network", "10-stackwright-eth1.101.netdev",
                          "10-stackwright-eth2.network", "10-stackwright-eth3.network",
                          "10-stackwright-bond0.network", "10-stackwright-bond0.netdev",
                          "10-stackwright-storage.network", "ovs-bridges.json"}


def test_default_route_through_the_api_gateway(tmp_path):
    files = stage(tmp_path, "fuel-bonded.yml", "node1")
    assert "Gateway=172.16.0.1" in body(files["10-stackwright-public.network"])
    assert not any("Gateway=" in text for name, text in files.items() if name != "10-stackwright-public.network")


def test_files_of_links_that_are_gone_are_dropped(tmp_path):
    out = tmp_path / "shared-stage"
    assert "10-stackwright-bond0.netdev" in stage(tmp_path, "fuel-bonded.yml", "node3", out)
    # node2 has no Linux bond: staged over node3's files, the bond's go
    files = stage(tmp_path, "fuel-bonded.yml", "node2", out)
    assert "10-stackwright-bond0.netdev" not in files and "10-stackwright-bond0.network" not in files
    assert "10-stackwright-eth1.101.netdev" in files
