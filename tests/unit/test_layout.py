"""Host network layout rules that the example inventories do not cover,
and the lab switch's VLAN plan."""

from __future__ import annotations

from pathlib import Path

from stackwright.lab import Lab, adapt, switch_vlans
from stackwright.layout import node_layout
from stackwright.loader import load


def test_two_provider_networks_on_one_nic_share_it_through_a_patch(write_inventory):
    path = write_inventory("""
        cloud: {name: two}
        networks:
          - {name: mgmt, role: management, cidr: 10.1.0.0/24}
          - {name: api, role: api, cidr: 10.2.0.0/24}
          - {name: ext, role: external, cidr: 10.3.0.0/24, gateway: 10.3.0.1}
          - {name: prov, role: tenant, type: vlan, vlan_range: "100:110", cidr: 10.4.0.0/24}
        nodes:
          - name: n1
            roles: [controller, network, compute]
            nics: [{name: eth0}, {name: eth1}]
            networks:
              mgmt: {interface: eth0, address: 10.1.0.11}
              api: {interface: eth0, address: 10.2.0.11}
              ext: {interface: eth1}
              prov: {interface: eth1}
    """)
    inv = load(path)
    lay = node_layout(inv, inv.nodes[0])
    bridges = {b.name: [(p.name, p.type, p.peer) for p in b.ports] for b in lay.bridges}
    assert bridges["br-ex"] == [("eth1", "system", None), ("pt-physnet1", "patch", "pt-ex")]
    assert bridges["br-physnet1"] == [("pt-ex", "patch", "pt-physnet1")]
    assert "br-tun" not in bridges  # no tunnelled tenant network
    assert lay.network_bridge["prov"] == "br-ex -> br-physnet1"
    # no default route: the API network has no gateway, external has no address
    assert all(link.gateway is None for link in lay.links)


def test_lab_switch_vlans_keep_tags_and_give_untagged_segments_free_ids():
    inv = adapt(load(Path(__file__).resolve().parents[2] / "inventories" / "fuel-bonded.yml"))
    vlans = switch_vlans(inv)
    assert vlans["management"] == 101 and vlans["storage"] == 102 and vlans["external"] == 103
    untagged = {vlans["admin"], vlans["public"], vlans["private"]}
    assert len(untagged) == 3  # admin, public and private never share an interface untagged
    assert not untagged & ({101, 102, 103} | set(range(1000, 1031)))
    lab = Lab(inv)
    # node1 eth1: public untagged (native), management and external tagged
    assert lab.wiring.port_vlans(["management", "public", "external"]) == [
        f"tag={vlans['public']}", "vlan_mode=native-untagged",
        "trunks=" + ",".join(str(v) for v in sorted({101, 103, vlans["public"]})),
    ]
    # node2 eth1: management only, tagged -> a trunk port
    assert lab.wiring.port_vlans(["management"]) == ["vlan_mode=trunk", "trunks=101"]
    # the admin NIC: an access port
    assert lab.wiring.port_vlans(["admin"]) == [f"tag={vlans['admin']}", "vlan_mode=access"]
