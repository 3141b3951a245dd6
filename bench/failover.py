#!/usr/bin/env python3
"""Failover of the VIPs on a lab cluster (figures, never pass/fail): what a
client of the internal VIP sees when the controller holding it dies or
hands it over.

A client on the lab host sends an HTTP request to the internal VIP every
0.2 s (HAProxy answers it: with no API behind it yet, 503 "no server
available" - any HTTP answer counts) and records the gap: last answer
before the event to first answer after it.

- (a) power cut of the VIP holder (`lab power off`: every process killed,
  its NICs dark): detection (corosync's token), fencing through the
  node's BMC, the VIP started on another member;
- (b) planned move (the holder put in standby, then back);
- (f) the cut node powered on again through its BMC: seconds until it is a
  cluster member again, with its HAProxy clone running (no operator).

- with --keystone, on a deployed HA cloud: the client asks Keystone for a
  token through the public VIP (a 201 counts, HAProxy's 503 does not), the
  public VIP's holder is the one cut, and "back" means a member of every
  cluster again: pacemaker, Galera (Synced, full size) and RabbitMQ.

- (g) with --soak MINUTES instead: nothing is done to the cluster; the VIP
  holder, the corosync membership and the fencing history are read every
  5 s, and every change (a spurious failover) is counted.

Each --runs times (default 5); median and worst.  Needs a lab cluster made
by the pacemaker role, for example the molecule scenario's
(`cd roles/pacemaker && molecule converge`, inventory
molecule/inventories/cluster.yml), or a deployed HA lab cloud (--keystone).

Usage (as root): python bench/failover.py INVENTORY [--runs 5] [--keystone]
Results go to bench/results/failover.json (failover-keystone.json).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stackwright import credentials, health  # noqa: E402
from stackwright.lab import Lab  # noqa: E402
from stackwright.loader import load  # noqa: E402
from stackwright.secrets import read as read_secrets  # noqa: E402


def haproxy_answers(url: str) -> Callable[[], bool]:
    """Any HTTP answer from the VIP counts (HAProxy's own 503 too)."""
    def probe() -> bool:
        try:
            urllib.request.urlopen(url, timeout=0.5)  # noqa: S310 - the lab's own VIP
        except urllib.error.HTTPError:
            return True  # HAProxy answered
        except OSError:
            return False
        return True
    return probe


def keystone_token(cloud: dict[str, Any]) -> Callable[[], bool]:
    """Only a token counts: Keystone answered through HAProxy (the admin
    cloud entry of credentials.admin_cloud: its auth URL, password and CA)."""
    url, password = cloud["auth"]["auth_url"] + "/auth/tokens", cloud["auth"]["password"]
    # a fresh TLS handshake each time, as a new client makes (no session reuse)
    context = ssl.create_default_context(cafile=cloud.get("cacert")) if url.startswith("https:") else None
    body = json.dumps({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"id": "default"}, "password": password}}}}}).encode()

    def probe() -> bool:
        request = urllib.request.Request(url, data=body,  # noqa: S310 - the lab's own VIP
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=2, context=context) as answer:  # noqa: S310 - the lab's VIP
                return bool(answer.status == 201)
        except OSError:  # HTTPError (HAProxy's 503) included
            return False
    return probe


class Client(threading.Thread):
    """Probes every *interval* seconds; keeps the times it succeeded."""

    def __init__(self, probe: Callable[[], bool], interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.probe, self.interval = probe, interval
        self.answers: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            if self.probe():
                self.answers.append(started)
            time.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def gap(self, event: float) -> float:
        before = [t for t in self.answers if t <= event]
        after = [t for t in self.answers if t > event]
        if not before or not after:
            return float("nan")
        return after[0] - before[-1]


def figures(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 2), "worst": round(max(values), 2),
            "runs": [round(v, 2) for v in values]}


