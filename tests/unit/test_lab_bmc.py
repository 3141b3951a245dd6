"""The lab's simulated BMCs: where they answer and who gets in (their
config as rendered; test_lab_fence.py runs them)."""

from __future__ import annotations

from pathlib import Path

from stackwright.lab import Lab, bmc
from stackwright.loader import load

MULTINODE = load(Path(__file__).resolve().parents[2] / "inventories" / "multinode.yml")


def test_fenced_nodes_get_a_bmc_on_the_lab_hosts_management_address():
    assert [n.name for n in bmc.fenced(MULTINODE)] == ["cmp1", "cmp2"]
    assert bmc.problems(MULTINODE) == []
    conf = bmc._lan_conf(Lab(MULTINODE), MULTINODE.node("cmp2"), "Secret0123456789")
    assert "    addr 10.52.0.254 6232\n" in conf
    # the fence user only, with its password; no anonymous user 1
    assert [line.split()[1] for line in conf.splitlines() if line.strip().startswith("user ")] == ["2"]
    assert '  user 2 true "fence" "Secret0123456789" admin 10 md5\n' in conf
    assert "stackwright.lab.chassis" in conf and " cmp2\"" in conf


def test_a_fence_address_the_lab_cannot_serve_is_named():
    node = MULTINODE.node("cmp1")
    moved = node.model_copy(update={"fence": node.fence.model_copy(update={"address": "10.52.0.9"})})
    inv = MULTINODE.model_copy(update={"nodes": [moved if n.name == "cmp1" else n for n in MULTINODE.nodes]})
    assert bmc.problems(inv) == ["node cmp1: fence address 10.52.0.9 is not the lab host's management address "
                                 "10.52.0.254, where the lab's BMCs answer"]
