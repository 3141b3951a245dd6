"""Nova's and Neutron's config files as the roles build them from each
inventory (the roles' own defaults and vars, rendered by Ansible with the
shared to_ini filter, locally): ML2 drivers and ranges, bridge mappings,
tunnel endpoints, which agent files each node gets, the transport URL over
every broker."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackwright import secrets as secrets_mod
from stackwright.loader import load
from stackwright.render import render

REPO = Path(__file__).resolve().parents[2]

PLAY = """
- hosts: all
  gather_facts: false
  vars_files:
    - {role}/defaults/main.yml
    - {role}/vars/main.yml
  tasks:
    - name: Directory
      ansible.builtin.file:
        path: "{{{{ out }}}}/{{{{ inventory_hostname }}}}"
        state: directory
        mode: "0700"
      delegate_to: localhost
    - name: Render
      ansible.builtin.copy:
        content: "{{{{ (item.content if item.content is defined else _neutron_file_contents[item.conf]) | to_ini }}}}"
        dest: "{{{{ out }}}}/{{{{ inventory_hostname }}}}/{{{{ item.path | basename }}}}"
        mode: "0600"
      loop: {files}
      delegate_to: localhost
"""


Configs = dict[str, dict[str, configparser.ConfigParser]]


def render_configs(tmp_path: Path, inventory: str, role: str, files: str) -> Configs:
    inv_dir = tmp_path / "inventory"
    render(load(REPO / "inventories" / inventory), inv_dir)
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps(secrets_mod.generate()))
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAY.format(role=REPO / "roles" / role, files=files))
    out = tmp_path / "out"
    args = [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inv_dir),
            "-e", f"@{secrets}", "-e", f"out={out}", "-e", "_nova_virt_type=qemu",
            "-e", f"ansible_python_interpreter={sys.executable}", str(playbook)]
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_ROLES_PATH=str(REPO / "roles"),
               ANSIBLE_FILTER_PLUGINS=str(REPO / "plugins" / "filter"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"))
    result = subprocess.run(args, capture_output=True, text=True, env=env, check=False, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    configs: dict[str, dict[str, configparser.ConfigParser]] = {}
    for host_dir in sorted(out.iterdir()):
        for f in sorted(host_dir.iterdir()):
            cp = configparser.ConfigParser(interpolation=None)
            cp.read_string(f.read_text())
            configs.setdefault(host_dir.name, {})[f.name] = cp
    return configs


NEUTRON_FILES = "\"{{ _neutron_files | selectattr('when') | list }}\""


@pytest.fixture(scope="module")
def multinode(tmp_path_factory: pytest.TempPathFactory) -> Configs:
    return render_configs(tmp_path_factory.mktemp("mn"), "multinode.yml", "neutron", NEUTRON_FILES)


@pytest.fixture(scope="module")
def fuel(tmp_path_factory: pytest.TempPathFactory) -> Configs:
    return render_configs(tmp_path_factory.mktemp("fuel"), "fuel-bonded.yml", "neutron", NEUTRON_FILES)


def test_each_node_gets_only_its_files(multinode):
    assert set(multinode["ctl1"]) == {"neutron.conf", "ml2_conf.ini"}
    assert set(multinode["net1"]) == {"neutron.conf", "openvswitch_agent.ini", "l3_agent.ini", "dhcp_agent.ini",
                                      "metadata_agent.ini"}
    assert set(multinode["cmp1"]) == {"neutron.conf", "openvswitch_agent.ini"}
    assert set(multinode["sto1"]) == {"neutron.conf"}


def test_server_settings_only_on_the_server(multinode):
    assert multinode["ctl1"]["neutron.conf"]["database"]["connection"].startswith("mysql+pymysql://neutron:")
    assert not multinode["net1"]["neutron.conf"].has_section("database")
    assert not multinode["cmp1"]["neutron.conf"].has_section("keystone_authtoken")


def test_ml2_with_vxlan_tenant_networks_and_a_flat_external_network(multinode):
    ml2 = multinode["ctl1"]["ml2_conf.ini"]
    assert ml2["ml2"]["type_drivers"] == "flat,vlan,vxlan,gre"
    assert ml2["ml2"]["tenant_network_types"] == "vxlan"
    assert ml2["ml2"]["mechanism_drivers"] == "openvswitch,l2population"
    assert ml2["ml2_type_flat"]["flat_networks"] == "external"
    assert not ml2.has_option("ml2_type_vlan", "network_vlan_ranges")


def test_tunnel_endpoint_and_bridge_mappings_per_node(multinode):
    net1 = multinode["net1"]["openvswitch_agent.ini"]
    assert net1["ovs"]["local_ip"] == "10.54.0.21"
    assert net1["ovs"]["bridge_mappings"] == "external:br-ex"
    assert net1["agent"]["tunnel_types"] == "vxlan"
    assert net1["securitygroup"]["firewall_driver"] == "openvswitch"
    cmp1 = multinode["cmp1"]["openvswitch_agent.ini"]
    assert cmp1["ovs"]["local_ip"] == "10.54.0.31"
    assert not cmp1.has_option("ovs", "bridge_mappings")  # no external network on compute nodes
    assert cmp1["ovs"]["datapath_type"] == "system"


@pytest.mark.parametrize("role", ["neutron", "cinder", "heat"])
def test_quorum_queues_only_with_several_brokers(tmp_path, role):
    """Quorum queues with three brokers; one broker keeps oslo's default
    (no section: a declared queue's type cannot change)."""
    conf = {"neutron": "_neutron_conf", "cinder": "_cinder_conf", "heat": "_heat_conf"}[role]
    files = f"[{{path: {role}.conf, content: \"{{{{ {conf} }}}}\"}}]"
    for inventory, quorum in (("ha.yml", True), ("multinode.yml", False)):
        configs = render_configs(tmp_path / inventory, inventory, role, files)
        for host, found in configs.items():
            if quorum:
                assert found[f"{role}.conf"]["oslo_messaging_rabbit"]["rabbit_quorum_queue"] == "true", host
            else:
                assert not found[f"{role}.conf"].has_section("oslo_messaging_rabbit"), host


def test_ha_routers_and_two_dhcp_agents_with_several_gateways(tmp_path, multinode):
    ha = render_configs(tmp_path, "ha.yml", "neutron", NEUTRON_FILES)
    server = ha["ctl1"]["neutron.conf"]["DEFAULT"]
    assert (server["l3_ha"], server["max_l3_agents_per_router"], server["dhcp_agents_per_network"]) == (
        "true", "2", "2")
    one = multinode["ctl1"]["neutron.conf"]["DEFAULT"]
    assert (one["l3_ha"], one["dhcp_agents_per_network"]) == ("false", "1")
    assert not one.get("max_l3_agents_per_router")


def test_metadata_agent_points_at_nova(multinode):
    md = multinode["net1"]["metadata_agent.ini"]["DEFAULT"]
    assert md["nova_metadata_host"] == "10.52.0.11"
    assert len(md["metadata_proxy_shared_secret"]) >= 16


def test_vlan_tenant_networks_on_a_bond_bridge(fuel):
    ml2 = next(f["ml2_conf.ini"] for f in fuel.values() if "ml2_conf.ini" in f)
    assert ml2["ml2"]["tenant_network_types"] == "vlan"
    # the tagged external network's physnet (its tag is the segment) and the tenant range
    assert ml2["ml2_type_vlan"]["network_vlan_ranges"] == "external,physnet1:1000:1030"
    agents = [f["openvswitch_agent.ini"] for f in fuel.values() if "openvswitch_agent.ini" in f]
    assert agents
    for agent in agents:
        assert "physnet1:br-physnet1" in agent["ovs"]["bridge_mappings"].split(",")
        assert not agent.has_option("ovs", "local_ip")  # VLANs: no tunnels
        assert not agent.has_option("agent", "tunnel_types")


def test_nova_transport_url_lists_every_broker(tmp_path):
    configs = render_configs(tmp_path, "ha.yml", "nova",
                             "[{path: nova.conf, content: \"{{ _nova_conf }}\"}, "
                             "{path: nova-compute.conf, content: \"{{ _nova_compute_conf }}\"}]")
    _host, files = next(iter(configs.items()))
    url = files["nova.conf"]["DEFAULT"]["transport_url"]
    assert url.startswith("rabbit://openstack:") and url.endswith("/")
    assert url.count("@") == 3 and url.count(":5672") == 3
    # three brokers: the queues are quorum queues (replicated by Raft)
    assert files["nova.conf"]["oslo_messaging_rabbit"]["rabbit_quorum_queue"] == "true"
    compute = files["nova-compute.conf"]
    assert compute["libvirt"]["virt_type"] == "qemu" and compute["libvirt"]["cpu_mode"] == "none"
    # live migration over libvirt's TLS listener, the stream in QEMU's TLS
    assert compute["libvirt"]["live_migration_scheme"] == "tls"
    assert compute["libvirt"]["live_migration_with_native_tls"] in ("true", "True", True)


@pytest.mark.parametrize(("inventory", "rbd"), [("multinode.yml", True), ("two-node.yml", False)])
def test_instance_disks_in_ceph_when_the_cloud_runs_it(tmp_path, inventory, rbd):
    """With Ceph, Nova keeps instance disks in the vms pool through its own
    client and libvirt secret (not Cinder's); without, on local disk."""
    configs = render_configs(tmp_path, inventory, "nova",
                             "[{path: nova-compute.conf, content: \"{{ _nova_compute_conf }}\"}]")
    _host, files = next(iter(configs.items()))
    libvirt = files["nova-compute.conf"]["libvirt"]
    if rbd:
        wanted = {"images_type": "rbd", "images_rbd_pool": "vms", "rbd_user": "nova",
                  "images_rbd_ceph_conf": "/etc/ceph/ceph.conf", "hw_disk_discard": "unmap"}
        assert {key: libvirt.get(key) for key in wanted} == wanted
        assert len(libvirt["rbd_secret_uuid"]) == 36
    else:
        assert not {"images_type", "rbd_user", "rbd_secret_uuid", "images_rbd_pool"} & set(libvirt)


@pytest.mark.parametrize(("inventory", "same_host"), [("aio.yml", "true"), ("multinode.yml", "false")])
def test_resize_in_place_only_with_one_compute_node(tmp_path, inventory, same_host):
    configs = render_configs(tmp_path, inventory, "nova", "[{path: nova.conf, content: \"{{ _nova_conf }}\"}]")
    for files in configs.values():
        assert files["nova.conf"]["DEFAULT"]["allow_resize_to_same_host"] == same_host


CINDER_FILES = ("[{path: cinder.conf, content: \"{{ _cinder_conf | combine({_cinder_backend_name: "
                "_cinder_backends[cinder_backend]}) }}\"}]")


def test_cinder_lvm_backend_without_ceph(tmp_path):
    """fuel-bonded has no Ceph: LVM + iSCSI, the target on the storage network."""
    configs = render_configs(tmp_path, "fuel-bonded.yml", "cinder", CINDER_FILES)
    conf = configs["node3"]["cinder.conf"]
    assert conf["DEFAULT"]["enabled_backends"] == "lvm-1"
    assert conf["DEFAULT"]["default_volume_type"] == "lvm-1"
    backend = conf["lvm-1"]
    assert backend["volume_driver"] == "cinder.volume.drivers.lvm.LVMVolumeDriver"
    assert backend["volume_group"] == "cinder-volumes"
    assert backend["target_helper"] == "tgtadm" and backend["target_protocol"] == "iscsi"
    assert backend["target_ip_address"] == "192.168.1.13"  # node3's storage address
    assert "rbd-1" not in conf
    assert conf["database"]["connection"].startswith("mysql+pymysql://cinder:")
    assert conf["DEFAULT"]["transport_url"].count(":5672") == 1


def test_cinder_rbd_backend_with_ceph(tmp_path):
    """multinode enables Ceph: the rbd backend with the libvirt secret's UUID."""
    configs = render_configs(tmp_path, "multinode.yml", "cinder", CINDER_FILES)
    conf = configs["sto1"]["cinder.conf"]
    backend = conf["rbd-1"]
    assert backend["volume_driver"] == "cinder.volume.drivers.rbd.RBDDriver"
    assert backend["rbd_pool"] == "volumes" and backend["rbd_user"] == "cinder"
    assert len(backend["rbd_secret_uuid"]) == 36
    # every cinder-volume serves the same pool under one service host
    assert backend["backend_host"] == "rbd"
    assert "lvm-1" not in conf
    # the same file everywhere: the secret UUID is the cloud's, not per node
    assert {c["cinder.conf"]["rbd-1"]["rbd_secret_uuid"] for c in configs.values()} == {backend["rbd_secret_uuid"]}


def test_ceph_conf_for_one_storage_node(tmp_path):
    configs = render_configs(tmp_path, "multinode.yml", "ceph", "[{path: ceph.conf, content: \"{{ _ceph_conf }}\"}]")
    conf = configs["sto1"]["ceph.conf"]
    assert conf["global"]["mon_host"] == "[v2:10.52.0.41:3300,v1:10.52.0.41:6789]"
    assert conf["global"]["mon_initial_members"] == "sto1"
    assert conf["global"]["public_network"] == "10.52.0.0/24"
    # one OSD: one replica, allowed explicitly
    assert conf["global"]["osd_pool_default_size"] == "1"
    assert conf["global"]["mon_allow_pool_size_one"] == "true"
    assert conf["osd"]["bluestore_block_create"] == "true"
    assert len(conf["global"]["fsid"]) == 36
    # clients (compute nodes) get the same file
    assert configs["cmp1"]["ceph.conf"]["global"]["mon_host"] == conf["global"]["mon_host"]


GLANCE_FILES = "[{path: glance-api.conf, content: \"{{ _glance_api_conf }}\"}]"


def test_glance_keeps_images_in_ceph_when_the_cloud_runs_ceph(tmp_path):
    conf = render_configs(tmp_path, "multinode.yml", "glance", GLANCE_FILES)["ctl1"]["glance-api.conf"]
    assert conf["glance_store"]["default_backend"] == "rbd"
    # the file store stays readable: images uploaded before Ceph keep working
    assert [b.strip() for b in conf["DEFAULT"]["enabled_backends"].split(",")] == ["rbd:rbd", "file:file"]
    assert conf["rbd"]["rbd_store_pool"] == "images" and conf["rbd"]["rbd_store_user"] == "glance"
    assert conf["DEFAULT"]["show_image_direct_url"] == "true"  # Cinder clones from the image's location


def test_glance_file_store_without_ceph(tmp_path):
    conf = render_configs(tmp_path, "fuel-bonded.yml", "glance", GLANCE_FILES)["node1"]["glance-api.conf"]
    assert conf["glance_store"]["default_backend"] == "file"
    assert conf["DEFAULT"]["enabled_backends"] == "file:file"
    assert not conf.has_section("rbd")
    assert conf["DEFAULT"]["show_image_direct_url"] == "false"
    assert conf["file"]["filesystem_store_datadir"] == "/var/lib/glance/images/"
