"""The no-change fast path of ``stackwright deploy``.

After a complete, successful deploy Stackwright records a baseline: a digest
of everything the run was made from (the rendered inventory, the secrets,
the roles and playbooks) and, per phase and node, the state of what the phase
manages there: every file a task wrote (type, mode, owner, content digest),
every systemd unit a task managed (active, enabled), and the node's installed
packages with their versions.

The next deploy of the same inputs first probes the nodes (one read-only task
per node) and runs only the phases whose nodes differ from the baseline; when
none differs, it runs no phase at all.  What the probe cannot see (database
rows, RabbitMQ users, Keystone's catalog, Ceph's pools, OVS bridges, files a
task writes with its output hidden, such as Ceph keyrings) is converged only
by a complete run: ``deploy --full``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

BASELINE = "fastpath.json"
VERSION = 1

# modules whose result names a file they manage on the node
FILE_ACTIONS = frozenset({"template", "copy", "file", "lineinfile", "blockinfile", "replace", "assemble",
                          "ini_file", "get_url", "unarchive"})
UNIT_ACTIONS = frozenset({"systemd_service", "systemd", "service"})
# what the run is made of besides the rendered inventory and the secrets
DATA_PARTS = ("roles", "playbooks", "plugins", "ansible.cfg")


def _hash_tree(digest: Any, root: Path, label: str) -> None:
    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in paths:
        if "__pycache__" in path.parts:
            continue
        digest.update(f"{label}/{path.relative_to(root) if path != root else ''}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")


def inputs_digest(inventory_dir: Path, secrets: Path, data: Path, extravars: dict[str, Any]) -> str:
    """Changes whenever anything a deploy is made from changes."""
    digest = hashlib.sha256(f"stackwright-fastpath-{VERSION}\0".encode())
    _hash_tree(digest, inventory_dir, "inventory")
    _hash_tree(digest, secrets, "secrets")
    for part in DATA_PARTS:
        if (data / part).exists():
            _hash_tree(digest, data / part, part)
    digest.update(json.dumps(extravars, sort_keys=True).encode())
    return digest.hexdigest()


def play_phases(playbook: Path) -> dict[str, str]:
    """Play name -> phase (the play's tag) of the site playbook; plays tagged
    only ``always`` (fact gathering) belong to no phase."""
    plays = YAML(typ="safe").load(playbook.read_text()) or []
    out = {}
    for play in plays:
        tags = [t for t in play.get("tags", []) if t != "always"]
        if tags:
            out[play["name"]] = tags[0]
    return out


def phase_order(playbook: Path) -> list[str]:
    return list(dict.fromkeys(play_phases(playbook).values()))


@dataclass
class Collector:
    """Takes ansible-runner events: what each phase manages on each node, and
    the reports of the probe playbook."""

    phases_of_play: dict[str, str]
    managed: dict[str, dict[str, dict[str, set[str]]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(lambda: {"paths": set(), "units": set()})))
    probes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def handle(self, event: dict[str, Any]) -> None:
        if event.get("event") != "runner_on_ok":
            return
        data = event.get("event_data", {})
        host = data.get("host")
        res = data.get("res") or {}
        action = str(data.get("resolved_action") or data.get("task_action") or "").rsplit(".", 1)[-1]
        if not host:
            return
        if action == "stackwright_probe":
            self.probes[host] = {k: res.get(k) for k in ("paths", "units", "packages")}
            return
        phase = self.phases_of_play.get(data.get("play", ""))
        if phase is None or action not in FILE_ACTIONS | UNIT_ACTIONS:
            return
        for item in res.get("results", [res]):
            if not isinstance(item, dict) or item.get("_ansible_delegated_vars") or item.get("skipped"):
                continue  # delegated: the file is on another host (or on this workstation)
            args = (item.get("invocation") or {}).get("module_args") or {}
            if action in FILE_ACTIONS:
                path = item.get("dest") or item.get("path") or args.get("dest") or args.get("path")
                if isinstance(path, str) and path.startswith("/"):
                    self.managed[phase][host]["paths"].add(path)
            else:
                unit = item.get("name") or args.get("name")
                if isinstance(unit, str) and unit:
                    self.managed[phase][host]["units"].add(unit)

    def managed_plain(self) -> dict[str, dict[str, dict[str, list[str]]]]:
        return {phase: {host: {k: sorted(v) for k, v in things.items()} for host, things in hosts.items()}
                for phase, hosts in self.managed.items()}


Managed = dict[str, dict[str, dict[str, list[str]]]]  # phase -> host -> paths/units -> names


def merge(old: Managed, new: Managed, phases_run: Iterable[str]) -> Managed:
    """What each phase manages: from this run for the phases it ran, from the
    baseline for the phases it skipped."""
    ran = set(phases_run)
    out = {phase: hosts for phase, hosts in old.items() if phase not in ran}
    out.update({phase: hosts for phase, hosts in new.items() if phase in ran})
    return out


def probe_request(managed: Managed, hosts: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """Per node, everything any phase manages there (every node is probed,
    also one that no phase wrote a file on, for its packages)."""
    request: dict[str, dict[str, set[str]]] = {h: {"paths": set(), "units": set()} for h in hosts}
    for hosts_things in managed.values():
        for host, things in hosts_things.items():
            entry = request.setdefault(host, {"paths": set(), "units": set()})
            entry["paths"].update(things.get("paths", []))
            entry["units"].update(things.get("units", []))
    return {h: {k: sorted(v) for k, v in things.items()} for h, things in request.items()}


@dataclass
class Baseline:
    inputs: str
    phases: list[str]
    managed: Managed
    probes: dict[str, dict[str, Any]]

    def differences(self, probes: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
        """Phase -> what differs on its nodes from the baseline (nothing: the
        phase has nothing to do).  A node that did not answer, or whose
        packages changed, makes every phase it is in differ."""
        out: dict[str, list[str]] = {}
        for phase in self.phases:
            reasons: list[str] = []
            for host, things in sorted(self.managed.get(phase, {}).items()):
                then, now = self.probes.get(host), probes.get(host)
                if not then or not now:
                    reasons.append(f"{host}: not probed")
                    continue
                if then.get("packages") != now.get("packages"):
                    reasons.append(f"{host}: installed packages changed")
                for kind in ("paths", "units"):
                    for name in things.get(kind, []):
                        before = (then.get(kind) or {}).get(name)
                        after = (now.get(kind) or {}).get(name)
                        if before != after:
                            reasons.append(f"{host}: {name} {_change(kind, before, after)}")
            if reasons:
                out[phase] = reasons
        return out

    def counts(self) -> dict[str, int]:
        return {
            "nodes": len(self.probes),
            "files": sum(len(p.get("paths") or {}) for p in self.probes.values()),
            "units": sum(len(p.get("units") or {}) for p in self.probes.values()),
        }


def _change(kind: str, before: str | None, after: str | None) -> str:
    if kind == "units":
        return f"was {before}, is {after}"
    if after == "absent":
        return "was removed"
    if before == "absent":
        return "appeared"
    return "changed"


def load(work: Path) -> Baseline | None:
    try:
        raw = json.loads((work / BASELINE).read_text())
    except (OSError, ValueError):
        return None
    if raw.get("version") != VERSION:
        return None
    return Baseline(raw["inputs"], raw["phases"], raw["managed"], raw["probes"])


def save(work: Path, baseline: Baseline) -> None:
    path = work / BASELINE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"version": VERSION, "inputs": baseline.inputs, "phases": baseline.phases,
                   "managed": baseline.managed, "probes": baseline.probes}, handle, indent=1, sort_keys=True)
    tmp.replace(path)


def forget(work: Path) -> None:
    (work / BASELINE).unlink(missing_ok=True)