class Cluster:
    def __init__(self, inventory: Path, vip: str = "vip-internal", every_cluster: bool = False) -> None:
        self.inventory = inventory
        self.lab = Lab(load(inventory, preview=True), log=lambda _m: None)
        self.members = [n for n in self.lab.inv.nodes if "controller" in n.roles]
        self.vip, self.every_cluster = vip, every_cluster

    def ssh(self, node_name: str, command: str, check: bool = True) -> str:
        done = self.answer(node_name, command)
        if check and done["_event"] != "runner_on_ok":
            raise RuntimeError(f"{node_name}: {command}: {done['stderr'].strip()}")
        return str(done["stdout"]).strip()

    def holder(self, via: str) -> str:
        return self.ssh(via, f"crm_resource --locate --resource {self.vip} --quiet")

    def other(self, than: str) -> str:
        return next(n.name for n in self.members if n.name != than)

    def wait(self, what: str, ok: Any, timeout: float = 300) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if ok():
                return time.monotonic() - started
            time.sleep(0.5)
        raise RuntimeError(f"{what}: not within {timeout:.0f} s")

    def whole(self, via: str) -> bool:
        """Every member online and every HAProxy clone started (and, for a
        deployed cloud, every Galera member Synced in a cluster of all and
        every broker running)."""
        mon = self.ssh(via, "crm_mon -1 --output-as=xml", check=False)
        online = mon.count('online="true"')
        started = self.ssh(via, "crm_resource --locate --resource haproxy-clone --quiet", check=False).split()
        whole = online == len(self.members) and len(started) == len(self.members)
        if not whole or not self.every_cluster:
            return whole
        # judged as `stackwright check` judges them (stackwright/health.py)
        galera = {m.name: self.answer(m.name, f'mariadb -N -B -e "{health.GALERA_STATE}"') for m in self.members}
        brokers = {m.name: self.answer(m.name, "rabbitmqctl -q cluster_status --formatter json") for m in self.members}
        rows = [*health.galera_rows(galera), *health.rabbitmq_rows(brokers)]
        return all(r.status == health.OK for r in rows)

    def answer(self, node_name: str, command: str) -> dict[str, Any]:
        """*command*'s output on the node as check.yml's tasks return it."""
        node = self.lab.inv.node(node_name)
        done = subprocess.run([*self.lab.ssh_args(node), command], capture_output=True, text=True, check=False,
                              timeout=60)
        return {"_event": "runner_on_ok" if done.returncode == 0 else "runner_on_failed",
                "stdout": done.stdout, "stderr": done.stderr}


def power_on(inventory: Path, node: str) -> None:
    """Through the node's BMC, as an operator does (a molecule cluster's
    inventory needs the CLI's preview)."""
    subprocess.run([sys.executable, "-m", "stackwright", "node", "power", str(inventory), node, "on"],
                   check=True, capture_output=True, text=True, cwd=REPO,
                   env={**os.environ, "STACKWRIGHT_PREVIEW": "1"})


def one_run(cluster: Cluster, client: Client) -> tuple[float, float, float, bool]:
    """(a) the power-cut gap, (f) power-on to member, (b) the planned-move
    gap, and whether the VIP moved again when the cut node came back (a
    failback: a second, needless move)."""
    holder = cluster.holder(cluster.members[0].name)
    via = cluster.other(holder)
    time.sleep(3)
    # (a) power cut of the holder
    event = time.monotonic()
    cluster.lab.power_off(cluster.lab.inv.node(holder))
    cluster.wait("the VIP answers again", lambda: any(t > event for t in client.answers), 120)
    time.sleep(1)
    gap_cut = client.gap(event)
    moved_to = cluster.holder(via)
    # the fencing done (the BMC says off), then (f): power it on
    cluster.wait("the cut node fenced", lambda: f"of {holder} successful" in cluster.ssh(
        via, f"stonith_admin --history {holder}", check=False), 120)
    started = time.monotonic()
    power_on(cluster.inventory, holder)
    cluster.wait("the cut node back", lambda: cluster.whole(via), 300)
    back = time.monotonic() - started
    time.sleep(10)  # settled
    if cluster.every_cluster:
        # a whole controller booting (some forty OpenStack processes) keeps
        # this 2-core machine's load above 20 for a minute or two, and
        # pacemaker then throttles its actions to one at a time: the planned
        # move waits for the load to come down (at most 5 minutes)
        settle = time.monotonic() + 300
        while os.getloadavg()[0] >= 2 * (os.cpu_count() or 1) and time.monotonic() < settle:
            time.sleep(5)
    failback = cluster.holder(via) != moved_to
    # (b) a planned move: the holder (now another node) to standby, and back
    mover = cluster.holder(via)
    via = cluster.other(mover)
    time.sleep(3)
    event = time.monotonic()
    cluster.ssh(via, f"crm_attribute --node {mover} --name standby --update on --lifetime forever")
    cluster.wait("the VIP moved", lambda: cluster.holder(via) not in ("", mover), 60)
    time.sleep(2)
    gap_planned = client.gap(event)
    cluster.ssh(via, f"crm_attribute --node {mover} --name standby --delete")
    cluster.wait("the cluster whole again", lambda: cluster.whole(via), 120)
    return gap_cut, back, gap_planned, failback


