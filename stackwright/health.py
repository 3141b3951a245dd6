"""`stackwright check`: the health of a running cloud, one row per thing
looked at, each ok, warning or failed with what was seen.

Two sources: the cloud's APIs (openstacksdk: every endpoint of the catalog
answers, Nova's services and hypervisors, Neutron's agents, Cinder's
services, all against what the service catalog says each node runs), and
the nodes themselves through playbooks/check.yml (Ceph's health, the
message broker's and the database's liveness, the expiry of the
certificates Stackwright made and, with several controllers, the clusters:
pacemaker's members, who holds each VIP, failed actions, each Galera
member's state and the RabbitMQ cluster's running brokers).  Nothing is
changed anywhere.
"""

from __future__ import annotations

import datetime
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import requests

from . import catalog, migrate
from .model import Inventory

OK, WARNING, FAILED = "ok", "warning", "failed"
# a certificate closer to its end than this is a warning (the deploy renews
# it when fewer than 90 days remain, so this means no deploy ran for long)
CERT_WARNING_DAYS = 30


@dataclass(frozen=True)
class Row:
    area: str
    item: str
    status: str
    detail: str


def worst(rows: list[Row]) -> str:
    return FAILED if any(r.status == FAILED for r in rows) else WARNING if any(
        r.status == WARNING for r in rows) else OK


def as_json(rows: list[Row]) -> str:
    return json.dumps({"status": worst(rows), "checks": [asdict(r) for r in rows]}, indent=2)


# -- through the APIs ------------------------------------------------------------


def endpoints(conn: Any, get: Callable[[str], int] | None = None) -> Iterator[Row]:
    """Every public endpoint of the catalog answers HTTP (any answer below
    500: an API behind authentication says 401 to a bare request)."""
    def http_status(url: str) -> int:
        # with TLS, against the CA the connection trusts
        return requests.get(url, timeout=10, verify=conn.session.verify).status_code

    get = get or http_status
    services = {s.id: s.name for s in conn.identity.services()}
    for ep in sorted(conn.identity.endpoints(interface="public"), key=lambda e: services.get(e.service_id, "")):
        name = services.get(ep.service_id, ep.service_id)
        url = ep.url.split("%(")[0].rstrip("/") or ep.url  # a project-scoped URL: its root
        try:
            code = get(url)
        except requests.RequestException as exc:
            yield Row("endpoint", name, FAILED, f"{url}: {type(exc).__name__}")
            continue
        yield Row("endpoint", name, OK if code < 500 else FAILED, f"{url}: HTTP {code}")


def services(conn: Any, inv: Inventory) -> Iterator[Row]:
    """Nova services, Neutron agents and Cinder services, against what the
    catalog says each node reports."""
    seen: dict[tuple[str, str, str], Row] = {}
    for s in conn.compute.services():
        key = ("compute", s.binary, s.host)
        if s.state != "up" or getattr(s, "is_forced_down", False):
            seen[key] = Row("compute", f"{s.binary}@{s.host}", FAILED,
                            "forced down (evacuated?)" if getattr(s, "is_forced_down", False) else "down")
        elif s.status != "enabled":
            seen[key] = Row("compute", f"{s.binary}@{s.host}", WARNING,
                            f"disabled: {getattr(s, 'disabled_reason', None) or 'no reason given'}")
        else:
            seen[key] = Row("compute", f"{s.binary}@{s.host}", OK, "up, enabled")
    for a in conn.network.agents():
        key = ("network", a.agent_type, a.host)
        status = OK if a.is_alive and a.is_admin_state_up else FAILED if not a.is_alive else WARNING
        seen[key] = Row("network", f"{a.agent_type}@{a.host}", status,
                        ("alive" if a.is_alive else "not alive") + ("" if a.is_admin_state_up else ", admin down"))
    yield from seen.values()
    for api, name, host in catalog.reports(inv):
        if (api, name, host) not in seen:
            yield Row(api, f"{name}@{host}", FAILED, "never reported (not deployed, or never started)")
    if inv.nodes_with_role("storage"):
        volume = [s for s in conn.block_storage.services()]
        for s in volume:
            yield Row("block-storage", f"{s.binary}@{s.host}", OK if s.state == "up" else FAILED,
                      f"{s.state}, {s.status}")
        if not volume:
            yield Row("block-storage", "cinder", FAILED, "no Cinder service reported")


def hypervisors(conn: Any, inv: Inventory) -> Iterator[Row]:
    found = {h.name.split(".")[0]: h for h in conn.compute.hypervisors(details=True)}
    for node in sorted(n.name for n in inv.nodes_with_role("compute")):
        h = found.get(node)
        if h is None:
            yield Row("hypervisor", node, FAILED, "not registered")
        else:
            yield Row("hypervisor", node, OK if h.state == "up" else FAILED, f"{h.state}, {h.status}")


