#!/usr/bin/env python3
"""Live migration on a deployed cloud with two compute nodes (figures, never
pass/fail).

Boots the test guest on one compute node with a floating IP, then live-
migrates it to the other node and back, --runs times in all.  For each move:

- the migration time: from the API call until the server is ACTIVE on the
  other node (as the API reports it, polled every 0.2 s);
- the longest gap in the guest's answers to ping from this machine (one
  echo request every 0.05 s through the floating IP, from 5 s before the
  call until 5 s after the move), and how many requests went unanswered;
- whether the guest kept running: the uptime it prints every 5 s on its
  console is larger after the move than before (a reboot would restart it).

With Ceph the instance disk stays in the vms pool and only memory moves;
without, every move is a block migration (the disk is copied over the same
TLS transport).

With --evacuations N (lab only), then N times: cut the power of the node
the guest runs on (`lab power off`), force its compute service down (the
node is fenced: its power is off), evacuate the guest, and time power cut
to ACTIVE on the other node; the guest's disk marker (written at its first
boot, printed at every boot) must be the same after, so it kept its disk
(Ceph); then power the node on again, wait for its nova-compute and lift
the forced-down state.

Usage (as root, after `stackwright deploy` and with the lab up):
    python bench/migration.py inventories/multinode.yml [--runs 3] [--evacuations 3]
Results go to bench/results/migration.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stackwright import credentials, secrets  # noqa: E402
from stackwright.guest import Pinger, diskmarks, pingable, uptime  # noqa: E402
from stackwright.loader import load  # noqa: E402
from stackwright.migrate import wait  # noqa: E402
from stackwright.paths import secrets_file  # noqa: E402

RESULTS = REPO / "bench" / "results"
DHCP_MARK = "STACKWRIGHT-DHCP"


def compute_service(conn: Any, host: str) -> Any:
    return next(s for s in conn.compute.services(binary="nova-compute") if s.host == host)


def evacuate(conn: Any, lab: Any, inv: Any, server: Any, computes: list[str], mark: str) -> dict[str, Any]:
    """Power-cut the guest's node, evacuate, check the disk (*mark*: what its
    first boot wrote), bring the node back."""
    source = conn.compute.get_server(server.id).compute_host
    target = next(c for c in computes if c != source)
    node = inv.node(source)
    cut = time.time()
    lab.power_off(node)
    # the node is fenced (its power is off): no need to wait for Nova to
    # notice it is gone (service_down_time)
    conn.compute.update_service_forced_down(compute_service(conn, source), forced=True)
    conn.compute.evacuate_server(server)
    wait(f"{server.name} ACTIVE on {target}", lambda: arrived(conn, server.id, target), 900)
    active = time.time()
    after = wait("the disk marker after evacuation", lambda: diskmarks(conn, server), 300, 1)[-1]
    lab.power_on(node)
    # nova-compute starts with the node and removes what was evacuated
    # from it (its libvirt domain); then the forced-down state is lifted
    name = conn.compute.get_server(server.id).instance_name

    def domains() -> list[str]:
        return subprocess.run([*lab.ssh_args(node), "virsh", "list", "--all", "--name"], capture_output=True,
                              text=True, check=False).stdout.split()

    wait(f"nova-compute on {source} running", lambda: subprocess.run(
        [*lab.ssh_args(node), "systemctl", "is-active", "nova-compute"], capture_output=True, text=True,
        check=False).stdout.strip() == "active", 300, 2)
    wait(f"the stale {name} gone from {source}", lambda: name not in domains(), 300, 3)
    conn.compute.update_service_forced_down(compute_service(conn, source), forced=False)
    wait(f"nova-compute on {source} up", lambda: compute_service(conn, source).state == "up", 300, 3)
    back = time.time()
    return {"from": source, "to": target, "power_cut_to_active_s": round(active - cut, 1),
            "disk_marker_kept": after == mark, "node_back_after_s": round(back - active, 1)}


def arrived(conn: Any, server_id: str, host: str) -> bool:
    found = conn.compute.get_server(server_id)
    return bool(found.compute_host == host and found.status == "ACTIVE" and found.task_state is None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inventory", type=Path)
    parser.add_argument("--runs", type=int, default=3, help="moves in all, alternating direction (default 3)")
    parser.add_argument("--evacuations", type=int, default=0, help="power cuts and evacuations after the moves")
    args = parser.parse_args()
    inv = load(args.inventory)
    computes = sorted(n.name for n in inv.nodes_with_role("compute"))
    if len(computes) < 2:
        raise SystemExit(f"{args.inventory}: live migration needs two compute nodes, it has {computes}")
    _cloud, conn = credentials.connect(inv, secrets.read(secrets_file(args.inventory))["keystone_admin_password"],
                                   args.inventory)
    conn.compute.default_microversion = "2.30"  # a target host in live migration
    moves: list[dict[str, Any]] = []
    evacuations: list[dict[str, Any]] = []
    with pingable(conn, "bench-migration", computes[0]) as (server, fip):
        wait("the guest's DHCP marker", lambda: DHCP_MARK in (conn.compute.get_server_console_output(server)
                                                               .get("output") or ""), 600, 3)
        first_mark = wait("the guest's disk marker", lambda: diskmarks(conn, server), 120, 1)[-1]
        pinger = Pinger(fip.floating_ip_address)
        pinger.start()
        wait("ping through the floating IP", lambda: pinger.answered, 300, 1)
        wait("the guest's uptime on its console", lambda: uptime(conn, server), 60, 1)
        for run in range(args.runs):
            source = conn.compute.get_server(server.id).compute_host
            target = next(c for c in computes if c != source)
            time.sleep(5)
            before = uptime(conn, server)
            called = time.time()
            conn.compute.live_migrate_server(server, host=target, block_migration="auto")
            wait(f"{server.name} ACTIVE on {target}", lambda to=target: arrived(conn, server.id, to), 900)
            done = time.time()
            time.sleep(5)
            gap, lost = pinger.gap(called - 5, done + 5)
            after = wait("the guest's uptime on its new console", lambda: uptime(conn, server), 60, 1)
            moves.append({"from": source, "to": target, "seconds": round(done - called, 1),
                          "longest_ping_gap_s": round(gap, 2), "pings_lost": lost,
                          "guest_uptime_before_s": before, "guest_uptime_after_s": after,
                          "guest_kept_running": after > before > 0})
            print(f"move {run + 1}/{args.runs}: {source} -> {target} in {done - called:.1f}s, "
                  f"longest ping gap {gap:.2f}s ({lost} lost), guest uptime {before:.0f}s -> {after:.0f}s",
                  flush=True)
        pinger.stop.set()
        for run in range(args.evacuations):
            from stackwright.lab import Lab

            result = evacuate(conn, Lab(inv), inv, server, computes, first_mark)
            evacuations.append(result)
            print(f"evacuation {run + 1}/{args.evacuations}: {result}", flush=True)
    doc = {
        "inventory": inv.cloud.name, "date": time.strftime("%Y-%m-%d"), "transport": "libvirt TLS + QEMU native TLS",
        "storage": "Ceph RBD (pool vms)" if inv.cloud.services.ceph else "local disks: block migration",
        "moves": moves,
        "median_seconds": statistics.median(m["seconds"] for m in moves),
        "median_longest_ping_gap_s": statistics.median(m["longest_ping_gap_s"] for m in moves),
        "worst_longest_ping_gap_s": max(m["longest_ping_gap_s"] for m in moves),
        "evacuations": evacuations,
    }
    if evacuations:
        doc["median_power_cut_to_active_s"] = statistics.median(e["power_cut_to_active_s"] for e in evacuations)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "migration.json").write_text(json.dumps(doc, indent=2) + "\n")
    print(json.dumps({k: v for k, v in doc.items() if k != "moves"}, indent=2))


if __name__ == "__main__":
    main()
