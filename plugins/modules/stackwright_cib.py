#!/usr/bin/python
"""Make a pacemaker cluster's configuration what the role declares: cluster
options, resource defaults, and the whole resources and constraints
sections, declared as data (the role's YAML) and written as the CIB's XML
with ids derived from the names.

Why a module of our own: community.general's pacemaker modules create a
resource but never correct one whose options changed, and properties and
constraints need pcs commands with hand-written change detection.  The CIB
is XML, so the declared sections are compared with the live ones as
canonical XML (attribute order and white space do not count) and a section
is replaced, with Pacemaker's own cibadmin, only when it differs: one
atomic update, after which pacemaker moves only what changed.  Constraints
whose id starts with ``cli-`` are the operator's (``pcs resource move``,
``crm_resource --ban``) and are kept.  Options go through crm_attribute.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: stackwright_cib
short_description: Declare a pacemaker cluster's options, resources and constraints
description:
  - Compares with the live CIB and changes only what differs. Supports check mode.
options:
  properties:
    description: Cluster options (crm_config), name to value.
    type: dict
    default: {}
  rsc_defaults:
    description: Resource defaults (meta attributes), name to value.
    type: dict
    default: {}
  resources:
    description:
      - Every resource, in order. Each has id, class, type, optional provider, params (name to value),
        ops (a list of name, interval and optional timeout) and clone (run on every member).
    type: list
    elements: dict
    required: true
  constraints:
    description:
      - Every constraint but the operator's (cli-*). Each has constraint (location, colocation or
        order), id, and the attributes of the element (rsc and node and score; rsc, with-rsc and score;
        first, then and kind).
    type: list
    elements: dict
    required: true
"""

RETURN = r"""
changes:
  description: What was changed (or, in check mode, would be).
  type: list
  elements: str
  returned: always
"""

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from ansible.module_utils.basic import AnsibleModule

OPERATOR = "cli-"  # constraints that `pcs resource move|ban` and crm_resource add


def canonical(elem: ET.Element) -> str:
    """*elem* as canonical XML, white space between elements dropped."""
    return ET.canonicalize(ET.tostring(elem, encoding="unicode"), strip_text=True)


def nvpairs(cib: ET.Element, path: str) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in cib.iterfind(f"{path}//nvpair")}


def resources_xml(declared: list[dict[str, Any]]) -> ET.Element:
    """The resources section for *declared*: each a primitive (in a clone
    when it says so), its params and operations, ids made from its id."""
    section = ET.Element("resources")
    for res in declared:
        rid = res["id"]
        parent = ET.SubElement(section, "clone", id=f"{rid}-clone") if res.get("clone") else section
        attrs = {"id": rid, "class": res["class"]}
        if res.get("provider"):
            attrs["provider"] = res["provider"]
        attrs["type"] = res["type"]
        primitive = ET.SubElement(parent, "primitive", attrs)
        if res.get("params"):
            params = ET.SubElement(primitive, "instance_attributes", id=f"{rid}-params")
            for name, value in res["params"].items():
                ET.SubElement(params, "nvpair", id=f"{rid}-{name}", name=name, value=str(value))
        if res.get("ops"):
            ops = ET.SubElement(primitive, "operations")
            for op in res["ops"]:
                attrs = {"id": f"{rid}-{op['name']}-{op['interval']}", "name": op["name"], "interval": op["interval"]}
                if op.get("timeout"):
                    attrs["timeout"] = op["timeout"]
                ET.SubElement(ops, "op", attrs)
    return section


KINDS = {"location": "rsc_location", "colocation": "rsc_colocation", "order": "rsc_order"}


def constraints_xml(declared: list[dict[str, Any]], module: AnsibleModule) -> ET.Element:
    section = ET.Element("constraints")
    for con in declared:
        con = dict(con)
        kind = con.pop("constraint", None)
        if kind not in KINDS or "id" not in con:
            module.fail_json(msg=f"a constraint needs an id and a constraint of {sorted(KINDS)}: {con}")
        if str(con["id"]).startswith(OPERATOR):
            module.fail_json(msg=f"constraint ids starting with {OPERATOR} are the operator's: {con['id']}")
        ET.SubElement(section, KINDS[kind], {k: str(v) for k, v in con.items()})
    return section


def options(cib: ET.Element, p: dict[str, Any], check: bool, run: Callable[..., str]) -> list[str]:
    """Set the cluster options and resource defaults that differ."""
    changes = []
    for kind, values in (("crm_config", p["properties"]), ("rsc_defaults", p["rsc_defaults"])):
        live = nvpairs(cib, f"configuration/{kind}")
        for name, value in sorted(values.items()):
            if live.get(name) != str(value):
                changes.append(f"{kind} {name}={value}")
                if not check:
                    run("crm_attribute", "--type", kind, "--name", name, "--update", str(value))
    return changes


def section(live: ET.Element | None, wanted: ET.Element, scope: str, check: bool, run: Callable[..., str]) -> bool:
    """Replace a section of the CIB with *wanted* when it differs, keeping
    the operator's constraints (cli-*); True when it differed."""
    kept = [e for e in (live if live is not None else []) if e.get("id", "").startswith(OPERATOR)]
    ours = ET.Element(scope)
    ours.extend(e for e in (live if live is not None else []) if not e.get("id", "").startswith(OPERATOR))
    if canonical(ours) == canonical(wanted):
        return False
    if not check:
        wanted.extend(kept)
        run("cibadmin", "--replace", "--scope", scope, "--xml-pipe", data=ET.tostring(wanted, "unicode"))
    return True


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "properties": {"type": "dict", "default": {}},
            "rsc_defaults": {"type": "dict", "default": {}},
            "resources": {"type": "list", "elements": "dict", "required": True},
            "constraints": {"type": "list", "elements": "dict", "required": True},
        },
        supports_check_mode=True,
    )
    p: dict[str, Any] = module.params

    def run(*args: str, data: str | None = None) -> str:
        rc, out, err = module.run_command(list(args), data=data, binary_data=data is not None)
        if rc != 0:
            module.fail_json(msg=f"{' '.join(args)} failed ({rc}): {err.strip() or out.strip()}")
        return str(out)

    # the cluster's own CIB, from its local tool: trusted input
    cib = ET.fromstring(run("cibadmin", "--query"))  # noqa: S314
    changes = options(cib, p, module.check_mode, run)
    live = cib.find("configuration/resources")
    if section(live, resources_xml(p["resources"]), "resources", module.check_mode, run):
        changes.append("resources")
    if section(cib.find("configuration/constraints"), constraints_xml(p["constraints"], module), "constraints",
               module.check_mode, run):
        changes.append("constraints")
    module.exit_json(changed=bool(changes), changes=changes)


if __name__ == "__main__":
    main()
