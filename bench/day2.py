#!/usr/bin/env python3
"""Backup, restore, node add and node remove on a deployed cloud (figures,
never pass/fail), each through the CLI as an operator runs it.

- backup: `stackwright backup --format json`, --runs times: seconds (the
  whole command, and the nodes' part: mariadb-backup, the keys) and the
  archive's size; the archives are deleted afterwards except the first;
- restore: `stackwright restore --yes --no-verify` of the first archive,
  --runs times: seconds until the services that use the databases answer
  again (restore.yml waits for Keystone);
- with --node NODE (a compute node written into the inventory, its lab
  node up, not part of the cloud): `node add` then `node remove`, --runs
  times: seconds of each (the first add installs the node's packages from
  the lab's warm apt cache; later adds find them installed).

Usage (as root, after `stackwright deploy` and with the lab up):
    python bench/day2.py INVENTORY [--runs 3] [--node cmp3]
Results go to bench/results/day2.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def stackwright(*args: str) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "stackwright", *args], capture_output=True, text=True,
                          cwd=REPO, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"stackwright {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def figures(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1), "runs": [round(v, 1) for v in values]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inventory", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--node", help="a compute node of the inventory that is not part of the cloud yet")
    args = parser.parse_args()
    inventory = str(args.inventory.resolve())
    out: dict[str, Any] = {"inventory": args.inventory.name, "runs": args.runs}

    backups, nodes_part, sizes, archives = [], [], [], []
    for _ in range(args.runs):
        seconds, stdout = stackwright("backup", "--format", "json", inventory)
        made = json.loads(stdout)
        backups.append(seconds)
        nodes_part.append(made["nodes_seconds"])
        sizes.append(made["bytes"])
        archives.append(Path(made["archive"]))
        print(f"backup: {seconds:.1f} s, {made['bytes'] / 1e6:.1f} MB", flush=True)
    out["backup_seconds"], out["backup_nodes_seconds"] = figures(backups), figures(nodes_part)
    out["archive_bytes"] = int(statistics.median(sizes))
    for extra in archives[1:]:
        extra.unlink()

    restores = []
    for _ in range(args.runs):
        seconds, _out = stackwright("restore", "--yes", "--no-verify", inventory, str(archives[0]))
        restores.append(seconds)
        print(f"restore: {seconds:.1f} s", flush=True)
    out["restore_seconds"] = figures(restores)

    if args.node:
        adds, removes = [], []
        for _ in range(args.runs):
            seconds, _out = stackwright("node", "add", "--format", "json", inventory, args.node)
            adds.append(seconds)
            print(f"node add: {seconds:.1f} s", flush=True)
            seconds, _out = stackwright("node", "remove", "--format", "json", inventory, args.node)
            removes.append(seconds)
            print(f"node remove: {seconds:.1f} s", flush=True)
        out["node_add_seconds"], out["node_remove_seconds"] = figures(adds), figures(removes)

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "day2.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
