"""render: a standard Ansible inventory, byte-for-byte stable."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from stackwright.loader import load
from stackwright.render import render, render_files

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "golden"


@pytest.mark.parametrize("name", ["aio", "multinode", "ha", "fuel-bonded"])
def test_render_matches_golden_files(name):
    files = render_files(load(REPO / "inventories" / f"{name}.yml"))
    golden = GOLDEN / name
    expected = {str(p.relative_to(golden)): p.read_text() for p in sorted(golden.rglob("*.yml"))}
    assert files == expected


def test_render_is_deterministic_and_writes_only_changes(tmp_path):
    inv = load(REPO / "inventories" / "multinode.yml")
    first = render(inv, tmp_path / "a")
    assert len(first) == 2 + len(inv.nodes)
    assert render(inv, tmp_path / "a") == []  # nothing changed, nothing written
    render(inv, tmp_path / "b")
    for path in (tmp_path / "a").rglob("*.yml"):
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()


def test_groups_and_host_vars(tmp_path):
    inv = load(REPO / "inventories" / "multinode.yml")
    render(inv, tmp_path)
    hosts = yaml.safe_load((tmp_path / "hosts.yml").read_text())["all"]["children"]
    assert set(hosts["compute"]["hosts"]) == {"cmp1", "cmp2"}
    assert set(hosts["network"]["hosts"]) == {"net1"}
    assert set(hosts["keystone"]["children"]) == {"controller"}
    net1 = yaml.safe_load((tmp_path / "host_vars" / "net1.yml").read_text())
    assert net1["ansible_host"] == "10.52.0.21"
    assert net1["stackwright_external_address"] == "10.55.0.21"
    assert net1["stackwright_api_address"] is None
    group_vars = yaml.safe_load((tmp_path / "group_vars" / "all.yml").read_text())
    assert group_vars["stackwright_internal_endpoint_host"] == "10.52.0.11"
    assert group_vars["stackwright_public_endpoint_host"] == "10.53.0.11"


def test_ansible_accepts_the_rendered_inventory(tmp_path):
    inv = load(REPO / "inventories" / "multinode.yml")
    render(inv, tmp_path)
    exe = shutil.which("ansible-inventory", path=str(Path(sys.executable).parent))
    assert exe, "ansible-inventory is installed with stackwright"
    graph = subprocess.run([exe, "-i", str(tmp_path), "--graph"], capture_output=True, text=True, check=True).stdout
    for line in ("@controller:", "|--ctl1", "@rabbitmq:", "@compute:", "|--cmp2"):
        assert line in graph
    host = subprocess.run([exe, "-i", str(tmp_path), "--host", "cmp1"], capture_output=True, text=True,
                          check=True).stdout
    assert '"stackwright_tenant_address": "10.54.0.31"' in host
