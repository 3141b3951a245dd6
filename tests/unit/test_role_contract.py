"""The role contract (docs/architecture.md), enforced over every role.

A service role (one that a catalog service names) has the same shape as
every other: each part (main.yml, and a tasks_from entry point such as
nova's compute.yml) is the same dispatcher over the contract's steps, its
step files come in the contract's order, its units come from the service
catalog, restarts go through handlers fed by those units, it installs
through common's apt_install, migrates schemas through openstack_service's
db_sync, registers in Keystone through openstack_service's register and runs
an API under uwsgi through openstack_service's uwsgi.  The other roles say
here why they are not service roles.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackwright import catalog

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
# the filter plugin (plugins/filter/stackwright.py) is the contract's dispatcher
_spec = importlib.util.spec_from_file_location("stackwright_filters", REPO / "plugins" / "filter" / "stackwright.py")
assert _spec and _spec.loader
filters = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(filters)

SERVICE_ROLES = sorted({s.role for s in catalog.deployable()})
NOT_SERVICE_ROLES = {
    "common": "the prepare phase (every node's base); holds the shared install, debconf and stop steps",
    "host_network": "the network phase: links, bonds, VLANs and bridges of every node, applied with rollback",
    "packages": "the packages phase: every node's packages in one transaction, from the catalog",
    "openstack_service": "a library of the OpenStack services' shared steps (database, db_sync, register, uwsgi)",
    "post_deploy": "the final phase: flavors, images and networks through the cloud's APIs",
    "pki": "a library entry point: a node's key and the certificate the cloud's CA signs for it",
}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _tasks(role: str):
    """Every task (and task of a block) of a role's task files."""
    for path in sorted((ROLES / role / "tasks").glob("*.yml")):
        stack = list(_load(path) or [])
        while stack:
            task = stack.pop(0)
            yield path, task
            stack[:0] = task.get("block", []) + task.get("rescue", []) + task.get("always", [])


def parts(role: str) -> dict[str, str]:
    """entry file stem -> the prefix of its contract variables (_ROLE or
    _ROLE_PART), for the role's parts that site.yml runs."""
    out = {"main": f"_{role}"}
    for play in _load(REPO / "playbooks" / "site.yml"):
        for task in play.get("tasks", []):
            spec = task.get("ansible.builtin.import_role") or {}
            if spec.get("name") == role and spec.get("tasks_from", "main") != "main":
                out[spec["tasks_from"]] = f"_{role}_{spec['tasks_from']}"
    return out


def dispatcher(role: str, prefix: str, title: str) -> list[dict[str, Any]]:
    """The one shape of a part's entry file (its tasks, as YAML data)."""
    action = "stackwright_action | default('deploy')"
    return [
        {"name": f"{title} {{{{ {action} }}}}",
         "ansible.builtin.include_tasks": f"{{{{ {role}_step }}}}.yml",
         "loop": f"{{{{ {action} | stackwright_steps({prefix}_steps) }}}}",
         "loop_control": {"loop_var": f"{role}_step"}},
        {"name": f"Stop {title}",
         "ansible.builtin.include_role": {"name": "common", "tasks_from": "stop"},
         "vars": {"common_stop_units": f"{{{{ {prefix}_units }}}}"},
         "when": f"{action} == 'stop'"},
    ]


def role_vars(role: str) -> dict[str, Any]:
    return _load(ROLES / role / "vars" / "main.yml") or {}


