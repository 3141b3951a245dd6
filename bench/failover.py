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

- (g) with --soak MINUTES instead: nothing is done to the cluster; the VIP
  holder, the corosync membership and the fencing history are read every
  5 s, and every change (a spurious failover) is counted.

Each --runs times (default 5); median and worst.  Needs a lab cluster made
by the pacemaker role, for example the molecule scenario's
(`cd roles/pacemaker && molecule converge`, inventory
molecule/inventories/cluster.yml).

Usage (as root): python bench/failover.py INVENTORY [--runs 5]
Results go to bench/results/failover.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stackwright.lab import Lab  # noqa: E402
from stackwright.loader import load  # noqa: E402


class Client(threading.Thread):
    """Asks the VIP every *interval* seconds; keeps the times it answered."""

    def __init__(self, url: str, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.answers: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                urllib.request.urlopen(self.url, timeout=0.5)  # noqa: S310 - the lab's own VIP
                self.answers.append(started)
            except urllib.error.HTTPError:
                self.answers.append(started)  # HAProxy answered
            except OSError:
                pass
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
    def __init__(self, inventory: Path) -> None:
        self.inventory = inventory
        self.lab = Lab(load(inventory, preview=True), log=lambda _m: None)
        self.members = [n for n in self.lab.inv.nodes if "controller" in n.roles]

    def ssh(self, node_name: str, command: str, check: bool = True) -> str:
        node = self.lab.inv.node(node_name)
        done = subprocess.run([*self.lab.ssh_args(node), command], capture_output=True, text=True, check=False,
                              timeout=60)
        if check and done.returncode != 0:
            raise RuntimeError(f"{node_name}: {command}: {done.stderr.strip()}")
        return done.stdout.strip()

    def holder(self, via: str) -> str:
        return self.ssh(via, "crm_resource --locate --resource vip-internal --quiet")

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
        """Every member online and every HAProxy clone started."""
        mon = self.ssh(via, "crm_mon -1 --output-as=xml", check=False)
        online = mon.count('online="true"')
        started = self.ssh(via, "crm_resource --locate --resource haproxy-clone --quiet", check=False).split()
        return online == len(self.members) and len(started) == len(self.members)


def power_on(inventory: Path, node: str) -> None:
    """Through the node's BMC, as an operator does (the cluster's inventory
    has several controllers: a preview for the CLI until HA deploys)."""
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
    args = parser.parse_args()
    cluster = Cluster(args.inventory.resolve())
    vip = str(cluster.lab.inv.cloud.internal_vip)
    client = Client(f"http://{vip}:5000/")
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
           "power_cut_gap_s": figures(cut), "planned_move_gap_s": figures(planned),
           "power_on_to_member_s": figures(rejoin), "failbacks": failbacks}
    (REPO / "bench" / "results").mkdir(exist_ok=True)
    (REPO / "bench" / "results" / "failover.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
