"""Moving a server to another compute node, live or cold: the checks that
name what is missing before anything is asked of Nova, then the move with
its progress, then what happened.

Everything goes through the cloud's APIs (openstacksdk); ``conn`` is an
``openstack.connection.Connection`` (a unit test passes a fake one).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .model import Inventory

# A target host for live migration needs 2.30, for cold migration 2.56.
MICROVERSION = "2.56"


class Refused(Exception):
    """A pre-check failed: the message says what is missing and what to do."""


@dataclass(frozen=True)
class Move:
    server_id: str
    server: str
    source: str
    target: str | None  # None: Nova's scheduler picks
    live: bool
    block: bool  # live migration copies the disk too (no shared instance storage)
    status: str  # the server's status before (a cold-migrated server keeps it)


def _services(conn: Any) -> dict[str, Any]:
    return {s.host: s for s in conn.compute.services(binary="nova-compute")}


def _usable(svc: Any) -> str | None:
    """Why a compute service cannot take a server (None: it can)."""
    if svc is None:
        return "has no nova-compute registered (deploy the node first)"
    if svc.status != "enabled":
        reason = f" ({svc.disabled_reason})" if getattr(svc, "disabled_reason", None) else ""
        return (f"has its compute service disabled{reason} "
                f"(`openstack compute service set --enable {svc.host} nova-compute`)")
    if svc.state != "up":
        return "has its compute service down"
    return None


def _compute_nodes(inv: Inventory, node: str | None = None) -> list[str]:
    """The cloud's compute nodes; Refused when *node* is not one of them."""
    computes = sorted(n.name for n in inv.nodes_with_role("compute"))
    if node is not None and node not in computes:
        raise Refused(f"{node!r} is not a compute node of cloud {inv.cloud.name} (compute nodes: "
                      f"{', '.join(computes)})")
    return computes


# The last Nova API version whose hypervisor details carry cpu_info (2.88
# removed it).
CPU_INFO_MICROVERSION = "2.87"


@dataclass(frozen=True)
class Cpu:
    model: str
    vendor: str
    features: frozenset[str]


def cpus(conn: Any) -> dict[str, Cpu]:
    """Each compute node's CPU as its libvirt reports it to Nova."""
    answer = conn.compute.get("/os-hypervisors/detail", microversion=CPU_INFO_MICROVERSION)
    out = {}
    for hyp in answer.json().get("hypervisors", []):
        info = hyp.get("cpu_info") or {}
        if isinstance(info, str):
            info = json.loads(info or "{}")
        out[hyp["hypervisor_hostname"].split(".")[0]] = Cpu(info.get("model", "?"), info.get("vendor", "?"),
                                                           frozenset(info.get("features", ())))
    return out


def cpu_guarded(inv: Inventory) -> bool:
    """Whether guests see the host's CPU (cpu_mode host-model with kvm), so
    that a live migration needs a target CPU with every feature of the
    source's; with qemu emulation (cpu_mode none) any CPU will do."""
    return inv.cloud.hypervisor != "qemu"


def cpu_mismatch(found: dict[str, Cpu], source: str, target: str) -> str | None:
    """Why *target*'s CPU cannot take a guest from *source*'s (None: it can)."""
    src, dst = found.get(source), found.get(target)
    if src is None or dst is None:
        return None
    if src.vendor != dst.vendor:
        return f"{source} has a {src.vendor} CPU, {target} a {dst.vendor} one"
    missing = sorted(src.features - dst.features)
    if missing:
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        return (f"{target}'s CPU ({dst.model}) lacks features of {source}'s ({src.model}) that its guests may "
                f"use: {', '.join(missing[:8])}{more}")
    return None


