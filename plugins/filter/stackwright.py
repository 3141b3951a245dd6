"""Filters shared by every Stackwright role.

``to_ini`` renders a ``{section: {key: value}}`` mapping as an INI file, the
one mechanism all OpenStack config files use: each role builds its settings
as a mapping, merges the operator's ``<role>_<file>_overrides`` into it with
``combine(recursive=True)`` and renders the result.  Lists become
comma-separated values, booleans ``true``/``false``, ``None`` drops the key
or the whole section (so an override can remove a default).

``stackwright_vlan_range`` and ``stackwright_bridge_mapping`` turn an
inventory network (group_vars ``stackwright_networks``) into the ML2 and OVS
agent settings of its provider network.

``stackwright_ceph_endpoint`` picks the address (and its network) a node's
Ceph daemons and clients use: the storage network where it has one, else
management.

``stackwright_registration_missing`` compares a service user's Keystone
token (its roles and catalog) with what the service should have, so a
re-run skips the registration tasks when nothing is missing.

``stackwright_steps`` is the role contract's dispatcher (docs/architecture.md):
given an action (deploy, reconfigure, stop) and a role part's step files in
order, it returns the steps that action runs.
"""

from __future__ import annotations

from typing import Any


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_value(v) for v in value)
    return str(value)


def to_ini(config: dict[str, dict[str, Any]]) -> str:
    out: list[str] = []
    sections = list(config)
    if "DEFAULT" in sections:  # DEFAULT first, the rest in the order given
        sections.remove("DEFAULT")
        sections.insert(0, "DEFAULT")
    for section in sections:
        if config[section] is None:
            continue
        values = config[section]
        out.append(f"[{section}]")
        for key, value in values.items():
            if value is None:
                continue
            out.append(f"{key} = {_value(value)}")
        out.append("")
    return "\n".join(out)


def vlan_range(net: dict[str, Any]) -> str:
    """ML2 network_vlan_ranges entry of a provider network: ``physnet`` for
    an external VLAN (Neutron uses only its tag), ``physnet:first:last`` for
    a VLAN tenant network."""
    return f"{net['physnet']}:{net['vlan_range']}" if net.get("vlan_range") else str(net["physnet"])


def bridge_mapping(net: dict[str, Any]) -> str:
    """OVS agent bridge_mappings entry of a provider network."""
    return f"{net['physnet']}:{net['bridge']}"


def ceph_endpoint(host: dict[str, Any]) -> dict[str, str]:
    """{address, cidr} of a node's Ceph traffic, from its hostvars."""
    networks = host.get("stackwright_node_networks") or {}
    for role in ("storage", "management"):
        for net in networks.values():
            if net.get("role") == role:
                return {"address": str(net["address"]), "cidr": str(net["cidr"])}
    raise ValueError(f"node {host.get('inventory_hostname')} has no storage or management address")


def registration_missing(token: dict[str, Any] | None, service: dict[str, Any]) -> list[str]:
    """What a service's Keystone registration lacks, judged from the token
    the service user got when it logged in to its project (Keystone puts the
    user's roles there and the catalog with every endpoint).

    ``service``: name, type, region, roles (list) and endpoints
    ({interface: url}).  No token (the login failed) means everything is
    missing.  The catalog service's description is not in a token and is
    not compared.
    """
    if not token:
        return ["the service user cannot log in"]
    missing = [f"role {r}" for r in service["roles"]
               if r not in {role.get("name") for role in token.get("roles", [])}]
    entries = [e for e in token.get("catalog", [])
               if e.get("type") == service["type"] and e.get("name") == service["name"]]
    if not entries:
        return [*missing, f"catalog service {service['name']} ({service['type']})"]
    have = {(e.get("interface"), e.get("url"), e.get("region_id") or e.get("region"))
            for e in entries[0].get("endpoints", [])}
    # Keystone fills a URL's project placeholder with the token's project
    project = (token.get("project") or {}).get("id", "")
    missing += [f"{interface} endpoint {url}" for interface, url in service["endpoints"].items()
                if (interface, _with_project(url, project), service["region"]) not in have]
    return missing


# The role contract: every service role's steps, in this order, and the steps
# each action runs.  A role part's step file is STEP.yml or PART_STEP.yml
# (nova's compute_install.yml); stop stops the part's units, which the role's
# main.yml does for every role the same way, after the precheck.
STEPS = ("precheck", "install", "config", "bootstrap", "register", "service")
ACTIONS = {
    "deploy": STEPS,
    # configuration only: write the files, restart what changed, start what is stopped
    "reconfigure": ("precheck", "config", "service"),
    "stop": ("precheck",),
}


def step_name(step: str) -> str:
    """The contract's name of a step file (compute_install -> install)."""
    return step.rsplit("_", 1)[-1]


def steps(action: str, role_steps: list[str]) -> list[str]:
    if action not in ACTIONS:
        raise ValueError(f"stackwright_action must be one of {', '.join(ACTIONS)}, not {action!r}")
    unknown = [s for s in role_steps if step_name(s) not in STEPS]
    if unknown:
        raise ValueError(f"not steps of the role contract: {', '.join(unknown)} (steps: {', '.join(STEPS)})")
    return [s for s in role_steps if step_name(s) in ACTIONS[action]]


def _with_project(url: str, project: str) -> str:
    for placeholder in ("%(project_id)s", "$(project_id)s", "%(tenant_id)s", "$(tenant_id)s"):
        url = url.replace(placeholder, project)
    return url


def running(units: list[str], services: dict[str, Any]) -> list[str]:
    """Those of *units* that run, by service_facts' *services*: a role's
    handler restarts these, and a unit not running yet is started by its
    part's service step once configured."""
    return [u for u in units if (services.get(f"{u}.service") or {}).get("state") == "running"]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "to_ini": to_ini,
            "stackwright_vlan_range": vlan_range,
            "stackwright_bridge_mapping": bridge_mapping,
            "stackwright_ceph_endpoint": ceph_endpoint,
            "stackwright_registration_missing": registration_missing,
            "stackwright_steps": steps,
            "stackwright_running": running,
        }
