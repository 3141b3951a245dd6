"""End to end on the HA lab (inventories/ha.yml: three controllers that are
also the network nodes, behind an internal and a public VIP, two compute
nodes that are also Ceph's storage nodes, every node with a simulated BMC):

- lab up, deploy;
- every node's listeners: nothing on every address but sshd; over UDP only
  chrony and corosync, on the controllers' management addresses;
- `check` sees the clusters whole: pacemaker quorate with three members,
  each VIP on one of them, every Galera member Synced in one cluster of
  three, the three RabbitMQ brokers running, no failed action;
- the power cut of the public VIP's holder (`lab power off`: every process
  killed at once) while a client asks Keystone for a token through the
  public VIP every 0.2 s: the API answers again (a generous bound; the gap
  is printed, bench/failover.py measures it), pacemaker fenced the node
  through its BMC;
- with the controller down, a server's day-2 moves between the two
  compute nodes, each observed from outside (its uptime, its disk marker,
  ping through its floating IP): a live migration, a cold migration back,
  and the power cut of its node with `node evacuate --fence` (rebuilt on
  the other one from its disk in Ceph); the node powered on is back in
  service (`node enable`); then `verify` passes with the controller down;
- the controller powered on through its BMC rejoins every cluster without
  an operator (`check` passes again);
- a second deploy changes nothing;
- MariaDB stopped on every controller, a commit made after the first one
  stopped: `recover database --from` that member is refused naming the
  positions, `recover database` starts from the most advanced one, the
  commit is there and `check` finds the cloud whole;
- no secret anywhere it must not be.

Uses its own copy of the HA inventory (cloud `e2eha`, other subnets).
Timings are printed, not asserted.  CI runs it: it covers what the multinode
test did there (several nodes, migrations, evacuation, the secret scan);
`make multinode-test` runs that one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from day2_moves import back_in_service, evacuate, live_then_cold, watched
from stackwright_cli import (
    assert_https_only,
    assert_listeners,
    cloud_secrets_leaked,
    lab_copy,
    listening,
    network_report,
    sw,
)

# the failover bench's client: the test and the bench measure alike
from bench.failover import Client, keystone_token
from stackwright import credentials
from stackwright.guest import pingable
from stackwright.lab import Lab
from stackwright.loader import load
from stackwright.migrate import MICROVERSION, wait
from stackwright.secrets import read as read_secrets

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

INVENTORY = Path(__file__).resolve().parents[2] / "inventories" / "ha.yml"
CONTROLLERS = ("ctl1", "ctl2", "ctl3")


@pytest.fixture(scope="module")
def ha_lab(tmp_path_factory: pytest.TempPathFactory):
    yield from lab_copy(INVENTORY, "ha", "e2eha", tmp_path_factory.mktemp("e2eha"),
                        {"10.62.": "10.88.", "10.63.": "10.89.", "10.64.": "10.90.", "10.65.": "10.91."})


def check_rows(path: str) -> tuple[int, list[dict[str, Any]]]:
    done = sw("check", path, "--format", "json", check=False, timeout=900)
    try:
        return done.returncode, json.loads(done.stdout)["checks"]
    except (ValueError, KeyError):
        return done.returncode, []


def attempt(probe: Any) -> Any:
    """*probe*'s result, or None when it raised (a service still failing over)."""
    try:
        return probe()
    except Exception:  # any failure means "not yet"
        return None


def cluster_whole(rows: list[dict[str, Any]]) -> bool:
    seen = {(r["area"], r["item"]): r["status"] for r in rows}
    wanted = [("pacemaker", "cluster"), ("vip", "vip-internal"), ("vip", "vip-public"),
              ("pacemaker", "haproxy-clone"), ("rabbitmq", "cluster"), *(("galera", c) for c in CONTROLLERS)]
    return all(seen.get(w) == "ok" for w in wanted) and not [r for r in rows if r["status"] == "failed"]


def holder(rows: list[dict[str, Any]], vip: str) -> str:
    detail = next(r["detail"] for r in rows if (r["area"], r["item"]) == ("vip", vip))
    found = re.fullmatch(r"held by (\S+)", detail)
    assert found, detail
    return found.group(1)


def on_node(lab: Lab, name: str, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*lab.ssh_args(lab.inv.node(name)), *command], capture_output=True, text=True,
                          check=check, timeout=300)


