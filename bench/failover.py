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

- (c) with --database, on a deployed HA cloud: a client on a controller
  other than the writer inserts a row through the internal VIP every
  0.05 s (autocommit: each acknowledged insert is a committed row), and
  the controller whose MariaDB HAProxy writes to is power-cut; the write
  gap (last acknowledged insert before, first after) and the acknowledged
  rows missing afterwards (read through the VIP once the writer is
  fenced) - then the writer is powered on and back in every cluster.

- (d) with --broker, on a deployed HA cloud: a client asks nova-compute
  for a server's console output every 0.2 s (an RPC call and its reply
  through RabbitMQ), a controller's broker is killed (SIGKILL to every
  process of rabbitmq-server.service; systemd starts it again), and a
  server create is started at once: the RPC gap, whether the create
  reached ACTIVE and in how long (against one made before the kill), and
  the seconds until the broker is back in the cluster. Each run kills the
  next controller's broker.

- (g) with --soak MINUTES instead: nothing is done to the cluster; the VIP
  holder, the corosync membership and the fencing history are read every
  5 s, and every change (a spurious failover) is counted.

Each --runs times (default 5); median and worst.  Needs a lab cluster made
by the pacemaker role, for example the molecule scenario's
(`cd roles/pacemaker && molecule converge`, inventory
molecule/inventories/cluster.yml), or a deployed HA lab cloud (--keystone).

Usage (as root): python bench/failover.py INVENTORY [--runs 5] [--keystone | --database | --broker]
Results go to bench/results/failover.json (failover-keystone.json,
failover-database.json, failover-broker.json).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import secrets
import shlex
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

    def ssh(self, node_name: str, command: str, check: bool = True, stdin: str | None = None) -> str:
        done = self.answer(node_name, command, stdin)
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

    def answer(self, node_name: str, command: str, stdin: str | None = None) -> dict[str, Any]:
        """*command*'s output on the node as check.yml's tasks return it."""
        node = self.lab.inv.node(node_name)
        done = subprocess.run([*self.lab.ssh_args(node), command], capture_output=True, text=True, check=False,
                              timeout=60, input=stdin)
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


# Run on a controller (Debian's python3-pymysql is there for the services),
# the password on stdin (never on a command line): "writer" prints the host
# HAProxy sends the internal VIP's database connections to; "insert"
# INSERTs through the VIP for argv[3] seconds, printing "<id> <time>" for
# each acknowledged one.  A failed insert is retried with a new id on a new
# connection 0.05 s later (its row may or may not exist: only acknowledged
# ones are counted).
VIP_CLIENT = """
import sys, time, pymysql
what, host = sys.argv[1], sys.argv[2]
password = sys.stdin.readline().strip()
def connect():
    return pymysql.connect(host=host, user="bench", password=password, database="stackwright_bench",
                           autocommit=True, connect_timeout=2, read_timeout=5, write_timeout=5)
if what == "writer":
    with connect().cursor() as cur:
        cur.execute("SELECT @@hostname")
        print(cur.fetchone()[0].split(".")[0])
    sys.exit()
end, n, conn = time.time() + float(sys.argv[3]), 0, None
while time.time() < end:
    n += 1
    try:
        conn = conn or connect()
        with conn.cursor() as cur:
            cur.execute("INSERT INTO acked (id, at) VALUES (%s, %s)", (n, time.time()))
        print(n, time.time(), flush=True)
    except pymysql.MySQLError:
        conn = None
    time.sleep(0.05)
"""