def cpus(conn: Any, inv: Inventory) -> Iterator[Row]:
    """Can a guest move live between any two compute nodes?  With guests
    that see the host's CPU (cpu_mode host-model) the target needs every
    CPU feature of the source: each pair that lacks some is a warning."""
    if not migrate.cpu_guarded(inv):
        yield Row("cpu", "compute nodes", OK, "guests run on an emulated CPU (qemu, cpu_mode none): any node "
                  "takes them")
        return
    found = migrate.cpus(conn)
    nodes = sorted(n.name for n in inv.nodes_with_role("compute") if n.name in found)
    pairs = [(a, b, why) for a in nodes for b in nodes if a != b and (why := migrate.cpu_mismatch(found, a, b))]
    for source, target, why in pairs:
        yield Row("cpu", f"{source} -> {target}", WARNING, f"no live migration this way: {why}")
    if not pairs:
        models = sorted({found[n].model for n in nodes})
        yield Row("cpu", "compute nodes", OK, f"a guest can move live between any two of {len(nodes)} "
                  f"(CPU {', '.join(models) or 'unknown'})")


# -- on the nodes (playbooks/check.yml) ------------------------------------------------


class NodeReport:
    """Collects what check.yml's tasks returned, per task and host, from the
    runner's events."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, dict[str, Any]]] = {}

    def handle(self, event: dict[str, Any]) -> None:
        if event.get("event") not in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
            return
        data = event.get("event_data", {})
        res = dict(data.get("res") or {})
        res["_event"] = event["event"]
        self.results.setdefault(data.get("task", ""), {})[data.get("host", "")] = res


def node_rows(report: NodeReport, now: datetime.datetime | None = None) -> Iterator[Row]:
    now = now or datetime.datetime.now(datetime.UTC)
    for host, res in sorted(report.results.get("Ceph health", {}).items()):
        if res["_event"] != "runner_on_ok":
            yield Row("ceph", host, FAILED, res.get("msg") or res.get("stderr") or "ceph did not answer")
            continue
        health = json.loads(res.get("stdout") or "{}")
        state = health.get("status", "unknown")
        checks = "; ".join(f"{k}: {v.get('summary', {}).get('message', '')}" for k, v in
                           sorted(health.get("checks", {}).items()))
        yield Row("ceph", "cluster", OK if state == "HEALTH_OK" else WARNING if state == "HEALTH_WARN" else FAILED,
                  state + (f" ({checks})" if checks else ""))
    for task, area in (("RabbitMQ answers", "rabbitmq"), ("MariaDB answers", "mariadb")):
        for host, res in sorted(report.results.get(task, {}).items()):
            ok = res["_event"] == "runner_on_ok"
            yield Row(area, host, OK if ok else FAILED,
                      "answers" if ok else (res.get("msg") or res.get("stderr") or "no answer")[:200])
    yield from galera_rows(report.results.get("Galera state", {}))
    yield from rabbitmq_rows(report.results.get("RabbitMQ cluster", {}))
    yield from _pacemaker_rows(report.results.get("Pacemaker status", {}))
    for host, res in sorted(report.results.get("Certificates", {}).items()):
        for item in res.get("results", []):
            path = item.get("item", "?")
            if item.get("failed") or not item.get("not_after"):
                yield Row("certificate", f"{host}:{path}", FAILED, item.get("msg", "unreadable"))
                continue
            end = datetime.datetime.strptime(item["not_after"], "%Y%m%d%H%M%SZ").replace(tzinfo=datetime.UTC)
            days = (end - now).days
            status = FAILED if days < 0 else WARNING if days < CERT_WARNING_DAYS else OK
            yield Row("certificate", f"{host}:{path}", status,
                      f"expired {-days} days ago" if days < 0 else f"valid {days} more days (until {end:%Y-%m-%d})")
    unreachable = {host: res for hosts in report.results.values() for host, res in hosts.items()
                   if res["_event"] == "runner_on_unreachable"}
    for host, res in sorted(unreachable.items()):
        yield Row("node", host, FAILED, f"unreachable: {res.get('msg', '')}"[:200])


def _answered(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {host: res for host, res in sorted(results.items()) if res["_event"] == "runner_on_ok"}


# what check.yml's "Galera state" task asks each member (bench/failover.py too)
GALERA_STATE = ("SHOW GLOBAL STATUS WHERE Variable_name IN "
                "('wsrep_local_state_comment', 'wsrep_cluster_status', 'wsrep_cluster_size')")


def galera_rows(results: dict[str, dict[str, Any]]) -> Iterator[Row]:
    """Each member: Synced in a Primary component holding every member
    (*results*: host -> the answer to GALERA_STATE, as Ansible returns it)."""
    for host, res in sorted(results.items()):
        if res["_event"] != "runner_on_ok":
            yield Row("galera", host, FAILED, (res.get("msg") or res.get("stderr") or "no answer")[:200])
            continue
        status = dict(line.split("\t", 1) for line in res.get("stdout", "").splitlines() if "\t" in line)
        state, component = status.get("wsrep_local_state_comment", "?"), status.get("wsrep_cluster_status", "?")
        size = int(status.get("wsrep_cluster_size", "0") or 0)
        detail = f"{state}, {component} component of {size} of {len(results)} members"
        if state != "Synced" or component != "Primary":
            yield Row("galera", host, FAILED, detail)
        else:
            yield Row("galera", host, OK if size == len(results) else WARNING, detail)


def rabbitmq_rows(results: dict[str, dict[str, Any]]) -> Iterator[Row]:
    """The cluster as the first broker that answered sees it: every broker
    running, no partition (*results*: host -> `rabbitmqctl -q
    cluster_status --formatter json`'s answer, as Ansible returns it)."""
    answered = _answered(results)
    if not answered:
        return
    host, res = next(iter(answered.items()))
    status = json.loads(res.get("stdout") or "{}")
    brokers = sorted(b.split("@", 1)[-1] for b in status.get("disk_nodes", []))
    running = sorted(b.split("@", 1)[-1] for b in status.get("running_nodes", []))
    partitions = status.get("partitions") or {}
    expected = sorted(results)
    missing = [b for b in expected if b not in running]
    detail = (f"{len(running)} of {len(expected)} brokers running ({', '.join(running) or 'none'}"
              f"{'; not ' + ', '.join(missing) if missing else ''}; seen from {host})")
    if partitions:
        yield Row("rabbitmq", "cluster", FAILED, f"partitioned: {json.dumps(partitions)}; {detail}")
    elif running == expected == brokers:
        yield Row("rabbitmq", "cluster", OK, detail)
    else:
        yield Row("rabbitmq", "cluster", WARNING if len(running) * 2 > len(expected) else FAILED, detail)


def _pacemaker_rows(results: dict[str, dict[str, Any]]) -> Iterator[Row]:
    """From the first member that answered crm_mon: membership and quorum,
    each VIP's holder, the HAProxy clone, the fence devices, and every
    failed action; a member that did not answer is a failure of its own."""
    for host, res in sorted(results.items()):
        if res["_event"] != "runner_on_ok":
            yield Row("pacemaker", host, FAILED, (res.get("msg") or res.get("stderr") or "no answer")[:200])
    answered = _answered(results)
    if not answered:
        return
    host, res = next(iter(answered.items()))
    try:
        # crm_mon's own output on a controller, read as root over SSH: trusted
        # (and Python's expat refuses entity expansion attacks since 3.7.1)
        root = ET.fromstring(res.get("stdout") or "<pacemaker-result/>")  # noqa: S314
    except ET.ParseError as exc:
        yield Row("pacemaker", host, FAILED, f"crm_mon's answer is not XML: {exc}")
        return
    dc = root.find("summary/current_dc")
    quorate = dc is not None and dc.get("with_quorum") == "true"
    members = root.findall("nodes/node")
    online = [n.get("name", "?") for n in members if n.get("online") == "true" and n.get("standby") != "true"]
    detail = (f"{'quorate' if quorate else 'NO QUORUM'}, {len(online)} of {len(members)} members online "
              f"({', '.join(online) or 'none'}; DC {dc.get('name', '?') if dc is not None else '?'}; "
              f"seen from {host})")
    yield Row("pacemaker", "cluster", FAILED if not quorate else OK if len(online) == len(members) else WARNING,
              detail)
    for resource in root.iter("resource"):
        agent = resource.get("resource_agent", "")
        on = [n.get("name", "?") for n in resource.findall("node")]
        failed = resource.get("failed") == "true"
        if agent == "ocf:heartbeat:IPaddr2":
            yield Row("vip", resource.get("id", "?"), OK if len(on) == 1 and not failed else FAILED,
                      f"held by {on[0]}" if len(on) == 1 else f"held by {len(on)} members ({', '.join(on)})"
                      if on else "held by no member")
        elif agent.startswith("stonith:"):
            yield Row("fence", resource.get("id", "?"), FAILED if failed or not on else OK,
                      f"{agent.removeprefix('stonith:')} {'started on ' + on[0] if on else 'stopped'}")
    for clone in root.iter("clone"):
        on = sorted(n.get("name", "?") for r in clone.findall("resource") for n in r.findall("node"))
        yield Row("pacemaker", clone.get("id", "?"), OK if len(on) == len(members) else
                  WARNING if on else FAILED, f"running on {', '.join(on) or 'no member'}")
    for failure in root.iter("failure"):
        what = ": ".join(t for t in (failure.get("exitstatus"), failure.get("exitreason")) if t)
        yield Row("pacemaker", f"{failure.get('op_key', '?')} on {failure.get('node', '?')}", FAILED,
                  f"{what or 'failed'} at {failure.get('last-rc-change', '?')}")
