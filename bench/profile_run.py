"""Where a deploy's time went, from an ansible-runner artifact directory.

Reads the run's job events and reports wall time per task (from one task's
start to the next one's: every host's work for the task, as the operator
waits for it), summed per role and per module, plus the slowest tasks.
Used by bench/deploy.py for the no-change re-run, and by hand:

    python bench/profile_run.py INVENTORY_DIR/.stackwright/CLOUD/runner/artifacts/UUID [--top 20] [--json]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any


def _events(artifact: Path) -> list[dict[str, Any]]:
    events = [json.loads(p.read_text()) for p in (artifact / "job_events").glob("*.json")]
    return sorted(events, key=lambda e: e["counter"])


def _when(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["created"]).timestamp()


def profile(artifact: Path, top: int = 15) -> dict[str, Any]:
    """Wall time per task, role and module of one run."""
    events = _events(artifact)
    starts = [e for e in events if e["event"] in ("playbook_on_task_start", "playbook_on_play_start",
                                                   "playbook_on_stats")]
    tasks: list[dict[str, Any]] = []
    for event, following in pairwise(starts):
        if event["event"] != "playbook_on_task_start":
            continue
        data = event["event_data"]
        tasks.append({
            "task": data.get("task", ""),
            "role": data.get("role") or "(play)",
            "module": data.get("resolved_action") or data.get("task_action", ""),
            "seconds": round(_when(following) - _when(event), 3),
        })
    by_role: dict[str, float] = defaultdict(float)
    by_module: dict[str, float] = defaultdict(float)
    count_by_module: dict[str, int] = defaultdict(int)
    for t in tasks:
        by_role[t["role"]] += t["seconds"]
        by_module[t["module"]] += t["seconds"]
        count_by_module[t["module"]] += 1
    total = _when(events[-1]) - _when(events[0]) if events else 0.0
    return {
        "wall_s": round(total, 1),
        "tasks": len(tasks),
        "by_role_s": {k: round(v, 1) for k, v in sorted(by_role.items(), key=lambda kv: -kv[1])},
        "by_module": {k: {"s": round(v, 1), "tasks": count_by_module[k]}
                      for k, v in sorted(by_module.items(), key=lambda kv: -kv[1])},
        "slowest": sorted(tasks, key=lambda t: -t["seconds"])[:top],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artifact", type=Path)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = profile(args.artifact, args.top)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['wall_s']} s, {result['tasks']} tasks")
    print("per role:   " + ", ".join(f"{k} {v}" for k, v in result["by_role_s"].items()))
    print("per module:")
    for name, row in result["by_module"].items():
        print(f"  {row['s']:8.1f} s  {row['tasks']:4d} tasks  {name}")
    print("slowest tasks:")
    for t in result["slowest"]:
        print(f"  {t['seconds']:8.1f} s  {t['role']}: {t['task']} ({t['module']})")


if __name__ == "__main__":
    main()
