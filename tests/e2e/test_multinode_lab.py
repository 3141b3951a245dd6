"""End to end on the multinode lab - a controller, a network node, two
compute nodes with (simulated) BMCs and a Ceph storage node: lab up,
deploy, `verify --lifecycle` (the guest answering after every step, a new
boot seen over SSH after the soft reboot), every node's listeners (nothing
on every address but sshd, no UDP but the controller's chrony); then the
day-2 commands as an operator runs them, each
observed from outside through the cloud's API, the guest's console and a
ping through its floating IP:

- a live migration: the guest keeps running (its uptime keeps counting),
  the longest ping gap is printed;
- a cold migration (resize-confirm) back;
- refusals: a move to the node the server is on, an evacuation of a node
  that runs;
- a drain of a node, then enabled again through playbooks/node-enable.yml;
- a power cut through the node's BMC with `node evacuate --fence`: the
  server is ACTIVE on the other node with the disk it had (the marker its
  first boot wrote), and answers ping again;
- `node enable` refused while the node is off, then, powered on, the
  node back in service;
- `stackwright check` fails while the node is dead, naming it, and passes
  once it is back;
- a third compute node written into the inventory joins the running cloud
  (`node add`); a deploy then finds every node as deployed (changed=0:
  neither the power cut nor the new node left anything to put right); the
  new node takes a server; `node remove` refuses while it holds
  it, then moves it away and takes the node out: no service, agent,
  resource provider, host name or SSH trust of it is left.

Uses its own copy of the multinode inventory (cloud `e2emn`, other
subnets), so a lab of the real one is left alone.  Timings are printed,
not asserted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from day2_moves import as_json, back_in_service, evacuate, live_then_cold, refused, watched
from stackwright_cli import assert_listeners, cloud_secrets_leaked, lab_copy, network_report, opt_in_lab, sw

from stackwright import credentials
from stackwright.guest import Pinger, pingable
from stackwright.lab import Lab
from stackwright.loader import load
from stackwright.migrate import MICROVERSION, wait
from stackwright.secrets import read as read_secrets

# The HA end-to-end test covers in CI what this one did there (several
# nodes, live and cold migration, evacuation with fencing, the secret scan);
# the drain, `node add` and `node remove` are this test's alone.
pytestmark = opt_in_lab("STACKWRIGHT_MULTINODE_TEST", "half an hour on this 2-core machine: "
                        "`make multinode-test` runs it")

INVENTORY = Path(__file__).resolve().parents[2] / "inventories" / "multinode.yml"
CMP3 = """
  - name: cmp3
    roles: [compute]
    nics: [{name: eth0}, {name: eth1}]
    networks:
      mgmt:   {interface: eth0, address: 10.82.0.33}
      tenant: {interface: eth1, address: 10.84.0.33}