def test_every_role_is_a_service_role_or_says_why_not():
    roles = {p.name for p in ROLES.iterdir() if p.is_dir()}
    assert roles == set(SERVICE_ROLES) | set(NOT_SERVICE_ROLES)
    assert not set(SERVICE_ROLES) & set(NOT_SERVICE_ROLES)


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_each_part_dispatches_the_action_to_its_steps(role: str):
    for entry, prefix in parts(role).items():
        tasks = _load(ROLES / role / "tasks" / f"{entry}.yml")
        title = tasks[0]["name"].rsplit(" {{", 1)[0]
        assert tasks == dispatcher(role, prefix, title), f"{role}/tasks/{entry}.yml departs from the dispatcher"


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_steps_are_the_contracts_in_its_order(role: str):
    variables = role_vars(role)
    listed: set[str] = set()
    for entry, prefix in parts(role).items():
        steps = variables[f"{prefix}_steps"]
        names = [filters.step_name(s) for s in steps]
        assert all(n in filters.STEPS for n in names), f"{role}/{entry}: {steps}"
        order = [filters.STEPS.index(n) for n in names]
        assert order == sorted(set(order)), f"{role}/{entry}: steps out of the contract's order: {steps}"
        part_prefix = "" if entry == "main" else f"{entry}_"
        for step in steps:
            # a part's own steps carry its name; precheck may be shared
            assert step in (filters.step_name(step), part_prefix + filters.step_name(step)), f"{role}/{entry}: {step}"
            assert (ROLES / role / "tasks" / f"{step}.yml").exists(), f"{role}: tasks/{step}.yml is missing"
        listed |= set(steps)
    # a task file named like a step is one of some part's steps
    named_like_steps = {p.stem for p in (ROLES / role / "tasks").glob("*.yml")
                        if filters.step_name(p.stem) in filters.STEPS}
    assert named_like_steps <= listed, f"{role}: step files no part runs: {named_like_steps - listed}"


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_units_come_from_the_catalog(role: str):
    variables = role_vars(role)
    for prefix in parts(role).values():
        units = variables[f"{prefix}_units"]
        # straight from stackwright_units, or from the role's own unit variables that do
        own = re.fullmatch(rf"(?s)\{{\{{.*_{role}_\w*units.*\}}\}}", units.strip())
        assert "stackwright_units" in units or own, \
            f"{role}: {prefix}_units must come from the catalog (stackwright_units)"


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_restarts_go_through_handlers_fed_by_the_role_units(role: str):
    catalog_units = {u for s in catalog.SERVICES for u in s.units}
    for path, task in _tasks(role):
        spec = task.get("ansible.builtin.systemd_service") or {}
        assert spec.get("state") != "restarted", f"{role}/{path.name}: {task['name']} restarts outside a handler"
        assert spec.get("name") not in catalog_units, \
            f"{role}/{path.name}: {task['name']} names a catalog unit instead of the role's unit table"
        assert all(k.startswith(f"_{role}_") for k in task.get("ansible.builtin.set_fact", {})), \
            f"{role}/{path.name}: {task['name']} sets another role's facts"
        assert "results" not in str(task.get("ansible.builtin.set_fact", "")), \
            f"{role}/{path.name}: {task['name']} fakes a task result"
    handlers = _load(ROLES / role / "handlers" / "main.yml") if (ROLES / role / "handlers").exists() else []
    for handler in handlers or []:
        spec = handler.get("ansible.builtin.systemd_service") or {}
        if "name" not in spec:
            continue
        if spec["name"] == "{{ item }}":
            assert re.search(rf"_{role}_\w*(units|readers)|_{role}_config", str(handler.get("loop"))), \
                f"{role}: handler {handler['name']} is not fed by the role's units"
        else:
            assert spec["name"] not in catalog_units, \
                f"{role}: handler {handler['name']} names a catalog unit instead of the role's unit table"


@pytest.mark.parametrize("role", SERVICE_ROLES)
def test_install_steps_go_through_commons_apt_install(role: str):
    for path in (ROLES / role / "tasks").glob("*install.yml"):
        tasks = _load(path)
        assert len(tasks) == 1, path
        assert tasks[0]["ansible.builtin.include_role"] == {"name": "common", "tasks_from": "apt_install"}, path
        assert tasks[0]["vars"]["common_apt_install_groups"], path


