"""Compute nodes joining and leaving a running cloud: the checks before
`node add` and `node remove`, and what the cloud's APIs must forget of a
node that leaves.

The node's own deploy and what the other nodes learn are playbooks
(site.yml --limit NODE, node-peers.yml, node-remove.yml); this module is
the API side, over an openstacksdk connection (a unit test passes a fake).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .migrate import Refused, wait
from .model import Inventory

# Only compute nodes join and leave with these commands: a controller holds
# the database and the brokers (HA work), a network node the routers, a
# storage node Ceph's data.
ROLES = ("compute",)


def _node(inv: Inventory, name: str, verb: str, inventory: str) -> None:
    node = next((n for n in inv.nodes if n.name == name), None)
    if node is None:
        raise Refused(f"no node {name!r} in {inventory} (nodes: {', '.join(sorted(n.name for n in inv.nodes))})"
                      + ("; write the new node into the inventory first" if verb == "add" else
                         "; node remove takes out a node that the inventory still lists (delete its entry after)"))
    other = [r for r in node.roles if r not in ROLES]
    if other:
        raise Refused(f"{name} has the role(s) {', '.join(other)}: node {verb} handles compute nodes only. "
                      + ("A new network or storage node joins with `stackwright deploy` (every phase runs); "
                         "a control plane's controllers (1, or 3 behind VIPs) are set at its first deploy"
                         if verb == "add" else
                         "A controller, network or storage node holds the cloud's state (databases, routers, "
                         "Ceph's data): taking one out is not supported"))


def check_add(conn: Any, inv: Inventory, name: str, inventory: str) -> None:
    """Refused unless *name* is a compute node of the inventory that the
    cloud does not know yet."""
    _node(inv, name, "add", inventory)
    known = [s for s in conn.compute.services(binary="nova-compute") if s.host == name]
    if known:
        raise Refused(f"{name} is part of cloud {inv.cloud.name} already (its nova-compute is registered, "
                      f"{known[0].state}); `stackwright deploy` updates a node that is in the cloud")


def servers_on(conn: Any, name: str) -> list[Any]:
    # the SDK's filter is compute_host (the API's host); checked again here
    return sorted((s for s in conn.compute.servers(all_projects=True, compute_host=name) if s.compute_host == name),
                  key=lambda s: s.name)


def check_remove(conn: Any, inv: Inventory, name: str, inventory: str, drain: bool) -> list[Any]:
    """The servers still on the node (moved first with *drain*); Refused
    while servers live there and the caller does not drain."""
    _node(inv, name, "remove", inventory)
    held = servers_on(conn, name)
    if held and not drain:
        listed = ", ".join(f"{s.name} ({s.status})" for s in held[:5])
        listed += f" and {len(held) - 5} more" if len(held) > 5 else ""
        raise Refused(f"{name} still holds {len(held)} server(s): {listed}. Move them away first "
                      f"(`stackwright node drain`), or add --drain to do it now")
    return held


def joined(conn: Any, name: str, timeout: float = 300) -> dict[str, Any]:
    """Wait until the new node works for the cloud: its nova-compute up,
    a hypervisor of that name, its Open vSwitch agent alive."""
    def ready() -> dict[str, Any] | None:
        svc = [s for s in conn.compute.services(binary="nova-compute") if s.host == name]
        hyp = [h for h in conn.compute.hypervisors() if h.name.split(".")[0] == name]
        agents = [a for a in conn.network.agents(host=name) if a.agent_type == "Open vSwitch agent"]
        if svc and svc[0].state == "up" and svc[0].status == "enabled" and hyp and agents and agents[0].is_alive:
            return {"compute_service": "up", "hypervisor": hyp[0].name, "ovs_agent": "alive"}
        return None

    report: dict[str, Any] = wait(f"{name} to report to the cloud (nova-compute up, hypervisor, Open vSwitch "
                                  "agent)", ready, timeout, 3)
    return report


def forget(conn: Any, name: str, say: Callable[[str], None]) -> list[str]:
    """Delete what the cloud's APIs hold of the node: its network agents,
    then its compute service (Nova then drops its compute node record, its
    resource provider in Placement and its cell host mapping)."""
    done = []
    for agent in list(conn.network.agents(host=name)):
        conn.network.delete_agent(agent)
        done.append(f"network agent {agent.agent_type} deleted")
        say(f"{name}: {agent.agent_type} deleted")
    for svc in [s for s in conn.compute.services(binary="nova-compute") if s.host == name]:
        conn.compute.delete_service(svc)
        done.append("compute service deleted (with its resource provider and host mapping)")
        say(f"{name}: compute service deleted")
    return done
