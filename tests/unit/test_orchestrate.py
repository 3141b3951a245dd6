"""The deploy policy (stackwright/orchestrate.py) driven by a stand-in
runner: a two-node cloud whose files and services live in a dict.  The
runner answers site.yml with the events a real run sends (what each phase
manages) and probe.yml with the nodes' state; the policy decides what runs,
what is skipped, what is written and what is forgotten."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stackwright import fastpath, orchestrate
from stackwright.paths import data_dir
from stackwright.runner import Phase, RunResult

HOSTS = ["n1", "n2"]


class Cloud:
    """The nodes (paths -> content digest, units -> state, packages digest)
    and the runs made against them."""

    def __init__(self) -> None:
        self.nodes = {h: {"paths": {}, "units": {}, "packages": "p1"} for h in HOSTS}
        self.runs: list[tuple[str, dict[str, Any]]] = []
        self.rc = 0

    def _event(self, on_event: Any, play: str, host: str, action: str, res: dict[str, Any]) -> None:
        on_event({"event": "runner_on_ok",
                  "event_data": {"play": play, "host": host, "resolved_action": action, "res": res}})

    def __call__(self, playbook: str, on_event: Any = None, **kw: Any) -> RunResult:
        self.runs.append((playbook, kw))
        if playbook == "probe.yml":
            for host in HOSTS:
                node = self.nodes[host]
                want = kw["extravars"]["stackwright_probe"][host]
                self._event(on_event, "Probe", host, "stackwright_probe", {
                    "paths": {p: node["paths"].get(p, "absent") for p in want["paths"]},
                    "units": {u: node["units"].get(u, "absent") for u in want["units"]},
                    "packages": node["packages"]})
            return RunResult(0, "successful", [], [], {}, 1.0, Path("/nowhere"))
        skip = set((kw.get("skip_tags") or "").split(","))
        if "time" not in skip:  # chrony's phase writes its file and starts it on both nodes
            for host in HOSTS:
                self.nodes[host]["paths"]["/etc/chrony/chrony.conf"] = "good"
                self.nodes[host]["units"]["chrony"] = "active"
                self._event(on_event, "Time: synchronisation with chrony", host, "ansible.builtin.template",
                            {"dest": "/etc/chrony/chrony.conf"})
                self._event(on_event, "Time: synchronisation with chrony", host, "ansible.builtin.systemd_service",
                            {"name": "chrony"})
        if "memcached" not in skip:
            self.nodes["n1"]["units"]["memcached"] = "active"
            self._event(on_event, "Memcached: caches", "n1", "ansible.builtin.systemd_service", {"name": "memcached"})
        phases = [Phase("time", 0.0, 1.0, ok=4, changed=1), Phase("memcached", 1.0, 2.0, ok=1)]
        return RunResult(self.rc, "successful" if self.rc == 0 else "failed", phases, [], {"n1": 1}, 2.0,
                         Path("/nowhere"))


def _request(tmp_path: Path, **kw: Any) -> orchestrate.Request:
    if not (tmp_path / "inventory").exists():
        (tmp_path / "inventory").mkdir()
        (tmp_path / "inventory" / "hosts.yml").write_text("all: {}\n")
        (tmp_path / "secrets.yml").write_text("x: y\n")
    return orchestrate.Request(cloud="t", work=tmp_path, inventory_dir=tmp_path / "inventory",
                               secrets=tmp_path / "secrets.yml", data=data_dir(), hosts=HOSTS, extravars={}, **kw)


def _deploy(tmp_path: Path, cloud: Cloud, **kw: Any) -> tuple[orchestrate.Outcome, list[str]]:
    said: list[str] = []
    cloud.runs.clear()
    return orchestrate.deploy(_request(tmp_path, **kw), cloud, said.append), said


def _site_runs(cloud: Cloud) -> list[dict[str, Any]]:
    return [kw for playbook, kw in cloud.runs if playbook == "site.yml"]


def test_first_deploy_runs_every_phase_and_keeps_a_baseline(tmp_path):
    cloud = Cloud()
    _, said = _deploy(tmp_path, cloud)
    assert [kw["skip_tags"] for kw in _site_runs(cloud)] == [None]
    assert said == ["deploying cloud 't' (2 node(s))"]
    baseline = fastpath.load(tmp_path)
    assert baseline is not None
    assert baseline.managed["time"]["n2"] == {"paths": ["/etc/chrony/chrony.conf"], "units": ["chrony"]}
    summary = json.loads((tmp_path / "last-deploy.json").read_text())
    assert (summary["rc"], summary["skipped_phases"], summary["changed_by_host"]) == (0, [], {"n1": 1, "n2": 0})
    assert [p["name"] for p in summary["phases"]] == ["time", "memcached"]


def test_nothing_changed_runs_nothing(tmp_path):
    cloud = Cloud()
    _deploy(tmp_path, cloud)
    outcome, said = _deploy(tmp_path, cloud)
    assert outcome.result is None
    assert _site_runs(cloud) == []
    assert said[0].startswith("checked 2 files, 3 services and the installed packages on 2 node(s)")
    summary = json.loads((tmp_path / "last-deploy.json").read_text())
    assert [p["name"] for p in summary["phases"]] == ["check"]
    assert "time" in summary["skipped_phases"] and "memcached" in summary["skipped_phases"]


def test_an_edited_file_runs_its_phase_only_and_says_why(tmp_path):
    cloud = Cloud()
    _deploy(tmp_path, cloud)
    cloud.nodes["n2"]["paths"]["/etc/chrony/chrony.conf"] = "edited"
    _, said = _deploy(tmp_path, cloud)
    skip = _site_runs(cloud)[0]["skip_tags"].split(",")
    assert "time" not in skip and {"memcached", "nova", "prepare"} <= set(skip)
    assert "  time runs: n2: /etc/chrony/chrony.conf changed" in said
    assert cloud.nodes["n2"]["paths"]["/etc/chrony/chrony.conf"] == "good"
    # the run put it back: the next deploy has nothing to do
    assert _deploy(tmp_path, cloud)[0].result is None


def test_changed_packages_run_every_phase_of_that_node(tmp_path):
    cloud = Cloud()
    _deploy(tmp_path, cloud)
    cloud.nodes["n1"]["packages"] = "p2"
    _, said = _deploy(tmp_path, cloud)
    skip = _site_runs(cloud)[0]["skip_tags"].split(",")
    assert "time" not in skip and "memcached" not in skip
    assert "  memcached runs: n1: installed packages changed" in said


def test_a_failed_run_forgets_the_baseline(tmp_path):
    cloud = Cloud()
    _deploy(tmp_path, cloud)
    cloud.rc = 2
    cloud.nodes["n1"]["units"]["memcached"] = "failed"
    outcome, _ = _deploy(tmp_path, cloud)
    assert outcome.result is not None and outcome.result.rc == 2
    assert fastpath.load(tmp_path) is None
    assert json.loads((tmp_path / "last-deploy.json").read_text())["rc"] == 2
    cloud.rc = 0
    _deploy(tmp_path, cloud)  # no baseline: every phase runs
    assert [kw["skip_tags"] for kw in _site_runs(cloud)] == [None]


def test_full_and_tags_run_everything_asked_and_tags_keep_no_baseline(tmp_path):
    cloud = Cloud()
    _deploy(tmp_path, cloud)
    _deploy(tmp_path, cloud, full=True)
    assert [kw["skip_tags"] for kw in _site_runs(cloud)] == [None]
    before = (tmp_path / fastpath.BASELINE).read_bytes()
    _deploy(tmp_path, cloud, tags="time")
    assert [(kw["tags"], kw["skip_tags"]) for kw in _site_runs(cloud)] == [("time", None)]
    assert not [p for p, _ in cloud.runs if p == "probe.yml"]  # a partial run neither reads nor writes one
    assert (tmp_path / fastpath.BASELINE).read_bytes() == before


def test_changed_inputs_run_every_phase(tmp_path):
    cloud = Cloud()
    _deploy(tmp_path, cloud)
    (tmp_path / "inventory" / "hosts.yml").write_text("all: {children: {}}\n")
    _, said = _deploy(tmp_path, cloud)
    assert said[0] == ("the inventory, secrets or Stackwright changed since the last complete deploy: "
                       "every phase runs")
    assert [kw["skip_tags"] for kw in _site_runs(cloud)] == [None]
