"""Moving a server to another compute node, live or cold: the checks that
name what is missing before anything is asked of Nova, then the move with
its progress, then what happened.

Everything goes through the cloud's APIs (openstacksdk); ``conn`` is an
``openstack.connection.Connection`` (a unit test passes a fake one).
"""

from __future__ import annotations

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


def run(conn: Any, move: Move, say: Callable[[str], None], timeout: float = 900) -> dict[str, Any]:
    """Make the move; report progress through *say*; return what happened."""
    started = time.monotonic()
    mode = ("block live" if move.block else "live") if move.live else "cold"
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


def enable(conn: Any, inv: Inventory, node: str) -> bool:
    """Let servers land on the node again; False when it was enabled."""
    svc = compute_service(conn, inv, node)
    if svc.status == "enabled":
        return False
    conn.compute.enable_service(svc, host=node, binary="nova-compute")
    return True
