"""plan, init, schema: what an operator sees before deploying."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackwright.loader import load
from stackwright.main import cli
from stackwright.plan import build

INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def node(plan: dict, name: str) -> dict:
    return next(n for n in plan["nodes"] if n["name"] == name)


def test_fuel_bond_chain_and_bridges():
    plan = build(load(INVENTORIES / "fuel-bonded.yml"))
    n1 = node(plan, "node1")
    assert n1["ssh"] == "root@10.20.0.11:22" and n1["ssh_via"] == "eth0"
    chains = {link["network"]: link["chain"] for link in n1["links"]}
    assert chains["storage"] == ("eth2+eth3 -> bond0 (ovs balance-tcp lacp=active) -> br-bond0 -> vlan 102 "
                                 "-> storage 192.168.1.11/24 mtu 1500")
    assert chains["private"] == ("eth2+eth3 -> bond0 (ovs balance-tcp lacp=active) -> br-bond0 -> patch -> "
                                 "br-physnet1 -> private (no address) mtu 1500")
    assert chains["management"] == ("eth1 -> br-ex -> vlan 101 -> management 192.168.0.11/24 on management "
                                    "mtu 1500").replace(" on management", "")
    assert n1["ovs_bridges"]["br-bond0"] == ["bond0 (bond eth2+eth3 balance-tcp lacp=active)", "patch to br-physnet1",
                                             "storage (internal port, tag 102)"]
    assert n1["ovs_bridges"]["br-physnet1"] == ["patch to br-bond0"]
    assert n1["ovs_bridges"]["br-ex"] == ["eth1", "management (internal port, tag 101)", "public (internal port)"]
    assert "br-tun" not in n1["ovs_bridges"]  # vlan tenant networks need no tunnels
    n3 = node(plan, "node3")
    bond = next(link["bond"] for link in n3["links"] if link["network"] == "storage")
    assert bond == {"name": "bond0", "provider": "linux", "members": ["eth2", "eth3"], "mode": "802.3ad",
                    "miimon": 100, "lacp_rate": "fast", "xmit_hash_policy": "layer3+4"}
    # a Linux bond carrying a provider network is a port of the provider bridge
    assert n3["ovs_bridges"]["br-physnet1"] == ["bond0", "storage (internal port, tag 102)"]
    n2 = node(plan, "node2")
    assert next(lk["chain"] for lk in n2["links"] if lk["network"] == "management") == (
        "eth1 -> vlan 101 -> management 192.168.0.12/24 on eth1.101 mtu 1500")


def test_lab_plan_builds_linux_bonds_and_vlans_with_ovs():
    from stackwright.lab import adapt

    plan = build(adapt(load(INVENTORIES / "fuel-bonded.yml")))
    n3 = node(plan, "node3")
    assert n3["ovs_bridges"]["br-bond0"] == ["bond0 (bond eth2+eth3 balance-tcp lacp=active)", "patch to br-physnet1",
                                             "storage (internal port, tag 102)"]
    assert n3["ovs_bridges"]["br-eth1"] == ["eth1", "management (internal port, tag 101)"]
    assert {lk["name"] for lk in n3["layout"]["links"] if lk["kind"] == "ovs-internal"} == {"management", "storage"}
    multi = build(adapt(load(INVENTORIES / "multinode.yml")))
    # userspace tunnelling: the VXLAN endpoint address sits on an OVS port
    assert node(multi, "cmp1")["ovs_bridges"]["br-eth1"] == ["eth1", "tenant (internal port)"]


def test_scheme_one_puts_agents_on_the_controller_and_scheme_two_does_not():
    aio = build(load(INVENTORIES / "aio.yml"))
    assert "neutron-l3-agent" in node(aio, "aio1")["services"]
    multi = build(load(INVENTORIES / "multinode.yml"))
    assert "neutron-l3-agent" not in node(multi, "ctl1")["services"]
    assert "neutron-l3-agent" in node(multi, "net1")["services"]
    assert node(multi, "net1")["ovs_bridges"]["br-ex"] == ["eth2", "external (internal port)"]
    assert "vxlan tunnel endpoint (br-tun)" in node(multi, "cmp1")["links"][1]["chain"]
    assert multi["totals"] == {"controller": 1, "network": 1, "compute": 2, "storage": 1}


def test_ceph_daemons_go_where_the_playbooks_put_them():
    multi = build(load(INVENTORIES / "multinode.yml"))  # services.ceph, one storage node
    assert {"ceph-mon", "ceph-mgr", "ceph-osd", "cinder-volume"} <= set(node(multi, "sto1")["services"])
    assert not {"ceph-mon", "ceph-osd"} & set(node(multi, "ctl1")["services"])
    assert {"cinder-api", "cinder-scheduler", "apache2"} <= set(node(multi, "ctl1")["services"])
    fuel = build(load(INVENTORIES / "fuel-bonded.yml"))  # no Ceph: LVM backend
    assert "cinder-volume" in node(fuel, "node3")["services"]
    assert not any(s.startswith("ceph-") for n in fuel["nodes"] for s in n["services"])


def test_ha_plan_shows_the_cluster():
    """Three controllers: plan shows them with the VIPs and the cluster that
    holds them (HAProxy, corosync and pacemaker on each; the cluster's
    layout); the compute nodes run none of it."""
    result = invoke("plan", "--format", "json", str(INVENTORIES / "ha.yml"))
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output[result.output.index("{"):])
    assert plan["endpoints"] == {"internal": "10.62.0.10", "public": "10.63.0.10", "tls": True}
    assert {"haproxy", "corosync", "pacemaker", "cinder-api", "neutron-l3-agent"} <= set(node(plan, "ctl2")["services"])
    assert not {"haproxy", "pacemaker", "mariadb"} & set(node(plan, "cmp1")["services"])
    assert plan["left_out"] == {}
    # the cluster's layout: members with their fence devices, VIPs,
    # database order, brokers, and what HAProxy serves to whom
    c = plan["cluster"]
    assert [(m["name"], m["corosync"], m["fence"]) for m in c["members"]] == [
        (f"ctl{i}", f"10.62.0.1{i}", f"fence_ipmilan admin@10.62.0.254:623{i}") for i in (1, 2, 3)]
    assert c["quorum"] == 2
    assert c["vips"] == [{"name": "internal", "address": "10.62.0.10", "network": "mgmt"},
                         {"name": "public", "address": "10.63.0.10", "network": "api"}]
    assert c["database"] == c["brokers"] == ["ctl1", "ctl2", "ctl3"]
    served = {f["name"]: (f["port"], f["public"], f["backends"]) for f in c["frontends"]}
    assert served["mariadb"] == (3306, False, ["ctl1", "ctl2", "ctl3"])
    assert served["keystone"] == (5000, True, ["ctl1", "ctl2", "ctl3"])
    assert served["cinder"] == (8776, True, ["ctl1", "ctl2", "ctl3"])
    text = invoke("plan", str(INVENTORIES / "ha.yml")).output
    assert "cluster: 3 members (pacemaker, corosync, HAProxy); a partition of 2 or more keeps" in " ".join(text.split())
    assert "database: Galera on ctl1, ctl2, ctl3; through HAProxy ctl1" in " ".join(text.split())
    # one controller, no VIP: no cluster
    assert build(load(INVENTORIES / "multinode.yml"))["cluster"] is None


def test_plan_says_what_a_cloud_without_storage_goes_without(tmp_path):
    """The seeds' first layout (controller+network, compute, no storage
    node): plan lists no Cinder process and says why."""
    text = (INVENTORIES / "multinode.yml").read_text()
    inv = tmp_path / "nostorage.yml"
    inv.write_text(text[:text.index("  - name: sto1")].replace("ceph: true", "ceph: false"))
    result = invoke("plan", str(inv))
    assert result.exit_code == 0, result.output
    assert "left out: cinder: no node has the storage role, so there is no volume backend" in result.output
    assert "cinder" not in result.output.split("left out:")[0]


def test_plan_text_and_json():
    text = invoke("plan", str(INVENTORIES / "multinode.yml"))
    assert text.exit_code == 0
    assert "net1 (network) - ssh root@10.52.0.21:22 via eth0" in text.output
    assert "eth2 -> br-ex -> external 10.55.0.21/24 mtu 1500" in text.output
    assert "br-ex: eth2, external (internal port)" in text.output
    as_json = invoke("plan", "--format", "json", str(INVENTORIES / "multinode.yml"))
    assert json.loads(as_json.output)["totals"]["compute"] == 2


def test_plan_refuses_invalid_input(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text((INVENTORIES / "aio.yml").read_text().replace("10.42.0.11", "10.42.9.11"))
    result = invoke("plan", str(bad))
    assert result.exit_code == 2
    assert "10.42.9.11 is outside network 'mgmt'" in result.output


def test_diagram_dot_and_svg(tmp_path):
    result = invoke("plan", str(INVENTORIES / "fuel-bonded.yml"), "--diagram", str(tmp_path / "t.dot"))
    assert result.exit_code == 0
    dot = (tmp_path / "t.dot").read_text()
    assert '"node1:bond:bond0" -- "node1:br:br-bond0"' in dot
    assert '"node1:br:br-bond0" -- "node1:br:br-physnet1"' in dot
    assert '"node1:nic:eth0" -- "net:admin"' in dot
    if shutil.which("dot") is None:
        pytest.skip("Graphviz dot not installed")
    invoke("plan", str(INVENTORIES / "fuel-bonded.yml"), "--diagram", str(tmp_path / "t.svg"))
    svg = (tmp_path / "t.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "br&#45;bond0" in svg


@pytest.mark.parametrize("topology", ["aio", "multinode", "bonded"])
def test_init_writes_a_valid_inventory_and_never_overwrites(tmp_path, topology):
    target = tmp_path / "mine.yml"
    assert invoke("init", "--topology", topology, "-o", str(target)).exit_code == 0
    assert invoke("validate", str(target)).exit_code == 0
    target.write_text("# my edits\n")
    again = invoke("init", "--topology", topology, "-o", str(target))
    assert again.exit_code == 1
    assert "already exists; it was left unchanged" in again.output
    assert target.read_text() == "# my edits\n"


def test_init_offers_no_topology_that_cannot_be_deployed(tmp_path):
    result = CliRunner().invoke(cli, ["init", "--topology", "ha", "-o", str(tmp_path / "ha.yml")])
    assert result.exit_code == 2
    assert "'ha' is not one of 'aio', 'bonded', 'multinode'" in result.output


def test_schema_is_json_schema_with_the_model():
    doc = json.loads(invoke("schema").output)
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(doc["required"]) == {"cloud", "networks", "nodes"}
    assert "Bond" in doc["$defs"] and doc["$defs"]["Bond"]["additionalProperties"] is False