def test_ha_deploy_failover_and_recovery(ha_lab: Path):
    timings: dict[str, float] = {}
    path = str(ha_lab)
    start = time.monotonic()
    sw("lab", "up", path)
    sw("deploy", path, timeout=5400)
    timings["lab up + deploy"] = time.monotonic() - start
    inv = load(ha_lab)
    lab = Lab(inv)
    # (verify runs once, through the VIPs with a controller down, below: a
    # verify of the whole cloud before cost CI 80 s)

    # nothing on every address but sshd; over UDP only chrony and corosync
    # (knet), on the controllers' management addresses
    assert_listeners(lab, lambda node: {f"{node.networks['mgmt'].address}:{port}" for port in (123, 5405)}
                     if "controller" in node.roles else set())

    # TLS: the public VIP speaks only HTTPS, with a certificate of the
    # cloud's CA (clouds.yaml's); the dashboard's port 80 only redirects;
    # on the API network nothing listens but HAProxy on the VIP (and sshd)
    vip, cacert = inv.cloud.public_vip, credentials.ca_file(inv, ha_lab)
    assert_https_only(str(vip), cacert)
    assert requests.get(f"https://{vip}/auth/login/", verify=cacert, timeout=30).status_code == 200
    for node in inv.nodes_with_role("controller"):
        api = str(node.networks["api"].address)
        assert not {a for a in listening(lab, node, "-Hltn") if a.startswith(api + ":")}, node.name

    rc, rows = check_rows(path)
    assert rc == 0 and cluster_whole(rows), json.dumps(rows, indent=1)
    victim = holder(rows, "vip-public")

    # the public VIP's holder loses its power; a user's client keeps asking
    # Keystone for tokens through the public VIP
    password = read_secrets(ha_lab.with_name("e2eha.secrets.yml"))["keystone_admin_password"]
    client = Client(keystone_token(credentials.admin_cloud(inv, password, ha_lab)))
    client.start()
    wait("a token through the public VIP", lambda: client.answers, 120, 1)
    sw("lab", "power", path, "off", victim)
    # counted from the command's return: a token answered while the command
    # started up came from the victim, before its power was cut
    cut = time.monotonic()
    wait("a token after the power cut", lambda: [t for t in client.answers if t > cut], 300, 1)
    timings[f"API gap after {victim}'s power cut"] = client.gap(cut)
    client.stop.set()
    survivor = next(c for c in CONTROLLERS if c != victim)
    fenced = on_node(lab, survivor, "stonith_admin", "--history", victim).stdout
    # the VIP starts elsewhere only once the fencing succeeded
    assert re.search(rf"(reboot|off) of {victim} successful", fenced), fenced
    assert f"{victim}: power off" in sw("node", "power", path, victim, "status", check=False).stdout
    # with the controller down, a server's day-2 moves: its disk stays in
    # Ceph, whose monitors run on the controllers (two of three keep the
    # quorum, through the power cut of a compute node too, which is one of
    # Ceph's two OSD nodes).  Meanwhile Nova and Neutron see the
    # controller's services down (they miss their reports: service_down_time
    # 60 s, agent_down_time 75 s), which the verify below waits for.
    _cloud, conn = credentials.connect(inv, password, ha_lab)
    conn.compute.default_microversion = MICROVERSION
    with pingable(conn, "day2", "cmp2") as (server, fip):
        mark, pinger = watched(conn, server, fip.floating_ip_address)
        live_then_cold(path, conn, server, pinger, "cmp1", "cmp2", timings)
        evacuate(path, conn, server, pinger, mark, "cmp2", "cmp1", timings)
        back_in_service(path, conn, "cmp2", ["cmp1", "cmp2"], timings)
        pinger.stop.set()

    def seen_down() -> bool:
        services = [s for s in conn.compute.services() if s.host == victim and s.state == "up"]
        agents = [a for a in conn.network.agents() if a.host == victim and a.is_alive]
        return not services and not agents

    wait(f"Nova and Neutron to see {victim} down", lambda: attempt(seen_down), 300, 10)
    start = time.monotonic()
    degraded = sw("verify", path, check=False, timeout=1800)
    timings["verify with a controller down"] = time.monotonic() - start
    assert degraded.returncode == 0, degraded.stdout + degraded.stderr + network_report(lab)
    said = " ".join(degraded.stdout.split())
    assert f"node(s) {victim} down (every service there down; each runs on another node too)" in said, said

    # powered on through its BMC, it rejoins every cluster by itself
    sw("node", "power", path, victim, "on")
    start = time.monotonic()
    wait("every cluster whole again", lambda: cluster_whole(check_rows(path)[1]), 900, 10)
    timings[f"{victim} back in every cluster"] = time.monotonic() - start

    # neither the power cut nor its repair left a deploy anything to do
    start = time.monotonic()
    sw("deploy", path, timeout=3600)
    timings["second deploy"] = time.monotonic() - start
    summary = json.loads((ha_lab.parent / ".stackwright" / "e2eha" / "last-deploy.json").read_text())
    assert set(summary["changed_by_host"].values()) == {0}, summary

    # the whole database cluster stops; the member that stopped first lacks
    # a commit the others made
    first, *others = CONTROLLERS
    on_node(lab, first, "systemctl", "stop", "mariadb")
    _cloud, conn = credentials.connect(inv, password, ha_lab)
    project = wait("a commit with one member stopped",
                   lambda: attempt(lambda: conn.identity.create_project(name="after-first-stop",
                                                                         domain_id="default")), 120, 5)
    for name in others:
        on_node(lab, name, "systemctl", "stop", "mariadb")
    stale = sw("recover", "database", path, "--from", first, check=False, timeout=900)
    said = " ".join((stale.stdout + stale.stderr).split())
    assert stale.returncode != 0 and re.search(rf"{first} is at seqno \d+, but ", said), said
    assert "with --force (and --from NODE)" in said, said
    start = time.monotonic()
    sw("recover", "database", path, timeout=900)
    timings["recover database"] = time.monotonic() - start
    _cloud, conn = credentials.connect(inv, password, ha_lab)
    assert conn.identity.get_project(project.id).name == "after-first-stop"
    conn.identity.delete_project(project.id)
    # service restored: check finds every endpoint answering, every Nova
    # service and Neutron agent up, every cluster whole (a full verify here
    # cost CI 75 s more)
    wait("every cluster whole after the recovery", lambda: cluster_whole(check_rows(path)[1]), 600, 10)

    start = time.monotonic()
    leaks = cloud_secrets_leaked(lab, ha_lab)
    timings["secret scan"] = time.monotonic() - start
    assert leaks == [], leaks
    print("\nHA e2e timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
