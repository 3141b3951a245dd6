"""A deploy run's policy, apart from the click command: which phases run
(the no-change fast path: inputs digest, node probe, skip decision), the run
itself, the summary file and the baseline the next run compares with.

Everything here reaches the nodes through *run* (a playbook runner: the
real one is :func:`stackwright.runner.run_playbook` bound to the cloud's
inventory), so tests drive the policy with a stand-in runner
(tests/unit/test_orchestrate.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import fastpath
from .runner import RunResult

Run = Callable[..., RunResult]


@dataclass
class Request:
    cloud: str
    work: Path  # the cloud's working directory (summary, baseline, probe runs)
    inventory_dir: Path  # the rendered inventory
    secrets: Path
    data: Path  # roles, playbooks
    hosts: list[str]
    extravars: dict[str, Any]
    tags: str | None = None
    limit: str | None = None
    full: bool = False

    @property
    def complete(self) -> bool:
        """A run of every phase on every node (only those keep a baseline)."""
        return not (self.tags or self.limit)


@dataclass
class Outcome:
    result: RunResult | None  # None: nothing had to run (last-deploy.json says what was checked)


def deploy(req: Request, run: Run, say: Callable[[str], None]) -> Outcome:
    """Run site.yml, or only the phases whose nodes differ from the last
    complete deploy of the same inputs; write last-deploy.json and, after a
    complete successful run, the new baseline (forget it after a failure)."""
    site = req.data / "playbooks" / "site.yml"
    digest = fastpath.inputs_digest(req.inventory_dir, req.secrets, req.data, req.extravars)
    baseline = fastpath.load(req.work) if req.complete else None
    skip: list[str] = []
    check_phase: list[dict[str, Any]] = []
    if baseline and not req.full:
        if baseline.inputs != digest:
            say("the inventory, secrets or Stackwright changed since the last complete deploy: every phase runs")
        else:
            probes, check_s = probe(run, req.work, baseline.managed, req.hosts)
            differ = baseline.differences(probes)
            skip = [phase for phase in baseline.phases if phase not in differ]
            counts = baseline.counts()
            check_phase = [{"name": "check", "seconds": round(check_s, 1), "ok": len(probes), "changed": 0,
                            "failed": len(req.hosts) - len(probes)}]
            say(f"checked {counts['files']} files, {counts['units']} services and the installed packages on "
                f"{len(probes)} node(s) against the last complete deploy in {check_s:.0f}s")
            for phase, reasons in differ.items():
                more = f" (and {len(reasons) - 3} more)" if len(reasons) > 3 else ""
                say(f"  {phase} runs: {'; '.join(reasons[:3])}{more}")
            if not differ:
                write_summary(req.work, req.cloud, req.hosts, 0, "successful", check_s, check_phase, {}, skip)
                return Outcome(None)
            say(f"unchanged, skipped: {', '.join(skip) or 'none'}")
    say(f"deploying cloud {req.cloud!r} ({len(req.hosts)} node(s))")
    collector = fastpath.Collector(fastpath.play_phases(site))
    result = run("site.yml", secrets_file=req.secrets, limit=req.limit, tags=req.tags,
                 skip_tags=",".join(skip) or None, extravars=req.extravars, on_event=collector.handle)
    if skip:  # the skipped phases' plays start and run nothing: leave them out
        result.phases = [p for p in result.phases if p.ok or p.changed or p.failed or p.unreachable or p.skipped]
    phases = check_phase + [{"name": p.name, "seconds": round(p.seconds, 1), "ok": p.ok, "changed": p.changed,
                             "failed": p.failed + p.unreachable} for p in result.phases]
    write_summary(req.work, req.cloud, req.hosts, result.rc, result.status, result.seconds, phases,
                  result.changed_by_host, skip)
    if result.rc != 0:
        fastpath.forget(req.work)
    elif req.complete:
        order = fastpath.phase_order(site)
        managed = fastpath.merge(baseline.managed if baseline else {}, collector.managed_plain(),
                                 [p for p in order if p not in skip])
        probes, _ = probe(run, req.work, managed, req.hosts)
        if set(probes) == set(req.hosts):
            fastpath.save(req.work, fastpath.Baseline(digest, order, managed, probes))
        else:  # a node did not answer: no baseline the next run could trust
            fastpath.forget(req.work)
    return Outcome(result)


def probe(run: Run, work: Path, managed: fastpath.Managed,
          hosts: list[str]) -> tuple[dict[str, dict[str, Any]], float]:
    """Probe every node for what the phases manage there; only the nodes that
    answered are in the result."""
    collector = fastpath.Collector({})
    started = time.monotonic()
    # its own runner directory: the deploy's artifacts stay the newest there
    run("probe.yml", work=work / "probe", extravars={"stackwright_probe": fastpath.probe_request(managed, hosts)},
        on_event=collector.handle)
    return collector.probes, time.monotonic() - started


def write_summary(work: Path, cloud: str, hosts: list[str], rc: int, status: str, seconds: float,
                  phases: list[dict[str, Any]], changed_by_host: dict[str, int], skipped: list[str]) -> None:
    summary = {
        "cloud": cloud, "rc": rc, "status": status, "seconds": round(seconds, 1), "phases": phases,
        "changed_by_host": {h: changed_by_host.get(h, 0) for h in hosts},
        "skipped_phases": skipped,
    }
    (work / "last-deploy.json").write_text(json.dumps(summary, indent=2) + "\n")
