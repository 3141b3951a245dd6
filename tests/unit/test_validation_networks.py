"""Error classes of the network model in depth (bonds, VLANs, MTU, tenant
and external types, floating IPs, HA, services), on the Fuel-style and HA
example inventories."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackwright.loader import load_problems

INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"
FUEL = (INVENTORIES / "fuel-bonded.yml").read_text()
HA = (INVENTORIES / "ha.yml").read_text()


def check(tmp_path: Path, text: str):
    path = tmp_path / "inv.yml"
    path.write_text(text)
    inv, problems = load_problems(path)
    return inv, [p.render("inv.yml") for p in problems]


def test_fuel_example_is_valid_and_warned_of_lvm():
    inv, problems = load_problems(INVENTORIES / "fuel-bonded.yml")
    assert inv is not None, [p.render("fuel-bonded.yml") for p in problems]
    assert [p.render("fuel-bonded.yml") for p in problems] == [
        "fuel-bonded.yml:9: warning: cloud.services.ceph: storage nodes without Ceph: cinder-volume uses LVM over "
        "iSCSI, and the deploy stops on a storage node that has no volume group cinder-volumes (node3)\n"
        "    fix: create it on the disks Cinder may use (vgcreate cinder-volumes /dev/sdX), or set "
        "`services.ceph: true`"]


def test_ha_example_is_deployable_and_needs_ceph(tmp_path: Path):
    inv, problems = load_problems(INVENTORIES / "ha.yml")
    assert inv is not None, [p.render("ha.yml") for p in problems]
    assert not [p for p in problems if p.severity == "error"]
    _, errors = check(tmp_path, HA.replace("    ceph: true\n", "    ceph: false\n"))
    assert [e for e in errors if "error" in e.split("\n")[0]] == [
        "inv.yml:31: error: cloud.services.ceph: 3 controllers share Glance's images only through Ceph: with "
        "Glance's file store an image lives on the one controller that took the upload, and the others answer "
        "'no associated data' (Glance's Swift store is not deployable yet)\n"
        "    fix: set `ceph: true` under `services:` and give a node the storage role"]


def test_ha_controllers_need_fence_devices(tmp_path: Path):
    """Pacemaker runs with fencing on: a controller without a BMC is refused,
    naming the node and what to add."""
    text = (INVENTORIES / "ha.yml").read_text()
    line = "    fence: {agent: ipmilan, address: 10.62.0.254, port: 6232, username: admin}\n"
    assert line in text
    path = tmp_path / "ha.yml"
    path.write_text(text.replace(line, ""))
    _, problems = load_problems(path)
    errors = [p for p in problems if p.severity == "error" and not p.not_yet]
    assert [(p.path, p.message.split(":")[0]) for p in errors] == [
        (("nodes", 1), "controller ctl2 has no fence device")]
    assert "fence_password_ctl2" in errors[0].fix


# (id, base, old, new, expected severity, expected substrings)
CASES = [
    ("tenant vlan without range", FUEL, '    vlan_range: "1000:1030"\n', "", "error",
     ["networks[4].vlan_range: a tenant network of type vlan needs the VLAN ids", "add `vlan_range: START:END`"]),
    ("invalid vlan range", FUEL, '"1000:1030"', '"1030:1000"', "error",
     ["'1030:1000' is not a valid VLAN range"]),
    ("vlan range on a vxlan network", HA, "    type: vxlan\n", '    type: vxlan\n    vlan_range: "1:9"\n', "error",
     ["`vlan_range` only applies to tenant networks of type vlan"]),
    ("type on a management network", HA, "    role: management\n", "    role: management\n    type: vlan\n",
     "error", ["`type` does not apply to a management network"]),
    ("external network as vxlan", HA, "    role: external\n", "    role: external\n    type: vxlan\n", "error",
     ["an external network cannot be vxlan", "use flat or vlan"]),
    ("external vlan without tag", FUEL, "    type: vlan\n    vlan: 103\n", "    type: vlan\n", "error",
     ["an external network of type vlan needs its VLAN id"]),
    ("physnet on vxlan", HA, "    type: vxlan\n", "    type: vxlan\n    physnet: physnet1\n", "error",
     ["`physnet` does not apply to a vxlan network"]),
    ("floating range outside", HA, "end: 10.65.0.199}", "end: 10.66.0.9}", "error",
     ["10.65.0.100-10.66.0.9 is not inside the network 10.65.0.0/24"]),
    ("floating range reversed", HA, "{start: 10.65.0.100, end: 10.65.0.199}",
     "{start: 10.65.0.199, end: 10.65.0.100}", "error", ["start 10.65.0.199 is after end 10.65.0.100"]),
    ("floating range with gateway", HA, "{start: 10.65.0.100,", "{start: 10.65.0.1,", "error",
     ["the range includes the gateway 10.65.0.1"]),
    ("floating range with node address", HA, "      external: {interface: eth2}\n  - name: ctl2",
     "      external: {interface: eth2, address: 10.65.0.150}\n  - name: ctl2", "error",
     ["the range includes 10.65.0.150, the address of node 'ctl1'"]),
    ("floating range on tenant", HA, "    type: vxlan\n",
     "    type: vxlan\n    floating_range: {start: 10.64.0.100, end: 10.64.0.120}\n", "error",
     ["floating IPs come from the external network"]),
    ("lacp on linux bond", FUEL, "        miimon: 100\n", "        miimon: 100\n        lacp: active\n", "error",
     ["`lacp` is for OVS bonds", "use `mode: 802.3ad`"]),
    ("lacp_rate without 802.3ad", FUEL, "        mode: 802.3ad\n", "        mode: balance-xor\n", "error",
     ["`lacp_rate` only applies to mode 802.3ad (4)"]),
    ("linux option on ovs bond", FUEL, "provider: ovs, mode: balance-tcp, lacp: active}",
     "provider: ovs, mode: balance-tcp, lacp: active, miimon: 100}", "error",
     ["`miimon` is for Linux bonds, not OVS bonds"]),
    ("balance-tcp without lacp", FUEL, "provider: ovs, mode: balance-tcp, lacp: active}",
     "provider: ovs, mode: balance-tcp}", "error", ["OVS balance-tcp needs LACP"]),
    ("invalid linux bond mode", FUEL, "        mode: 802.3ad\n", "        mode: 9\n", "error",
     ["'9' is not a linux bond mode", "(or 0-6)"]),
    ("invalid ovs bond mode", FUEL, "mode: balance-tcp, lacp: active}", "mode: balance-rr, lacp: active}", "error",
     ["'balance-rr' is not a ovs bond mode"]),
    ("network MTU above its NIC", FUEL, "nics: [{name: eth0}, {name: eth1}, {name: eth2}, {name: eth3}]\n    bonds:\n"
     "      - {name: bond0, members: [eth2, eth3], provider: ovs, mode: balance-tcp, lacp: active}\n    networks:\n"
     "      admin:      {interface: eth0, address: 10.20.0.12}",
     "nics: [{name: eth0, mtu: 1400}, {name: eth1}, {name: eth2}, {name: eth3}]\n    bonds:\n"
     "      - {name: bond0, members: [eth2, eth3], provider: ovs, mode: balance-tcp, lacp: active}\n    networks:\n"
     "      admin:      {interface: eth0, address: 10.20.0.12}", "error",
     ["network 'admin' has MTU 1500 but 'eth0' only 1400"]),
    ("VLAN MTU above its bond", FUEL, "provider: ovs, mode: balance-tcp, lacp: active}\n    networks:\n"
     "      admin:      {interface: eth0, address: 10.20.0.12}",
     "provider: ovs, mode: balance-tcp, lacp: active, mtu: 1000}\n    networks:\n"
     "      admin:      {interface: eth0, address: 10.20.0.12}", "error",
     ["VLAN 'storage' has MTU 1500 but 'bond0' only 1000"]),
    ("bond MTU above a member", FUEL, "nics: [{name: eth0}, {name: eth1}, {name: eth2}, {name: eth3}]\n    bonds:\n"
     "      - {name: bond0, members: [eth2, eth3], provider: ovs, mode: balance-tcp, lacp: active}\n    networks:\n"
     "      admin:      {interface: eth0, address: 10.20.0.12}",
     "nics: [{name: eth0}, {name: eth1}, {name: eth2, mtu: 1500}, {name: eth3}]\n    bonds:\n"
     "      - {name: bond0, members: [eth2, eth3], provider: ovs, mode: balance-tcp, lacp: active, mtu: 9000}\n"
     "    networks:\n      admin:      {interface: eth0, address: 10.20.0.12}", "error",
     ["bond MTU 9000 exceeds the MTU 1500 of its member 'eth2'"]),
    ("tunnel overhead", HA, "    type: vxlan\n", "    type: vxlan\n    instance_mtu: 1500\n", "warning",
     ["instances cannot get MTU 1500: vxlan takes 50 bytes of the underlay's 1500",
      "raise the network's `mtu` to 1550"]),
    ("same VLAN twice on one interface", FUEL, "    type: vlan\n    vlan: 103\n",
     "    type: vlan\n    vlan: 101\n", "error",
     ["VLAN 101 on 'eth1' already carries network 'management'"]),
    ("VLAN inside the tenant range", FUEL, "    cidr: 192.168.1.0/24\n    vlan: 102\n",
     "    cidr: 192.168.1.0/24\n    vlan: 1010\n", "error",
     ["VLAN 1010 of 'storage' lies in the tenant VLAN range 1000:1030 on the same interface 'bond0'"]),
    ("missing address on a tunnel network", HA, "      tenant: {interface: eth1, address: 10.64.0.32}",
     "      tenant: {interface: eth1}", "error",
     ["no address for node 'cmp2' on tenant network 'tenant'"]),
    ("two controllers", HA, "  - name: ctl3\n    roles: [controller, network]", "  - name: ctl3\n    roles: [network]",
     "error", ["2 controllers: a highly available control plane needs an odd number, at least 3"]),
    ("HA without public VIP", HA, "  public_vip: 10.63.0.10\n", "", "error",
     ["several controllers need a public virtual IP on the api network"]),
    ("VIP used by a node", HA, "internal_vip: 10.62.0.10", "internal_vip: 10.62.0.12", "error",
     ["10.62.0.12 is already the address of node 'ctl2'"]),
    ("public VIP outside the api network", HA, "public_vip: 10.63.0.10", "public_vip: 10.62.0.9", "error",
     ["10.62.0.9 is outside the api network 'api' (10.63.0.0/24)"]),
    ("TLS key without its certificate", HA, "  tls: true\n", "  tls: true\n  tls_key: public.key\n", "error",
     ["cloud.tls_certificate: the certificate and its key go together"]),
    ("TLS file without TLS", HA, "  tls: true\n", "  tls: false\n  tls_ca: ca.pem\n", "error",
     ["cloud.tls_ca: is set but `tls:` is not true, so nothing would use it"]),
    ("two admin networks", FUEL, "  - name: management\n    role: management\n",
     "  - name: admin2\n    role: admin\n    cidr: 10.21.0.0/24\n  - name: management\n    role: management\n",
     "error", ["only one admin network is supported"]),
    ("unknown datapath", HA, "  domain: ha.stackwright.test\n", "  domain: ha.stackwright.test\n  ovs_datapath: dpdk\n",
     "error", ["'dpdk' is not allowed", "'system' or 'netdev'"]),
]


@pytest.mark.parametrize(("base", "old", "new", "severity", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_error_class(tmp_path, base, old, new, severity, expected):
    assert old in base, old
    _, found = check(tmp_path, base.replace(old, new, 1))
    relevant = [f for f in found if f": {severity}: " in f]
    joined = "\n".join(relevant)
    for text in expected:
        assert text in joined, "\n".join(found)


def test_ceph_without_storage_nodes(tmp_path):
    _, found = check(tmp_path, HA.replace("    roles: [compute, storage]\n", "    roles: [compute]\n"))
    assert any(": error: " in f and "ceph needs nodes with the storage role" in f for f in found), found