def check(conn: Any, inv: Inventory, ref: str, live: bool, to: str | None) -> Move:
    """The move to make, or Refused naming what stands in the way."""
    server = conn.compute.find_server(ref, ignore_missing=True, all_projects=True)
    if server is None:
        raise Refused(f"no server {ref!r} (by name or ID, in any project)")
    server = conn.compute.get_server(server.id)
    computes = _compute_nodes(inv, to)
    services = _services(conn)
    source = server.compute_host
    if server.task_state:
        raise Refused(f"server {server.name} is busy ({server.task_state}); wait until it is done")
    wanted = ("ACTIVE", "PAUSED") if live else ("ACTIVE", "SHUTOFF")
    if server.status not in wanted:
        how = "migrate it cold (without --live)" if live and server.status == "SHUTOFF" else "start it first"
        raise Refused(f"server {server.name} is {server.status}; a {'live' if live else 'cold'} migration needs "
                      f"it {' or '.join(wanted)}: {how}")
    # the source may be disabled (a drain disables it first), not down
    if services.get(source) is None or services[source].state != "up":
        raise Refused(f"its node {source} has its compute service down: a migration needs the source node "
                      f"running; if the node is dead, evacuate the server instead")
    if to is not None:
        if to == source:
            raise Refused(f"server {server.name} runs on {to} already")
        why = _usable(services.get(to))
        if why:
            raise Refused(f"target {to} {why}")
        cpu = cpu_mismatch(cpus(conn), source, to) if live and cpu_guarded(inv) else None
        if cpu:
            raise Refused(f"a live migration to {to} would fail: {cpu} (guests see the host's CPU: "
                          f"cpu_mode host-model). Migrate it cold, or give the cloud one CPU model for "
                          f"all its compute nodes (nova_cpu_mode: custom, nova_cpu_models)")
    elif not [h for h in computes if h != source and not _usable(services.get(h))]:
        raise Refused(f"no other compute node can take server {server.name}: "
                      + "; ".join(f"{h} {_usable(services.get(h))}" for h in computes if h != source)
                      if len(computes) > 1 else f"cloud {inv.cloud.name} has one compute node only")
    return Move(server.id, server.name, source, to, live, live and not inv.cloud.services.ceph, server.status)


