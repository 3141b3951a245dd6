"""Validate + render time and peak memory for generated inventories of 10,
100 and 1,000 nodes (figures, not pass/fail).

    python bench/inventory_scale.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIZES = (10, 100, 1000)


def generate(n: int) -> str:
    """A valid, deployable inventory: one controller (several are refused
    until HA lands; figures before 2026-12-01 had 3 and the VIPs), 2 network
    nodes, the rest compute and storage nodes, each with a bonded tenant NIC
    pair."""
    lines = [
        "cloud: {name: scale, services: {ceph: true}}",
        "networks:",
        "  - {name: mgmt, role: management, cidr: 10.0.0.0/16}",
        "  - {name: api, role: api, cidr: 10.4.0.0/16}",
        "  - {name: tenant, role: tenant, cidr: 10.1.0.0/16}",
        "  - {name: ext, role: external, cidr: 10.2.0.0/16, gateway: 10.2.0.1}",
        "  - {name: storage, role: storage, cidr: 10.3.0.0/16, vlan: 30}",
        "nodes:",
    ]
    for i in range(n):
        a, b = divmod(i + 20, 250)
        role = "controller" if i < 1 else "network" if i < 3 else "storage" if i % 10 == 9 else "compute"
        lines += [
            f"  - name: n{i}",
            f"    roles: [{role}]",
            "    nics: [{name: eth0}, {name: eth1}, {name: eth2}, {name: eth3}]",
            "    bonds: [{name: bond0, members: [eth1, eth2], provider: ovs, mode: balance-tcp, lacp: active}]",
            "    networks:",
            f"      mgmt: {{interface: eth0, address: 10.0.{a}.{b + 1}}}",
            f"      storage: {{interface: bond0, address: 10.3.{a}.{b + 1}}}",
        ]
        if role == "controller":
            lines.append(f"      api: {{interface: eth0, address: 10.4.{a}.{b + 1}}}")
        if role in ("compute", "network"):
            lines.append(f"      tenant: {{interface: bond0, address: 10.1.{a}.{b + 1}}}")
        if role == "network":
            lines.append("      ext: {interface: eth3}")
    return "\n".join(lines) + "\n"


PROBE = """
import resource, sys, time, pathlib
t0 = time.perf_counter()
from stackwright.loader import load
from stackwright.render import render
t1 = time.perf_counter()
inv = load(sys.argv[1])
t2 = time.perf_counter()
render(inv, pathlib.Path(sys.argv[2]))
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure(n: int, workdir: Path) -> dict[str, float]:
    path = workdir / f"scale-{n}.yml"
    path.write_text(generate(n))
    out = subprocess.run([sys.executable, "-c", PROBE, str(path), str(workdir / f"out-{n}")], check=True,
                         capture_output=True, text=True).stdout.split()
    imports, validate, render, rss_kib = (float(x) for x in out)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "stackwright", "validate", str(path)], check=True, capture_output=True)
    cli = time.perf_counter() - start
    return {"nodes": n, "validate_s": round(validate, 3), "render_s": round(render, 3),
            "validate_plus_render_s": round(validate + render, 3), "import_s": round(imports, 3),
            "cli_validate_wall_s": round(cli, 3), "peak_rss_mib": round(rss_kib / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(n, Path(tmp)) for n in SIZES]
    print(f"{'nodes':>6} {'validate':>9} {'render':>8} {'v+r':>7} {'cli wall':>9} {'peak RSS':>9}")
    for r in rows:
        print(f"{r['nodes']:>6} {r['validate_s']:>8.3f}s {r['render_s']:>7.3f}s {r['validate_plus_render_s']:>6.3f}s "
              f"{r['cli_validate_wall_s']:>8.3f}s {r['peak_rss_mib']:>6.1f}MiB")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": {"python": platform.python_version(), "cpus": _cpus()},
                                         "inventory_scale": rows}, indent=2) + "\n")


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