def soak(cluster: Cluster, client: Client, minutes: float) -> dict[str, Any]:
    """(g): watch an idle cluster; count VIP moves, membership changes and
    fencing, and the longest gap the client saw."""
    via = cluster.members[0].name
    holder = cluster.holder(via)
    fenced = len(cluster.ssh(via, "stonith_admin --history '*'", check=False).splitlines())
    moves, membership_changes, started = 0, 0, time.monotonic()
    members = cluster.ssh(via, "crm_node -l", check=False)
    while time.monotonic() - started < minutes * 60:
        time.sleep(5)
        now = cluster.holder(via)
        if now != holder:
            moves, holder = moves + 1, now
        seen = cluster.ssh(via, "crm_node -l", check=False)
        if seen != members:
            membership_changes, members = membership_changes + 1, seen
    answers = [t for t in client.answers if t >= started]
    longest = max((b - a for a, b in itertools.pairwise(answers)), default=float("nan"))
    return {"minutes": minutes, "vip_moves": moves, "membership_changes": membership_changes,
            "fencing_events": len(cluster.ssh(via, "stonith_admin --history '*'", check=False).splitlines()) - fenced,
            "longest_client_gap_s": round(longest, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inventory", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--soak", type=float, metavar="MINUTES", help="watch the idle cluster instead (g)")
    parser.add_argument("--keystone", action="store_true",
                        help="a deployed HA cloud: tokens through the public VIP, back in every cluster")
    args = parser.parse_args()
    if args.keystone:
        cluster = Cluster(args.inventory.resolve(), "vip-public", every_cluster=True)
        secrets = args.inventory.resolve().with_name(f"{args.inventory.stem}.secrets.yml")
        password = read_secrets(secrets)["keystone_admin_password"]
        client = Client(keystone_token(credentials.admin_cloud(cluster.lab.inv, password, args.inventory.resolve())))
    else:
        cluster = Cluster(args.inventory.resolve())
        client = Client(haproxy_answers(f"http://{cluster.lab.inv.cloud.internal_vip}:5000/"))
    client.start()
    if args.soak:
        result = {"inventory": args.inventory.name, "load_1min": os.getloadavg()[0],
                  "soak": soak(cluster, client, args.soak)}
        result["load_1min_after"] = os.getloadavg()[0]
        (REPO / "bench" / "results").mkdir(exist_ok=True)
        (REPO / "bench" / "results" / "failover-soak.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return
    cut, planned, rejoin, failbacks = [], [], [], 0
    for run in range(args.runs):
        gap_cut, back, gap_planned, failback = one_run(cluster, client)
        cut.append(gap_cut)
        rejoin.append(back)
        planned.append(gap_planned)
        failbacks += failback
        print(f"run {run + 1}: power cut gap {gap_cut:.2f} s, back in {back:.1f} s"
              f"{' (the VIP moved back to it)' if failback else ''}, planned move gap {gap_planned:.2f} s",
              flush=True)
    client.stop.set()
    out = {"inventory": args.inventory.name, "runs": args.runs, "client_interval_s": client.interval,
           "client": "keystone token, public VIP" if args.keystone else "any HTTP answer, internal VIP",
           "power_cut_gap_s": figures(cut), "planned_move_gap_s": figures(planned),
           "power_on_to_member_s": figures(rejoin), "failbacks": failbacks}
    (REPO / "bench" / "results").mkdir(exist_ok=True)
    name = "failover-keystone.json" if args.keystone else "failover.json"
    (REPO / "bench" / "results" / name).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