def vip_client(cluster: Cluster, node_name: str, password: str, *args: str) -> subprocess.Popen[str]:
    node = cluster.lab.inv.node(node_name)
    proc = subprocess.Popen([*cluster.lab.ssh_args(node), "python3", "-c", shlex.quote(VIP_CLIENT), *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if proc.stdin is not None:
        proc.stdin.write(password + "\n")
        proc.stdin.close()
    return proc


def output(proc: subprocess.Popen[str], timeout: float) -> str:
    """What a vip_client printed, once it ended (its stdin is closed
    already: Popen.communicate would try to flush it)."""
    out = proc.stdout.read() if proc.stdout is not None else ""  # to its end: a full pipe would block it
    proc.wait(timeout=timeout)
    return out


def database_run(cluster: Cluster, password: str) -> dict[str, Any]:
    """(c) one power cut of the writer under the inserter; then (f) its
    return to every cluster."""
    vip = str(cluster.lab.inv.cloud.internal_vip)
    via = cluster.members[0].name
    cluster.ssh(via, "mariadb -e 'DELETE FROM stackwright_bench.acked'")
    writer = output(vip_client(cluster, via, password, "writer", vip), 60).strip()
    client = cluster.other(writer)
    inserter = vip_client(cluster, client, password, "insert", vip, "60")
    time.sleep(10)
    event = time.time()
    cluster.lab.power_off(cluster.lab.inv.node(writer))
    out = output(inserter, 120)
    acked = {int(n): float(t) for n, t in (line.split() for line in out.splitlines())}
    before = [t for t in acked.values() if t <= event]
    after = [t for t in acked.values() if t > event]
    gap = (min(after) - max(before)) if before and after else float("nan")
    cluster.wait("the writer fenced", lambda: f"of {writer} successful" in cluster.ssh(
        client, f"stonith_admin --history {writer}", check=False), 120)
    # read on a survivor (Galera certified every acknowledged commit on it)
    stored = {int(n) for n in cluster.ssh(client, "mariadb -N -B -e 'SELECT id FROM stackwright_bench.acked'").split()}
    missing = sorted(set(acked) - stored)
    started = time.monotonic()
    power_on(cluster.inventory, writer)
    cluster.wait("the writer back", lambda: cluster.whole(client), 600)
    return {"writer": writer, "client_on": client, "write_gap_s": round(gap, 2), "acknowledged": len(acked),
            "acknowledged_missing": len(missing), "back_s": round(time.monotonic() - started, 1)}


def database_bench(cluster: Cluster, runs: int) -> dict[str, Any]:
    """(c) *runs* times, with a database and user of its own (made with
    root's socket login on a controller, dropped at the end)."""
    via = cluster.members[0].name
    password = secrets.token_urlsafe(18)
    # the password on stdin, never on a command line
    cluster.ssh(via, "mariadb", stdin="CREATE DATABASE IF NOT EXISTS stackwright_bench;\n"
                "CREATE TABLE IF NOT EXISTS stackwright_bench.acked (id INT PRIMARY KEY, at DOUBLE);\n"
                f"CREATE OR REPLACE USER 'bench'@'%' IDENTIFIED BY '{password}';\n"
                "GRANT ALL ON stackwright_bench.* TO 'bench'@'%';\n")
    done = []
    try:
        for run in range(runs):
            done.append(database_run(cluster, password))
            print(f"run {run + 1}: {done[-1]}", flush=True)
            time.sleep(10)
    finally:
        cluster.ssh(cluster.members[-1].name, "mariadb", check=False,
                    stdin="DROP USER IF EXISTS 'bench'@'%';\nDROP DATABASE IF EXISTS stackwright_bench;\n")
    return {"runs": runs, "insert_interval_s": 0.05, "write_gap_s": figures([r["write_gap_s"] for r in done]),
            "acknowledged_missing": sum(r["acknowledged_missing"] for r in done),
            "acknowledged": sum(r["acknowledged"] for r in done),
            "power_on_to_every_cluster_s": figures([r["back_s"] for r in done]), "each": done}


def console_output(conn: Any, server: Any) -> Callable[[], bool]:
    """An RPC round trip: nova-api asks the server's nova-compute (call, not
    cast) for its console, through the brokers."""
    def probe() -> bool:
        try:
            conn.compute.get_server_console_output(server, length=1)
        except Exception:  # any failure is a failed probe
            return False
        return True
    return probe


def created(conn: Any, name: str, timeout: float = 600) -> float:
    """Seconds from the create call to ACTIVE (the server is deleted
    after); NaN when it errored or did not get there in time."""
    image = conn.image.find_image("stackwright-testguest")
    flavor = conn.compute.find_flavor("m1.nano")
    net = conn.network.find_network("demo-net")
    started = time.monotonic()
    server = conn.compute.create_server(name=name, image_id=image.id, flavor_id=flavor.id,
                                        networks=[{"uuid": net.id}])
    try:
        conn.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], interval=1, wait=timeout)
        return time.monotonic() - started
    except Exception:  # ERROR or a timeout: counted as failed
        return float("nan")
    finally:
        conn.compute.delete_server(server, ignore_missing=True)