def wait(what: str, probe: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """What *probe* returns once it is truthy; Refused after *timeout* s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(interval)
    raise Refused(f"timed out after {timeout:.0f}s waiting for {what}")


def _progress(conn: Any, server_id: str) -> str:
    """What Nova says of the running live migration (memory copied so far)."""
    for mig in conn.compute.server_migrations(server_id):
        total, done = mig.memory_total_bytes, mig.memory_processed_bytes
        if total:
            return f"memory {done * 100 // total}% copied"
    return ""


def drop_leftover_bindings(conn: Any, server_id: str, name: str, say: Callable[[str], None]) -> list[str]:
    """Delete the inactive port bindings of a server no move is under way
    for; the hosts they were on.

    Neutron 21 (Zed) can fail to activate a live migration's destination
    binding (neutron-api: `activate failed: UnmappedInstanceError`, racing
    the source agent's unplug report; nova-compute:
    PortBindingActivationFailed, the server in ERROR).  The inactive binding
    stays, and the server's next move fails on it: an evacuation's rebuild
    with DBDuplicateEntry on the binding's key (seen in CI's multinode run),
    a live migration to that host with a conflict.  Every caller checks the
    server has no task, so no migration owns an inactive binding then: it
    can only be such a leftover."""
    dropped = []
    for port in conn.network.ports(device_id=server_id):
        # filtered here: Neutron's bindings listing takes no status filter
        for binding in [b for b in conn.network.port_bindings(port.id) if b.status == "INACTIVE"]:
            conn.network.delete_port_binding(port.id, binding.host)
            say(f"{name}: removed port {port.id}'s inactive binding on {binding.host}, left by a failed "
                f"migration")
            dropped.append(binding.host)
    return dropped


def run(conn: Any, move: Move, say: Callable[[str], None], timeout: float = 900) -> dict[str, Any]:
    """Make the move; report progress through *say*; return what happened."""
    started = time.monotonic()
    mode = ("block live" if move.block else "live") if move.live else "cold"
    drop_leftover_bindings(conn, move.server_id, move.server, say)
    say(f"{mode} migration of {move.server} from {move.source} to {move.target or 'a node the scheduler picks'}")
    if move.live:
        conn.compute.live_migrate_server(move.server_id, host=move.target, block_migration=move.block)
    else:
        conn.compute.migrate_server(move.server_id, host=move.target)

    last = ""

    def settled() -> Any:
        nonlocal last
        server = conn.compute.get_server(move.server_id)
        if server.status == "ERROR":
            raise Refused(f"server {move.server} went to ERROR: {getattr(server, 'fault', None) or 'see nova-compute'}")
        state = f"{server.status}, {server.task_state or 'no task'} on {server.compute_host}"
        if move.live and server.task_state:
            state += f"; {_progress(conn, move.server_id)}".rstrip("; ")
        if state != last:
            say(state)
            last = state
        if server.task_state is None and (server.compute_host != move.source or server.status == "VERIFY_RESIZE"):
            return server
        if server.task_state is None and server.status in ("ACTIVE", "SHUTOFF", "PAUSED") \
                and time.monotonic() - started > 10:
            raise Refused(f"Nova left server {move.server} on {move.source}: the move failed "
                          f"(`openstack server migration list --server {move.server_id}` shows why)")
        return None

    server = wait(f"server {move.server} to move", settled, timeout)
    if server.status == "VERIFY_RESIZE":
        conn.compute.confirm_server_resize(move.server_id)
        server = wait("the confirmation", lambda: (s := conn.compute.get_server(move.server_id)).status
                       in ("ACTIVE", "SHUTOFF") and s, timeout)
    return {**asdict(move), "mode": mode, "to": server.compute_host, "status_after": server.status,
            "seconds": round(time.monotonic() - started, 1)}


# -- a whole node ---------------------------------------------------------------


def compute_service(conn: Any, inv: Inventory, node: str) -> Any:
    """The nova-compute service of a compute node of this cloud, or Refused."""
    _compute_nodes(inv, node)
    svc = _services(conn).get(node)
    if svc is None:
        raise Refused(f"{node} has no nova-compute registered (deploy the node first)")
    return svc


def drain(conn: Any, inv: Inventory, node: str, say: Callable[[str], None],
          timeout: float = 900) -> list[dict[str, Any]]:
    """Disable the node's compute service (no new servers land there), then
    move every server away: live when it runs, cold when it is shut off;
    a server in another state is left and reported.  One row per server."""
    svc = compute_service(conn, inv, node)
    if svc.status == "enabled":
        conn.compute.disable_service(svc, host=node, binary="nova-compute",
                                     disabled_reason=f"stackwright node drain {time.strftime('%Y-%m-%d %H:%M')}")
        say(f"{node}: compute service disabled, no new servers land there")
    rows = []
    # the SDK's filter is compute_host (the API's host); checked again here
    found = [s for s in conn.compute.servers(all_projects=True, compute_host=node) if s.compute_host == node]
    for server in sorted(found, key=lambda s: s.name):
        live = server.status in ("ACTIVE", "PAUSED")
        try:
            if server.status not in ("ACTIVE", "PAUSED", "SHUTOFF"):
                raise Refused(f"it is {server.status}: only running, paused or shut-off servers are moved")
            result = run(conn, check(conn, inv, server.id, live, None), say, timeout)
            rows.append({"server": server.name, "id": server.id, "result": "moved", "mode": result["mode"],
                         "to": result["to"], "seconds": result["seconds"]})
        except Refused as exc:
            say(f"{server.name}: not moved: {exc}")
            rows.append({"server": server.name, "id": server.id, "result": "not moved", "reason": str(exc)})
    return rows


# -- a dead node -------------------------------------------------------------

# What Nova evacuates (Zed: vm_state active, stopped or error).
EVACUABLE = ("ACTIVE", "SHUTOFF", "ERROR")
Power = Callable[[str], str]  # the node's fence device: "status"|"on"|"off" -> "on"|"off"


def evacuate(conn: Any, inv: Inventory, node: str, power: Power | None, fence: bool, say: Callable[[str], None],
             timeout: float = 900) -> list[dict[str, Any]]:
    """Rebuild every server of a dead compute node on the others.

    Refused unless the node is off for sure: its fence device says so (with
    *fence*, after powering it off); *power* None: the operator confirmed
    it is off (a node whose BMC died with it), and then Nova must not hear
    from it either.  Evacuating a node that still runs
    would start its servers a second time, on the same disks.  Then Nova is
    told at once (forced down, instead of waiting for missed heartbeats),
    the node is disabled so that nothing lands there when it returns, and
    the servers are rebuilt elsewhere, all at the same time; one row each."""
    svc = compute_service(conn, inv, node)
    _fenced(node, svc, power, fence, say)
    if not svc.is_forced_down:
        conn.compute.update_service_forced_down(svc, node, "nova-compute", True)
        say(f"{node}: compute service forced down")
    if svc.status == "enabled":
        conn.compute.disable_service(svc, host=node, binary="nova-compute",
                                     disabled_reason=f"stackwright node evacuate {time.strftime('%Y-%m-%d %H:%M')}")
    rows: dict[str, dict[str, Any]] = {}
    found = [s for s in conn.compute.servers(all_projects=True, compute_host=node) if s.compute_host == node]
    started = time.monotonic()
    for server in sorted(found, key=lambda s: s.name):
        row = {"server": server.name, "id": server.id, "status_before": server.status}
        why = (f"it is {server.status} with a task ({server.task_state}) its dead node will never finish; "
               f"`openstack server set --state error --auto-approve {server.id}` lets Nova evacuate it "
               f"(it comes back ACTIVE)"
               if server.task_state else
               f"it is {server.status}: Nova evacuates {', '.join(EVACUABLE)} servers"
               if server.status not in EVACUABLE else None)
        if why:
            rows[server.id] = {**row, "result": "not evacuated", "reason": why}
            continue
        drop_leftover_bindings(conn, server.id, server.name, say)
        conn.compute.evacuate_server(server.id)
        say(f"{server.name}: evacuation requested")
        rows[server.id] = {**row, "result": "pending"}
    try:
        wait(f"the servers of {node} to be rebuilt elsewhere",
             lambda: _rebuilt(conn, node, rows, started, say), timeout, interval=2)
    except Refused:
        for row in rows.values():
            if row["result"] == "pending":
                row.update(result="failed", reason=f"not rebuilt within {timeout:.0f} s")
    return list(rows.values())


def _fenced(node: str, svc: Any, power: Power | None, fence: bool, say: Callable[[str], None]) -> None:
    """Return once the node's BMC reports it off; Refused when it is on and
    *fence* does not allow powering it off."""
    if power is None:
        if svc.state == "up" and not svc.is_forced_down:
            raise Refused(f"{node}'s compute service is up: Nova still hears from it, so it is not off. Confirm "
                          f"only a node you know is off (power cords out, or its BMC says so)")
        say(f"{node}: off, as the operator confirmed (not checked by a fence device)")
        return
    if power("status") == "on":
        if not fence:
            alive = ("its compute service is up: the node works, drain it instead (`stackwright node drain`)"
                     if svc.state == "up" else "its compute service is down, but the node may still run servers")
            raise Refused(f"{node} is powered on (its BMC says so) and {alive}. Evacuating a running node starts "
                          f"its servers twice on the same disks; to power it off through its BMC first, add --fence")
        say(f"{node}: powering off through its BMC")
        if power("off") != "off" or power("status") != "off":
            raise Refused(f"{node}'s BMC did not power it off; nothing was evacuated")
    say(f"{node} is off (its BMC says so)")


def _rebuilt(conn: Any, node: str, rows: dict[str, dict[str, Any]], started: float,
             say: Callable[[str], None]) -> bool:
    """Update the pending rows from Nova; True once none is pending."""
    for sid, row in rows.items():
        if row["result"] != "pending":
            continue
        server = conn.compute.get_server(sid)
        if server.task_state or server.compute_host == node:
            if server.status == "ERROR" and not server.task_state:
                row.update(result="failed", reason=str(getattr(server, "fault", None) or "see nova-compute"))
            continue
        row.update(result="failed" if server.status == "ERROR" else "evacuated", to=server.compute_host,
                   status_after=server.status, seconds=round(time.monotonic() - started, 1))
        say(f"{row['server']}: {row['result']} to {server.compute_host}, {server.status}")
    return all(r["result"] != "pending" for r in rows.values())


def enable(conn: Any, inv: Inventory, node: str, power: Power | None = None,
           say: Callable[[str], None] = lambda _m: None, timeout: float = 300) -> list[str]:
    """Let servers land on the node again, after a drain or an evacuation;
    what was done (empty: nothing was needed).

    After an evacuation the node must be back: powered on (when it has a
    fence device) and its nova-compute reporting.  nova-compute removes
    the local remains of the servers evacuated away when it starts; that
    is awaited (Nova marks those evacuations "completed") before the
    forced-down state is lifted and the node enabled."""
    svc = compute_service(conn, inv, node)
    done = []
    if svc.is_forced_down:
        if power is not None and power("status") != "on":
            raise Refused(f"{node} is powered off: power it on first (`stackwright node power INVENTORY {node} on`)")
        stale = ("accepted", "pre-migrating", "done")

        def cleaned() -> bool:
            return not [m for m in conn.compute.migrations(source_compute=node, migration_type="evacuation")
                        if m.status in stale]

        say(f"{node}: waiting for nova-compute to remove what it held of the evacuated servers")
        wait(f"nova-compute on {node} to clean up after the evacuation (is it running?)", cleaned, timeout, 3)
        conn.compute.update_service_forced_down(svc, node, "nova-compute", False)
        wait(f"nova-compute on {node} to report", lambda: _services(conn)[node].state == "up", timeout, 2)
        done.append("evacuated servers' remains removed, forced-down state lifted")
    if svc.status != "enabled":
        conn.compute.enable_service(svc, host=node, binary="nova-compute")
        done.append("compute service enabled")
    return done