def test_packages_are_data_of_the_catalog():
    """No role lists the packages of a service or writes another role's facts
    to add them: the catalog has them (stackwright_packages)."""
    assert not list(ROLES.glob("*/tasks/packages*.yml"))
    for role in [p.name for p in ROLES.iterdir() if p.is_dir()]:
        for kind in ("defaults", "vars"):
            path = ROLES / role / kind / "main.yml"
            names = set(_load(path) or {}) if path.exists() else set()
            listed = {n for n in names if n.endswith("_packages")} - {"common_packages", "common_apt_install_packages"}
            assert not listed, f"{role}/{kind}"
        if role != "packages":
            for path in (ROLES / role).rglob("*.yml"):
                assert "_packages_wanted" not in path.read_text(), path


def _command_texts():
    for role in [p.name for p in ROLES.iterdir() if p.is_dir()]:
        for path, task in _tasks(role):
            for key in ("ansible.builtin.command", "ansible.builtin.shell"):
                if key in task:
                    yield role, path, str(task[key])


def test_one_schema_migration_method():
    """Schemas migrate through openstack_service's db_sync (once per package
    version), never by a role's own command."""
    migrate = re.compile(r"-manage\b.*\b(db_sync|db sync|api_db sync)\b|db-manage\b.*\bupgrade\b")
    for role, path, text in _command_texts():
        assert role == "openstack_service" or not migrate.search(text), f"{role}/{path.name}: {text}"
    users = {role for role in SERVICE_ROLES for _p, task in _tasks(role)
             if (task.get("ansible.builtin.include_role") or {}).get("tasks_from") == "db_sync"}
    assert users == {s.role for s in catalog.deployable() if s.database}


def test_one_keystone_registration_method():
    """Service users, catalog entries and endpoints come from
    openstack_service's register (one module run); Keystone's own entry from
    keystone-manage bootstrap."""
    for role in [p.name for p in ROLES.iterdir() if p.is_dir()]:
        for path, task in _tasks(role):
            modules = {k for k in task if "." in k}
            if (role, path.name) == ("heat", "register.yml") and task.get("name") in (
                    "Its administrator", "Administrator of the domain"):
                continue  # the stack users' domain and its administrator: not a service user
            assert not modules & {"openstack.cloud.endpoint", "openstack.cloud.catalog_service",
                                  "openstack.cloud.identity_user", "openstack.cloud.role_assignment"}, path
            if "stackwright_keystone_service" in task:
                assert (role, path.name) == ("openstack_service", "register.yml")
    users = {role for role in SERVICE_ROLES for _p, task in _tasks(role)
             if (task.get("ansible.builtin.include_role") or {}).get("tasks_from") == "register"}
    registered = {s.role for s in catalog.deployable() if any(lis.keystone_type for lis in s.listeners)}
    assert users == registered - {"keystone"}


def test_one_uwsgi_building_block():
    """Every API under uwsgi runs from openstack_service's uwsgi settings and
    drop-in; no role has uwsgi templates of its own."""
    assert sorted(str(p.relative_to(ROLES)) for p in ROLES.glob("*/templates/*uwsgi*")) == [
        "openstack_service/templates/uwsgi.ini.j2", "openstack_service/templates/uwsgi.service.conf.j2"]
    users = {role for role in SERVICE_ROLES for _p, task in _tasks(role)
             if (task.get("ansible.builtin.include_role") or {}).get("tasks_from") == "uwsgi"}
    assert users == {"keystone", "placement", "glance", "nova", "neutron", "cinder", "heat", "swift"}


def test_the_dispatcher_filter():
    steps = ["precheck", "install", "config", "bootstrap", "register", "service"]
    assert filters.steps("deploy", steps) == steps
    assert filters.steps("reconfigure", steps) == ["precheck", "config", "service"]
    assert filters.steps("stop", steps) == ["precheck"]
    compute = ["precheck", "compute_install", "compute_config", "compute_service"]
    assert filters.steps("reconfigure", compute) == ["precheck", "compute_config", "compute_service"]
    with pytest.raises(ValueError, match="stackwright_action must be one of deploy, reconfigure, stop, not 'upgrade'"):
        filters.steps("upgrade", steps)
    with pytest.raises(ValueError, match="not steps of the role contract: start"):
        filters.steps("deploy", ["precheck", "start"])
