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
    # nor SSH's authorized_keys (public keys); the cloud CA's private key,
    # whatever carries it
    secret_words = re.compile(r"password|cookie|(?<!authorized)_keys\b|ca_key\b|privatekey_content")
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


def test_policy_rc_d_denies_only_first_starts_during_stackwright_installs(tmp_path):
    """During Stackwright's installs a service is never started by its
    package: not by a start, nor by a restart of a service that does not
    run (libapache2-mod-wsgi-py3's postinst restarts apache2); a running
    one restarts, reloads pass, an operator's own apt run is left alone.
    systemctl is a stand-in here: rabbitmq-server runs, apache2 does not."""
    import os
    import subprocess

    script = ROLES[0].parent / "common" / "files" / "policy-rc.d"
    fake = tmp_path / "systemctl"
    fake.write_text('#!/bin/sh\n[ "$3" = rabbitmq-server ]\n')
    fake.chmod(0o755)

    def rc(env: dict[str, str], *args: str) -> int:
        return subprocess.run(["sh", str(script), *args], check=False,
                              env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", **env}).returncode

    no_start = {"STACKWRIGHT_NO_START": "1"}
    assert rc(no_start, "nova-api.service", "start") == 101
    assert rc(no_start, "--quiet", "nova-api", "restart start") == 101
    assert rc(no_start, "apache2", "reload") == 0
    assert rc(no_start, "apache2", "restart") == 101  # not running: a restart would start it
    assert rc(no_start, "--quiet", "rabbitmq-server", "restart") == 0
    assert rc({}, "nova-api.service", "start") == 0  # an operator's own apt run
    assert rc({}, "apache2", "restart") == 0


def test_apt_installs_only_through_commons_install_path():
    """One install path (common's apt_install: debconf answers, no-start
    guard, dpkg retry, the background install waited for): no other task
    file runs apt, and that one leaves the first start to the role."""
    installs = [(role.name, path.name, task) for role in ROLES for path, task in _tasks(role)
                if "ansible.builtin.apt" in task]
    assert {(r, f) for r, f, _ in installs} == {("common", "apt_install.yml")}
    block = next(t for t in yaml.safe_load((ROLES[0].parent / "common" / "tasks" / "apt_install.yml").read_text())
                 if "block" in t)
    assert block["environment"]["STACKWRIGHT_NO_START"] == "1"


def test_the_packages_phase_installs_what_the_roles_install():
    """The packages phase and every role's install step install the same
    packages: those the service catalog gives the groups (stackwright_packages);
    each play's groups are groups the role's install step names."""
    from stackwright import catalog

    packages_vars = (ROLES[0].parent / "packages" / "vars" / "main.yml").read_text()
    assert "stackwright_packages" in packages_vars
    installed_by = {}  # group -> role that installs it in its install step
    for role in ROLES:
        for path, task in _tasks(role):
            spec = task.get("ansible.builtin.include_role")
            if path.name.endswith("install.yml") and spec == {"name": "common", "tasks_from": "apt_install"}:
                for group in task["vars"].get("common_apt_install_groups", []):
                    installed_by[group] = role.name
    groups = {s.group: s.role for s in catalog.deployable()}
    resolved = {}
    for group, role in installed_by.items():
        if group.startswith("{{"):  # a group variable of the role's defaults
            default = yaml.safe_load((ROLES[0].parent / role / "defaults" / "main.yml").read_text())
            group = default[group.strip("{} ")]
        resolved[group] = role
    assert resolved == groups


def test_roles_installing_on_nodes_outside_the_controllers_wait_for_the_background_install():
    """A node outside packages_foreground_groups installs the packages of
    groups other than packages_early_groups in the background: every role
    installing those waits for it, through common's apt_install, which the
    role's install step runs; the packages role knows their phases."""
    from stackwright import catalog
    from stackwright.loader import load

    defaults = yaml.safe_load((ROLES[0].parent / "packages" / "defaults" / "main.yml").read_text())
    background = set()
    for example in sorted(p for p in (ROLES[0].parent.parent / "inventories").glob("*.yml")
                          if not p.name.endswith(".secrets.yml")):
        inv = load(example, preview=True)
        members = catalog.service_groups(inv)
        for node in inv.nodes:
            groups = set(node.roles) | {g for g, hosts in members.items() if node.name in hosts}
            if groups & set(defaults["packages_foreground_groups"]):
                continue
            background |= {g for g in groups if g in members}
    background -= set(defaults["packages_early_groups"])
    assert background == {"nova_compute", "neutron_ovs_agent", "neutron_gateway", "cinder_volume"}
    packages_vars = yaml.safe_load((ROLES[0].parent / "packages" / "vars" / "main.yml").read_text())
    assert {catalog.service(g).phase for g in background} == set(packages_vars["_packages_waiting_phases"])
    first = yaml.safe_load((ROLES[0].parent / "common" / "tasks" / "apt_install.yml").read_text())[0]
    assert first["ansible.builtin.include_role"] == {"name": "packages", "tasks_from": "wait"}
