"""The no-change fast path of `deploy`: what a run manages is read from its
events, two node reports are compared per phase, the inputs digest moves
with every input, and the probe module reports real file states."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stackwright import fastpath

REPO = Path(__file__).resolve().parents[2]
SITE = REPO / "playbooks" / "site.yml"
sys.path.insert(0, str(REPO / "plugins" / "modules"))
import stackwright_probe  # noqa: E402


def ok(play: str, action: str, res: dict, host: str = "n1") -> dict:
    return {"event": "runner_on_ok",
            "event_data": {"play": play, "host": host, "resolved_action": action, "res": res}}


def collector() -> fastpath.Collector:
    return fastpath.Collector({"Time: synchronisation with chrony": "time", "Nova: compute nodes": "nova"})


def test_the_site_playbook_has_a_phase_per_tag_and_fact_gathering_has_none():
    phases = fastpath.play_phases(SITE)
    assert "Prepare: facts" not in phases
    assert phases["Nova: compute nodes"] == "nova"
    assert fastpath.phase_order(SITE) == [
        "prepare", "packages", "network", "time", "cluster", "mariadb", "rabbitmq", "memcached", "ceph", "keystone",
        "placement", "glance", "nova", "neutron", "cinder", "horizon", "heat", "swift", "post_deploy"]


def test_files_and_units_a_phase_manages_are_read_from_the_events():
    c = collector()
    c.handle(ok("Time: synchronisation with chrony", "ansible.builtin.template",
                {"dest": "/etc/chrony/chrony.conf", "changed": False}))
    # lineinfile names its file only in the invocation
    c.handle(ok("Time: synchronisation with chrony", "ansible.builtin.lineinfile",
                {"invocation": {"module_args": {"path": "/etc/default/x"}}}))
    c.handle(ok("Time: synchronisation with chrony", "ansible.builtin.systemd_service", {"name": "chrony"}))
    # a loop: every item
    c.handle(ok("Nova: compute nodes", "ansible.builtin.copy", {"results": [
        {"dest": "/etc/nova/a"}, {"path": "/etc/nova/b"}, {"skipped": True, "item": "c"}]}, host="cmp1"))
    # delegated: the file is on another node, not on this one
    c.handle(ok("Nova: compute nodes", "ansible.builtin.copy",
                {"dest": "/tmp/key", "_ansible_delegated_vars": {"ansible_host": "localhost"}}, host="cmp1"))
    # neither a managed file nor a phase
    c.handle(ok("Nova: compute nodes", "ansible.builtin.command", {"cmd": "true"}, host="cmp1"))
    c.handle(ok("Prepare: facts", "ansible.builtin.template", {"dest": "/etc/x"}))
    c.handle({"event": "runner_on_failed", "event_data": {"play": "Nova: compute nodes", "host": "cmp1",
                                                          "resolved_action": "copy", "res": {"dest": "/y"}}})
    assert c.managed_plain() == {
        "time": {"n1": {"paths": ["/etc/chrony/chrony.conf", "/etc/default/x"], "units": ["chrony"]}},
        "nova": {"cmp1": {"paths": ["/etc/nova/a", "/etc/nova/b"], "units": []}},
    }


def test_probe_reports_are_kept_per_node():
    c = collector()
    c.handle(ok("Check", "stackwright_probe", {"paths": {"/a": "absent"}, "units": {}, "packages": "p"}))
    assert c.probes == {"n1": {"paths": {"/a": "absent"}, "units": {}, "packages": "p"}}


MANAGED: fastpath.Managed = {
    "time": {"n1": {"paths": ["/etc/chrony/chrony.conf"], "units": ["chrony"]}},
    "nova": {"n1": {"paths": ["/etc/nova/nova.conf"], "units": []},
             "n2": {"paths": ["/etc/nova/nova.conf"], "units": ["nova-compute"]}},
    "post_deploy": {},
}
PROBES = {
    "n1": {"paths": {"/etc/chrony/chrony.conf": "-rw-r--r-- 0:0 aa", "/etc/nova/nova.conf": "-rw-r----- 0:64 bb"},
           "units": {"chrony": "active enabled"}, "packages": "p1"},
    "n2": {"paths": {"/etc/nova/nova.conf": "-rw-r----- 0:64 cc"},
           "units": {"nova-compute": "active enabled"}, "packages": "p2"},
}


def baseline() -> fastpath.Baseline:
    return fastpath.Baseline("digest", ["time", "nova", "post_deploy"], MANAGED, PROBES)


def test_nothing_differs_when_the_nodes_are_as_they_were():
    assert baseline().differences(json.loads(json.dumps(PROBES))) == {}


def test_an_edited_file_a_stopped_service_and_new_packages_make_their_phases_differ():
    now = json.loads(json.dumps(PROBES))
    now["n1"]["paths"]["/etc/chrony/chrony.conf"] = "-rw-r--r-- 0:0 ff"
    assert baseline().differences(now) == {"time": ["n1: /etc/chrony/chrony.conf changed"]}

    now = json.loads(json.dumps(PROBES))
    now["n2"]["units"]["nova-compute"] = "failed enabled"
    now["n1"]["paths"]["/etc/nova/nova.conf"] = "absent"
    assert baseline().differences(now) == {"nova": [
        "n1: /etc/nova/nova.conf was removed", "n2: nova-compute was active enabled, is failed enabled"]}

    now = json.loads(json.dumps(PROBES))
    now["n2"]["packages"] = "p3"
    assert baseline().differences(now) == {"nova": ["n2: installed packages changed"]}


def test_a_node_that_did_not_answer_makes_its_phases_run():
    now = {"n1": PROBES["n1"]}
    assert baseline().differences(now) == {"nova": ["n2: not probed"]}


def test_merge_takes_the_phases_that_ran_from_the_new_run():
    new = {"nova": {"n1": {"paths": ["/etc/nova/other"], "units": []}}, "time": {"n9": {"paths": [], "units": []}}}
    merged = fastpath.merge(MANAGED, new, ["nova"])
    assert merged["nova"] == new["nova"]
    assert merged["time"] == MANAGED["time"]


def test_every_node_is_probed_for_everything_its_phases_manage():
    request = fastpath.probe_request(MANAGED, ["n1", "n2", "n3"])
    assert request == {
        "n1": {"paths": ["/etc/chrony/chrony.conf", "/etc/nova/nova.conf"], "units": ["chrony"]},
        "n2": {"paths": ["/etc/nova/nova.conf"], "units": ["nova-compute"]},
        "n3": {"paths": [], "units": []},
    }


def test_the_baseline_round_trips_and_is_private(tmp_path: Path):
    fastpath.save(tmp_path, baseline())
    assert (tmp_path / fastpath.BASELINE).stat().st_mode & 0o777 == 0o600
    loaded = fastpath.load(tmp_path)
    assert loaded == baseline()
    fastpath.forget(tmp_path)
    assert fastpath.load(tmp_path) is None


def test_a_baseline_of_another_format_is_ignored(tmp_path: Path):
    (tmp_path / fastpath.BASELINE).write_text(json.dumps({"version": 0}))
    assert fastpath.load(tmp_path) is None
    (tmp_path / fastpath.BASELINE).write_text("{not json")
    assert fastpath.load(tmp_path) is None


def test_the_inputs_digest_moves_with_every_input(tmp_path: Path):
    inventory = tmp_path / "inventory"
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "group_vars" / "all.yml").write_text("a: 1\n")
    secrets = tmp_path / "s.yml"
    secrets.write_text("p: x\n")
    data = tmp_path / "data"
    shutil.copytree(REPO / "playbooks", data / "playbooks")
    (data / "roles" / "r" / "tasks").mkdir(parents=True)
    (data / "roles" / "r" / "tasks" / "main.yml").write_text("[]\n")
    extra = {"stackwright_local_cache": "/c"}

    def digest() -> str:
        return fastpath.inputs_digest(inventory, secrets, data, extra)

    first = digest()
    assert digest() == first
    seen = {first}
    for change in (
        lambda: (inventory / "group_vars" / "all.yml").write_text("a: 2\n"),
        lambda: secrets.write_text("p: y\n"),
        lambda: (data / "roles" / "r" / "tasks" / "main.yml").write_text("[{}]\n"),
        lambda: (data / "roles" / "r" / "templates").mkdir() or (data / "roles" / "r" / "templates" / "t.j2")
        .write_text(""),
        lambda: extra.update(stackwright_local_cache="/d"),
    ):
        change()
        now = digest()
        assert now not in seen
        seen.add(now)


def test_path_state_changes_with_content_mode_owner_and_link_target(tmp_path: Path):
    f = tmp_path / "f"
    assert stackwright_probe.path_state(str(f)) == "absent"
    f.write_text("a")
    first = stackwright_probe.path_state(str(f))
    sha256_of_a = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
    assert first.startswith("-rw") and first.endswith(f" {sha256_of_a}")
    f.write_text("b")
    assert stackwright_probe.path_state(str(f)) != first
    second = stackwright_probe.path_state(str(f))
    f.chmod(0o600)
    assert stackwright_probe.path_state(str(f)) != second
    link = tmp_path / "l"
    link.symlink_to("f")
    assert stackwright_probe.path_state(str(link)).endswith("-> f")
    d = tmp_path / "d"
    d.mkdir()
    before = stackwright_probe.path_state(str(d))
    (d / "inside").write_text("x")
    assert stackwright_probe.path_state(str(d)) == before, "a directory's entries are not its state"


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs a Debian host")
def test_the_probe_playbook_runs_the_module_for_real(tmp_path: Path):
    target = tmp_path / "conf"
    target.write_text("x = 1\n")
    request = {"localhost": {"paths": [str(target), str(tmp_path / "gone")], "units": []}}
    env = dict(os.environ, ANSIBLE_LIBRARY=str(REPO / "plugins" / "modules"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_CACHE_PLUGIN_CONNECTION=str(tmp_path / "facts"))
    bindir = Path(sys.executable).parent
    out = subprocess.run(
        [str(bindir / "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", json.dumps({"stackwright_probe": request, "ansible_python_interpreter": sys.executable}),
         str(REPO / "playbooks" / "probe.yml")],
        capture_output=True, text=True, env=env, check=True, cwd=tmp_path,
    ).stdout
    res = json.loads(out)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert res["changed"] is False
    assert res["paths"][str(tmp_path / "gone")] == "absent"
    assert res["paths"][str(target)] == stackwright_probe.path_state(str(target))
    assert len(res["packages"]) == 64


def test_deploy_help_names_every_phase_of_the_site_playbook():
    from click.testing import CliRunner

    from stackwright.main import cli

    out = CliRunner().invoke(cli, ["deploy", "--help"], terminal_width=400).output
    tags_help = next(line for line in out.splitlines() if "--tags" in line)
    named = {w.strip(" ,().") for w in tags_help.split("comma-separated", 1)[1].split(",")}
    assert named == set(fastpath.phase_order(SITE))