def broker_run(cluster: Cluster, conn: Any, client: Client, victim: str, run: int) -> dict[str, Any]:
    """One broker kill, a server create started right after it."""
    via = cluster.other(victim)
    cluster.wait("RPC answers", lambda: client.answers and client.answers[-1] > time.monotonic() - 2, 120)
    event = time.monotonic()
    cluster.ssh(victim, "systemctl kill --signal=KILL rabbitmq-server.service")
    seconds = created(conn, f"bench-broker-{run}")
    cluster.wait("RPC answers again", lambda: any(t > event for t in client.answers), 300)
    cluster.wait("the broker back in the cluster", lambda: cluster.whole(via), 600)
    return {"broker": victim, "rpc_gap_s": round(client.gap(event), 2), "create_to_active_s": round(seconds, 1),
            "broker_back_s": round(time.monotonic() - event, 1)}


def broker_bench(cluster: Cluster, inventory: Path, runs: int) -> dict[str, Any]:
    """(d) *runs* broker kills under the console-output client, a server
    create started right after each."""
    password = read_secrets(inventory.with_name(f"{inventory.stem}.secrets.yml"))["keystone_admin_password"]
    _cloud, conn = credentials.connect(cluster.lab.inv, password, inventory)
    _cloud, probe_conn = credentials.connect(cluster.lab.inv, password, inventory)  # its own, for the thread
    baseline = created(conn, "bench-broker-baseline")
    target = conn.compute.create_server(
        name="bench-broker-rpc", image_id=conn.image.find_image("stackwright-testguest").id,
        flavor_id=conn.compute.find_flavor("m1.nano").id,
        networks=[{"uuid": conn.network.find_network("demo-net").id}])
    conn.compute.wait_for_server(target, status="ACTIVE", failures=["ERROR"], interval=1, wait=600)
    client = Client(console_output(probe_conn, target))
    client.start()
    done = []
    try:
        for run in range(runs):
            done.append(broker_run(cluster, conn, client, cluster.members[run % len(cluster.members)].name, run))
            print(f"run {run + 1}: {done[-1]}", flush=True)
            time.sleep(10)
    finally:
        client.stop.set()
        conn.compute.delete_server(target, ignore_missing=True)
    creates = [r["create_to_active_s"] for r in done]
    return {"runs": runs, "client_interval_s": client.interval, "rpc_gap_s": figures([r["rpc_gap_s"] for r in done]),
            "creates_active": sum(1 for c in creates if c == c), "creates": runs,
            "create_to_active_s": figures([c for c in creates if c == c] or [float("nan")]),
            "create_to_active_before_s": round(baseline, 1),
            "broker_back_s": figures([r["broker_back_s"] for r in done]), "each": done}


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
    parser.add_argument("--database", action="store_true",
                        help="a deployed HA cloud: (c) the database writer power-cut under inserts")
    parser.add_argument("--broker", action="store_true",
                        help="a deployed HA cloud: (d) a broker killed, RPC gap, a server create right after")
    args = parser.parse_args()
    if args.database or args.broker:
        cluster = Cluster(args.inventory.resolve(), "vip-internal", every_cluster=True)
        result = {"inventory": args.inventory.name, "load_1min": os.getloadavg()[0],
                  **(database_bench(cluster, args.runs) if args.database
                     else broker_bench(cluster, args.inventory.resolve(), args.runs))}
        (REPO / "bench" / "results").mkdir(exist_ok=True)
        name = "failover-database.json" if args.database else "failover-broker.json"
        (REPO / "bench" / "results" / name).write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return
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
