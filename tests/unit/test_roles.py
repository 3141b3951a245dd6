"""Static contracts of the roles: typed inputs in sync with defaults, the
shared phase layout, no secret without no_log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "roles").iterdir() if p.is_dir())


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_argument_specs_match_defaults(role: Path):
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text()) or {}
    specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())
    # every entry point (main, or tasks_from files of shared roles)
    options = {}
    for entry in specs["argument_specs"].values():
        options.update(entry["options"])
    required = {name for name, spec in options.items() if spec.get("required")}
    assert set(defaults) == set(options) - required, f"{role.name}: defaults and argument_specs disagree"
    assert not required & set(defaults), f"{role.name}: a required argument has a default"
    for name in defaults:
        assert name.startswith(role.name + "_"), f"{name} lacks the role prefix"
        assert options[name].get("description"), f"{name} is undocumented"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_templates_carry_the_managed_header(role: Path):
    for template in (role / "templates").glob("*.j2"):
        first = template.read_text().splitlines()[0]
        assert first == "{{ ansible_managed | comment }}", template


def _tasks(role: Path):
    for path in sorted((role / "tasks").glob("*.yml")):
        for task in yaml.safe_load(path.read_text()) or []:
            yield path, task
            for inner in task.get("block", []):
                yield path, {**inner, "no_log": inner.get("no_log", task.get("no_log")),
                             "environment": {**(task.get("environment") or {}), **(inner.get("environment") or {})}}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_tasks_that_touch_secrets_are_no_log(role: Path):
    # "_keys" as a word end (fernet_keys), not the start of "_keystone_..."
    secret_words = re.compile(r"password|cookie|_keys\b")
    for path, task in _tasks(role):
        module_args = {k: v for k, v in task.items() if "." in k}
        text = yaml.safe_dump(module_args) + yaml.safe_dump(task.get("environment", {}))
        if secret_words.search(text):
            assert task.get("no_log") is True, f"{path.name}: {task.get('name')} handles a secret without no_log"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_commands_declare_changed_when(role: Path):
    for path, task in _tasks(role):
        if any(k in task for k in ("ansible.builtin.command", "ansible.builtin.shell")):
            assert "changed_when" in task or "creates" in str(task.get("args", "")), f"{path.name}: {task['name']}"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_free_form_commands_split(role: Path):
    """Ansible splits a free-form command/shell string before running it: an
    odd quote (an apostrophe in a comment) fails the task at load time."""
    from ansible.parsing.splitter import split_args

    for _path, task in _tasks(role):
        for key in ("ansible.builtin.command", "ansible.builtin.shell"):
            if isinstance(task.get(key), str):
                split_args(task[key])  # raises on unbalanced quotes or Jinja blocks


def test_policy_rc_d_denies_only_first_starts_during_stackwright_installs():
    import os
    import subprocess

    script = ROLES[0].parent / "common" / "files" / "policy-rc.d"

    def rc(env: dict[str, str], *args: str) -> int:
        return subprocess.run(["sh", str(script), *args], env={**os.environ, **env}, check=False).returncode

    assert rc({"STACKWRIGHT_NO_START": "1"}, "nova-api.service", "start") == 101
    assert rc({"STACKWRIGHT_NO_START": "1"}, "apache2", "reload") == 0
    assert rc({"STACKWRIGHT_NO_START": "1"}, "rabbitmq-server", "restart") == 0
    assert rc({}, "nova-api.service", "start") == 0  # an operator's own apt run


def test_package_installs_of_the_service_roles_leave_the_first_start_to_the_role():
    installs = []
    for role in ROLES:
        for path, task in _tasks(role):
            # common's base packages come before the policy-rc.d exists
            if role.name == "common" and path.name != "apt_install.yml":
                continue
            if "ansible.builtin.apt" in task:
                installs.append(path)
                assert (task.get("environment") or {}).get("STACKWRIGHT_NO_START") == "1", f"{path}: {task.get('name')}"
    assert len(installs) >= 15


def test_the_packages_phase_covers_every_play_that_installs_packages():
    """The packages role installs, per inventory group, the packages of the
    role (and part) that site.yml's plays for that group run: the catalog's
    package sources (rendered as stackwright_package_sources, which is what
    the role reads) map every play's groups to its role and part, and every
    part has its packages file."""
    from stackwright import catalog

    sources = catalog.package_sources()
    defaults = yaml.safe_load((ROLES[0].parent / "packages" / "defaults" / "main.yml").read_text())
    assert defaults["packages_sources"] == "{{ stackwright_package_sources }}"
    site = yaml.safe_load((ROLES[0].parent.parent / "playbooks" / "site.yml").read_text())
    parts = {"main": "", "compute": "compute", "agents": "agents", "volume": "volume"}
    covered = set()
    for play in site:
        runs = [(r, "") for r in play.get("roles", []) if r != "packages"]
        for task in play.get("tasks", []):
            spec = task.get("ansible.builtin.import_role")
            if spec:
                runs.append((spec["name"], parts[spec.get("tasks_from", "main")]))
        for role, part in runs:
            if not (ROLES[0].parent / role / "tasks" / f"packages{'_' + part if part else ''}.yml").exists():
                continue  # a role without packages (common comes first, host_network, post_deploy)
            for group in play["hosts"].split(":"):
                assert sources.get(group) == (f"{role}/{part}" if part else role), f"{play['name']}: {group}"
                covered.add(group)
    assert covered == set(sources)
    for source in sources.values():
        role, _, part = source.partition("/")
        assert (ROLES[0].parent / role / "tasks" / f"packages{'_' + part if part else ''}.yml").exists(), source


def test_roles_installing_on_nodes_outside_the_controllers_wait_for_the_background_install():
    """A node outside packages_foreground_groups installs the packages of
    sources other than packages_early_sources in the background: the role of
    every such source, on every example inventory, waits for that install
    before its own install step (its tasks/install.yml starts with the wait)."""
    from stackwright import catalog
    from stackwright.loader import load

    defaults = yaml.safe_load((ROLES[0].parent / "packages" / "defaults" / "main.yml").read_text())
    sources = catalog.package_sources()
    background = set()
    for example in sorted(p for p in (ROLES[0].parent.parent / "inventories").glob("*.yml")
                          if not p.name.endswith(".secrets.yml")):
        inv = load(example, preview=True)
        members = catalog.service_groups(inv)
        for node in inv.nodes:
            groups = set(node.roles) | {g for g, hosts in members.items() if node.name in hosts}
            if groups & set(defaults["packages_foreground_groups"]):
                continue
            background |= {sources[g] for g in groups if g in sources}
    background -= set(defaults["packages_early_sources"])
    assert background == {"nova/compute", "neutron/agents", "cinder/volume"}
    packages_vars = yaml.safe_load((ROLES[0].parent / "packages" / "vars" / "main.yml").read_text())
    waiting = packages_vars["_packages_waiting_phases"]
    assert {source.partition("/")[0] for source in background} == set(waiting)
    for source in background:
        role = source.partition("/")[0]
        first = yaml.safe_load((ROLES[0].parent / role / "tasks" / "install.yml").read_text())[0]
        assert first.get("ansible.builtin.include_role") == {"name": "packages", "tasks_from": "wait"}, role
