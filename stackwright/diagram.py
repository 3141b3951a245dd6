"""Topology picture of a plan: nodes (boxes) with their NICs, bonds and OVS
bridges, wired to the networks they carry.  Written as Graphviz DOT and
rendered to SVG/PNG by Debian's `dot`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

ROLE_COLOURS = {
    "management": "#4c78a8", "api": "#54a24b", "tenant": "#f58518", "external": "#e45756",
    "storage": "#b279a2", "admin": "#9d755d",
}


def _q(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def to_dot(plan: dict[str, Any], networks: dict[str, dict[str, Any]]) -> str:
    out = [
        f"graph {_q(plan['cloud'])} {{",
        "  graph [rankdir=LR, fontname=Helvetica, fontsize=11, nodesep=0.25, ranksep=1.1];",
        "  node [fontname=Helvetica, fontsize=10, shape=box, style=rounded];",
        "  edge [fontname=Helvetica, fontsize=9];",
    ]
    for name, net in networks.items():
        colour = ROLE_COLOURS.get(net["role"], "#888888")
        label = f"{name}\\n{net['role']} {net['cidr']}" + (f"\\nvlan {net['vlan']}" if net.get("vlan") else "")
        out.append(f"  {_q('net:' + name)} [label={_q(label)}, shape=ellipse, style=filled, "
                   f"fillcolor={_q(colour)}, fontcolor=white];")
    for node in plan["nodes"]:
        nid = node["name"]
        out.append(f"  subgraph {_q('cluster_' + nid)} {{")
        out.append(f"    label={_q(nid + ' (' + ', '.join(node['roles']) + ')')}; style=rounded; color=\"#555555\";")
        seen: set[str] = set()

        def box(key: str, label: str, shape: str = "box", _seen: set[str] = seen, _nid: str = nid) -> str:
            ident = f"{_nid}:{key}"
            if ident not in _seen:
                _seen.add(ident)
                out.append(f"    {_q(ident)} [label={_q(label)}, shape={shape}];")
            return ident

        edges: list[str] = []
        for link in node["links"]:
            nic_ids = [box("nic:" + n, n + (" (ssh)" if node["ssh_via"] and n in node["ssh_via"].split("+") else ""))
                       for n in link["nics"]]
            last = nic_ids
            if link["bond"]:
                b = link["bond"]
                bond_id = box("bond:" + b["name"], f"{b['name']}\\n{b['provider']} {b['mode']}", "hexagon")
                edges += [f"  {_q(n)} -- {_q(bond_id)};" for n in nic_ids]
                last = [bond_id]
            for bridge in link["bridges"]:
                br_id = box("br:" + bridge, bridge, "component")
                edges += [f"  {_q(n)} -- {_q(br_id)};" for n in last]
                last = [br_id]
            label = (link["address"] or "") + (f" vlan {link['vlan']}" if link["vlan"] else "")
            colour = ROLE_COLOURS.get(link["role"], "#888888")
            edges += [f"  {_q(n)} -- {_q('net:' + link['network'])} [label={_q(label)}, color={_q(colour)}, "
                      "penwidth=2];" for n in last]
        out.append("  }")
        out.extend(dict.fromkeys(edges))
    out.append("}")
    return "\n".join(out) + "\n"


def render(dot: str, target: Path) -> None:
    """Write DOT, or SVG/PNG through Graphviz's `dot`, by the target's suffix."""
    fmt = target.suffix.lstrip(".").lower()
    if fmt in ("dot", "gv"):
        target.write_text(dot)
        return
    exe = shutil.which("dot")
    if exe is None:
        raise FileNotFoundError("Graphviz `dot` is not installed (apt-get install graphviz), or use a .dot target")
    subprocess.run([exe, f"-T{fmt}", "-o", str(target)], input=dot, text=True, check=True, capture_output=True)