"""


@pytest.fixture(scope="module")
def mn_lab(tmp_path_factory: pytest.TempPathFactory):
    yield from lab_copy(INVENTORY, "multinode", "e2emn", tmp_path_factory.mktemp("e2emn"),
                        {"10.52.": "10.82.", "10.53.": "10.83.", "10.54.": "10.84.", "10.55.": "10.85."})


def test_multinode_deploy_and_day2_operations(mn_lab: Path):
    timings: dict[str, float] = {}
    path = str(mn_lab)
    start = time.monotonic()
    sw("lab", "up", path)
    sw("deploy", path)
    timings["lab up + deploy"] = time.monotonic() - start
    # verify with what users do to servers every day; across nodes (the
    # router on net1, the guest on a compute node) a soft reboot once left
    # the guest cut off: its network is checked after every step
    start = time.monotonic()
    verify = sw("verify", path, "--lifecycle", check=False, timeout=1800)
    timings["verify --lifecycle"] = time.monotonic() - start
    assert verify.returncode == 0, verify.stdout + verify.stderr + network_report(Lab(load(mn_lab)))
    steps = dict(re.findall(r"^\s*passed (.+?) \((?:[0-9.]+)s\): (.*)$", verify.stdout, re.M))
    assert {"SSH into the guest", "reboot", "suspend and resume", "rescue and unrescue", "resize and confirm",
            "shelve and unshelve", "rebuild"} <= set(steps), verify.stdout
    assert "inside, up" in steps["reboot"] and "a new boot" in steps["reboot"], steps["reboot"]
    for name in ("stop and start", "suspend and resume", "rescue and unrescue", "resize and confirm",
                 "shelve and unshelve", "rebuild"):
        assert steps[name].endswith("answers ping"), (name, steps[name])

    inv = load(mn_lab)
    # on every node: nothing listens on every address but the lab's sshd;
    # over UDP only the controller's time service, on management
    lab = Lab(inv)
    assert_listeners(lab, lambda node: {f"{node.networks['mgmt'].address}:123"} if "controller" in node.roles
                     else set())
    _cloud, conn = credentials.connect(inv, read_secrets(mn_lab.with_name("e2emn.secrets.yml"))
                                       ["keystone_admin_password"], mn_lab)
    conn.compute.default_microversion = MICROVERSION
    with pingable(conn, "day2", "cmp1") as (server, fip):
        mark, pinger = watched(conn, server, fip.floating_ip_address)
        # a live migration to cmp2 and a cold one back to cmp1
        live_then_cold(path, conn, server, pinger, "cmp2", "cmp1", timings)

        # what must be refused is, with the reason
        assert "server day2 runs on cmp1 already" in refused("server", "migrate", path, "day2", "--live",
                                                             "--to", "cmp1")
        assert ("cmp1 is powered on (its BMC says so) and its compute service is up: the node works, drain it "
                "instead") in refused("node", "evacuate", path, "cmp1")

        # a drain moves it away live; enable lets servers land there again
        start = time.monotonic()
        drained = as_json("node", "drain", path, "cmp1")
        timings["drain"] = time.monotonic() - start
        assert drained["drained"] is True
        assert [(r["server"], r["result"], r["mode"], r["to"]) for r in drained["servers"]] == \
            [("day2", "moved", "live", "cmp2")], drained
        # enabled again through the playbook (plain ansible-playbook, the module calls Stackwright's code)
        repo = Path(__file__).resolve().parents[2]
        enabled = subprocess.run(
            [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,",
             str(repo / "playbooks" / "node-enable.yml"), "-e", f"stackwright_inventory={path}", "-e", "node=cmp1"],
            capture_output=True, text=True, check=False, cwd=repo,
            env={**os.environ, "ANSIBLE_CONFIG": str(repo / "ansible.cfg"), "PYTHONPATH": str(repo)})
        assert enabled.returncode == 0 and "compute service enabled" in enabled.stdout, enabled.stdout[-3000:]
        assert {s.host: s.status for s in conn.compute.services(binary="nova-compute")}["cmp1"] == "enabled"

        # the power cut: cmp2 fenced through its BMC, the server rebuilt on
        # cmp1 from its own disk (Ceph), answering again
        evacuate(path, conn, server, pinger, mark, "cmp2", "cmp1", timings)

        # `check` sees the dead node for what it is
        down = sw("check", path, "--format", "json", check=False, timeout=600)
        assert down.returncode == 1, down.stdout
        findings = {(c["item"], c["status"]) for c in json.loads(down.stdout)["checks"] if c["status"] != "ok"}
        assert {("nova-compute@cmp2", "failed"), ("cmp2", "failed")} <= findings, findings  # forced down; unreachable

        # cmp2 comes back: not before it has power, then cleaned up and enabled
        back_in_service(path, conn, "cmp2", ["cmp1", "cmp2"], timings)
        pinger.stop.set()

    # healthy again: nothing failed (a warning, such as Ceph's about this
    # machine's disk, may stand)
    healthy = json.loads(sw("check", path, "--format", "json", timeout=600).stdout)
    assert [c for c in healthy["checks"] if c["status"] == "failed"] == [], healthy
    assert {c["area"] for c in healthy["checks"]} >= {"endpoint", "compute", "network", "block-storage",
                                                       "hypervisor", "ceph", "rabbitmq", "mariadb", "certificate"}

    # a third compute node joins, takes a server and leaves again
    mn_lab.write_text(mn_lab.read_text() + CMP3)
    sw("lab", "up", path)
    start = time.monotonic()
    added = as_json("node", "add", path, "cmp3")
    timings["node add"] = time.monotonic() - start
    assert (added["result"], added["compute_service"], added["ovs_agent"]) == ("added", "up", "alive"), added
    assert "cmp3 is part of cloud e2emn already" in refused("node", "add", path, "cmp3")
    # neither the power cut nor the new node left anything for a deploy to
    # put right (every phase runs: the inventory changed)
    start = time.monotonic()
    sw("deploy", path)
    timings["deploy after node add"] = time.monotonic() - start
    summary = json.loads((mn_lab.parent / ".stackwright" / "e2emn" / "last-deploy.json").read_text())
    assert summary["skipped_phases"] == [] and set(summary["changed_by_host"].values()) == {0}, summary
    with pingable(conn, "joined", "cmp3") as (server, fip):
        assert conn.compute.get_server(server.id).compute_host == "cmp3"
        assert "cmp3 still holds 1 server(s): joined (ACTIVE)" in refused("node", "remove", path, "cmp3")
        start = time.monotonic()
        removed = as_json("node", "remove", path, "cmp3", "--drain")
        timings["node remove (one server moved)"] = time.monotonic() - start
        assert removed["result"] == "removed", removed
        assert conn.compute.get_server(server.id).compute_host in ("cmp1", "cmp2")
        pinger = Pinger(fip.floating_ip_address, interval=0.2)
        pinger.start()
        wait("ping after the move off cmp3", lambda: pinger.answered, 120, 1)
        pinger.stop.set()
    assert sorted(s.host for s in conn.compute.services(binary="nova-compute")) == ["cmp1", "cmp2"]
    assert not list(conn.network.agents(host="cmp3"))
    assert not [r for r in conn.placement.resource_providers() if r.name.startswith("cmp3")]
    lab = Lab(load(mn_lab))
    trusted = subprocess.run([*lab.ssh_args(lab.inv.node("cmp1")), "cat", "/etc/hosts",
                              "/var/lib/nova/.ssh/authorized_keys", "/etc/libvirt/libvirtd.conf"],
                             capture_output=True, text=True, check=True).stdout
    assert "cmp3" not in trusted and "10.82.0.33" not in trusted
    # after the deploys, verify and every day-2 command above, no secret is
    # anywhere it must not be: in an output, this machine's work folder, a
    # node's logs or journal, or a file every user reads
    start = time.monotonic()
    leaks = cloud_secrets_leaked(lab, mn_lab)
    timings["secret scan"] = time.monotonic() - start
    assert leaks == [], leaks
    print("\nmultinode e2e timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
