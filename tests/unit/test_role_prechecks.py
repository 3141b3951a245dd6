"""Negative role tests: missing or wrong input fails early, with the message
the role's precheck promises, before anything changes (run in check mode
against this machine as a local connection, so nothing could change)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stackwright import catalog

REPO = Path(__file__).resolve().parents[2]


def run_role(tmp_path: Path, role: str, extra: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    ghost:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n"
        "  children:\n    controller: {hosts: {ghost: {}}}\n    mariadb: {hosts: {ghost: {}}}\n"
        "    memcached: {hosts: {ghost: {}}}\n    keystone: {hosts: {ghost: {}}}\n    rabbitmq: {hosts: {ghost: {}}}\n"
    )
    playbook = tmp_path / "play.yml"
    playbook.write_text(f"- hosts: all\n  gather_facts: true\n  roles: [{role}]\n")
    args = [str(Path(sys.executable).with_name("ansible-playbook")), "--check", "-i", str(inventory), str(playbook)]
    args += ["-e", json.dumps(extra)]
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_ROLES_PATH=str(REPO / "roles"),
               ANSIBLE_FILTER_PLUGINS=str(REPO / "plugins" / "filter"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"))
    return subprocess.run(args, capture_output=True, text=True, env=env, check=False, timeout=300)


BASE = {"stackwright_management_address": "192.0.2.250", "stackwright_api_address": "192.0.2.251",
        "stackwright_region": "RegionOne", "stackwright_internal_endpoint_host": "192.0.2.250",
        "stackwright_public_endpoint_host": "192.0.2.251", "stackwright_ports": catalog.ports(),
        "stackwright_public_endpoint": "http://192.0.2.251", "stackwright_tls": False,
        "stackwright_api_bind_addresses": ["192.0.2.250", "192.0.2.251"],
        "stackwright_database_host": "192.0.2.250", "stackwright_keystone_internal_url": "http://192.0.2.250:5000",
        "stackwright_memcached_servers": ["192.0.2.250:11211"]}


@pytest.mark.parametrize(
    ("role", "extra", "message"),
    [
        ("keystone", BASE, "Keystone needs keystone_admin_password and keystone_db_password"),
        ("keystone", {**BASE, "keystone_admin_password": "x" * 32, "keystone_db_password": "short"},
         "run `stackwright secrets INVENTORY`"),
        ("rabbitmq", BASE, "RabbitMQ needs rabbitmq_openstack_password and rabbitmq_erlang_cookie"),
        ("host_network", {**BASE, "ansible_host": "192.0.2.9", "stackwright_ovs_bridges": [],
                          "stackwright_ovs_datapath": "system",
                          "stackwright_host_links": [{"name": "eth0", "kind": "ether",
                                                      "addresses": ["192.0.2.10/24"]}]},
         "has no address 192.0.2.9, the address Ansible reaches it at (192.0.2.10)"),
    ],
    ids=["keystone-no-secrets", "keystone-short-secret", "rabbitmq-no-secrets", "host-network-loses-ssh-address"],
)
def test_precheck_fails_early_with_its_message(tmp_path, role, extra, message):
    result = run_role(tmp_path, role, extra)
    assert result.returncode == 2, result.stdout[-2000:]
    out = " ".join(result.stdout.split())
    assert message in out, out[-3000:]
    assert "changed=0" in out
