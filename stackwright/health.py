"""`stackwright check`: the health of a running cloud, one row per thing
looked at, each ok, warning or failed with what was seen.

Two sources: the cloud's APIs (openstacksdk: every endpoint of the catalog
answers, Nova's services and hypervisors, Neutron's agents, Cinder's
services, all against what the service catalog says each node runs), and
the nodes themselves through playbooks/check.yml (Ceph's health, the
message broker's and the database's liveness, and the expiry of the
certificates Stackwright made).  Nothing is changed anywhere.
"""

from __future__ import annotations

import datetime
import json
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
        return requests.get(url, timeout=10).status_code

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
