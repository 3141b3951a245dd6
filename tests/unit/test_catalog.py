"""The service catalog owns which service runs where, its ports, phases and
secrets: what it says is what validate, render, plan, deploy and the roles
use, and no other file writes those facts again."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from stackwright import catalog
from stackwright.loader import load, load_problems
from stackwright.main import cli
from stackwright.render import render_files

REPO = Path(__file__).resolve().parents[2]
INVENTORIES = REPO / "inventories"
SITE = yaml.safe_load((REPO / "playbooks" / "site.yml").read_text())


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "inv.yml"
    path.write_text(text)
    _, problems = load_problems(path)
    return [p.render("inv.yml") for p in problems]


AIO = (INVENTORIES / "aio.yml").read_text()


# -- validate refuses what the catalog cannot deploy yet ---------------------

NOT_YET = [
    ("ceilometer", "  services:\n", "  services:\n    ceilometer: true\n",
     "inv.yml:{line}: error: cloud.services.ceilometer: ceilometer is not deployable yet: Stackwright has no "
     "telemetry roles yet (the issue on Swift, Heat and telemetry)\n    fix: remove `ceilometer: true` (or set it "
     "to false)"),
    ("cinder-backup without Ceph", "    ceph: true\n", "    ceph: false\n",
     "inv.yml:{line}: error: cloud.services.cinder_backup: cinder_backup cannot be deployed here: cinder-backup "
     "keeps its backups in Ceph, which this cloud does not run (its Swift driver, the other store, is not "
     "deployable yet)\n"
     "    fix: give the cloud what it lacks, or remove `cinder_backup: true`"),
    ("vip with one controller", "  release: zed\n", "  release: zed\n  internal_vip: 10.42.0.10\n",
     "inv.yml:{line}: error: cloud.internal_vip: a virtual IP needs the high-availability stack (pacemaker), which "
     "is not deployable yet: nothing would hold the address\n    fix: remove `internal_vip:`"),
]


@pytest.mark.parametrize(("old", "new", "expected"), [c[1:] for c in NOT_YET], ids=[c[0] for c in NOT_YET])
def test_validate_refuses_what_is_not_deployable_yet(tmp_path, old, new, expected):
    assert old in AIO
    found = _problems(tmp_path, AIO.replace(old, new, 1))
    # the message, its fix and a line number that points into the file
    assert any(re.fullmatch(re.escape(expected).replace(r"\{line\}", r"\d+"), p) for p in found), found


def test_several_controllers_validate_and_deploy_never_previews(tmp_path):
    result = CliRunner().invoke(cli, ["validate", str(INVENTORIES / "ha.yml")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # deploy never previews what is not deployable yet, and touches nothing
    result = CliRunner().invoke(cli, ["--preview", "deploy", str(INVENTORIES / "ha.yml")], catch_exceptions=False)
    assert result.exit_code == 1
    assert "--preview is for render, plan and lab only" in result.output
    no_ceph = tmp_path / "ha.yml"
    no_ceph.write_text((INVENTORIES / "ha.yml").read_text().replace("    ceph: true\n", "    ceph: false\n"))
    result = CliRunner().invoke(cli, ["deploy", str(no_ceph)], catch_exceptions=False)
    assert result.exit_code == 2
    assert "3 controllers share Glance's images only through Ceph" in result.output
    assert "nothing was changed on any host" in result.output


def test_several_controllers_need_ceph_for_glances_images(tmp_path):
    """Glance's file store keeps an image on one controller: behind a VIP
    the others answer without its data, so HA needs Ceph."""
    path = tmp_path / "ha.yml"
    path.write_text((INVENTORIES / "ha.yml").read_text().replace("    ceph: true\n", "    ceph: false\n"))
    _, problems = load_problems(path)
    found = [p for p in problems if p.path == ("cloud", "services", "ceph") and p.severity == "error"]
    assert len(found) == 1 and "3 controllers share Glance's images only through Ceph" in found[0].message
    _, problems = load_problems(INVENTORIES / "multinode.yml")
    assert not [p for p in problems if p.path == ("cloud", "services", "ceph")]


# -- a cloud without a storage node (#22) -----------------------------------

def test_a_cloud_without_storage_renders_no_cinder_anywhere():
    """The seeds' first layout: no node is in a Cinder group, none installs
    a Cinder package, and validate says why (a warning, not an error)."""
    inv, problems = load_problems(INVENTORIES / "two-node.yml")
    assert inv is not None
    assert [p.message for p in problems] == [
        "cinder is left out: no node has the storage role, so there is no volume backend (Ceph or LVM) for Cinder: "
        "the cloud has no block storage (no volume endpoint, no volume panels in Horizon)"]
    hosts = yaml.safe_load(render_files(inv)["hosts.yml"])["all"]["children"]
    assert hosts["cinder"] == {"hosts": {}} and hosts["cinder_volume"] == {"hosts": {}}
    assert hosts["ceph_mon"] == {"hosts": {}}
    groups = catalog.service_groups(inv)
    assert {g for g, members in groups.items() if not members} == {"cinder", "cinder_volume", "ceph_mon", "ceph_osd",
                                                                      "haproxy", "pacemaker",  # no VIP
                                                                      "heat", "cinder_backup", "swift_storage",
                                                                      "swift_proxy"}  # not asked for
    packages = catalog.packages(inv)
    installs = {name for g, members in groups.items() if members for name in packages[g]["names"]}
    assert installs and not {name for name in installs if name.startswith("cinder")}
    assert catalog.left_out(inv) == {"cinder": problems[0].message.removeprefix("cinder is left out: ")}


def test_storage_nodes_give_cinder_back():
    inv = load(INVENTORIES / "multinode.yml")
    groups = catalog.service_groups(inv)
    assert groups["cinder"] == ["ctl1"] and groups["cinder_volume"] == ["sto1"]
    assert catalog.left_out(inv) == {}


def test_heats_dashboard_panels_come_with_heat(tmp_path):
    with_heat = catalog.packages(load(INVENTORIES / "aio.yml"))["horizon"]["names"]
    assert "python3-heat-dashboard" in with_heat
    path = tmp_path / "noheat.yml"
    path.write_text(AIO.replace("    heat: true\n", "    heat: false\n"))
    without = catalog.packages(load(path))["horizon"]["names"]
    assert without == [n for n in with_heat if n != "python3-heat-dashboard"]


def test_cinder_backup_runs_beside_cinder_volume_only_when_asked():
    inv = load(INVENTORIES / "aio.yml")
    groups = catalog.service_groups(inv)
    assert groups["cinder_backup"] == groups["cinder_volume"] == ["aio1"]
    assert "cinder-backup" in catalog.packages(inv)["cinder_backup"]["names"]
    assert not catalog.service_groups(load(INVENTORIES / "multinode.yml"))["cinder_backup"]


# -- nothing else writes what the catalog owns --------------------------------

def test_site_plays_target_the_catalog_groups_of_their_phase():
    """Every play of a service runs on catalog groups whose phase is the
    play's tag, and every deployable service has its play."""
    seen = set()
    for play in SITE:
        tag = play["tags"][0]
        if play["hosts"] in ("all", "controller[0]"):
            assert tag in (*catalog.HOST_PHASES, *catalog.FINAL_PHASES, "always"), play["name"]
            continue
        for group in play["hosts"].split(":"):
            assert catalog.service(group).phase == tag, (play["name"], group)
            seen.add(group)
    assert seen == {s.group for s in catalog.deployable()}
    assert [p["tags"][0] for p in SITE if p["tags"][0] != "always"] == [
        t for t in catalog.phases() for p in SITE if p["tags"][0] == t]


def test_deploy_tags_help_lists_the_catalog_phases():
    out = CliRunner().invoke(cli, ["deploy", "--help"], terminal_width=400).output
    assert f"Only these phases, comma-separated ({', '.join(catalog.phases())})." in " ".join(out.split())


def test_no_role_writes_a_catalog_port_or_a_shared_url_itself():
    """Ports, the Keystone URL, memcached servers and the transport URL come
    from the rendered catalog values (stackwright_ports, ...), never a
    literal or a recomputation in a role."""
    ports = {p for p in catalog.ports().values()}
    literal = re.compile(r"(?<![\d.])(" + "|".join(str(p) for p in sorted(ports) if p != 80) + r")(?![\d.])")
    offenders = []
    for path in sorted((REPO / "roles").glob("*/defaults/main.yml")) + sorted((REPO / "roles").glob("*/vars/*.yml")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            if literal.search(line) or "groups['memcached']" in line or "groups['rabbitmq']" in line:
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert offenders == []


def test_every_secret_is_used_by_a_role_and_every_role_secret_is_generated():
    text = "\n".join(p.read_text() for p in (REPO / "roles").rglob("*") if p.is_file() and p.suffix in (".yml", ".j2"))
    assert [s for s in catalog.secrets() if not re.search(rf"\b{s}\b", text)] == []
    from stackwright import secrets

    assert set(secrets.generate()) == set(catalog.secrets())


def test_plan_lists_the_catalog_processes_of_each_node():
    from stackwright.plan import build

    plan = build(load(INVENTORIES / "multinode.yml"))
    by_name = {n["name"]: n["services"] for n in plan["nodes"]}
    assert by_name["sto1"] == ["chrony", "ceph-mon", "ceph-mgr", "ceph-osd", "cinder-volume"]
    assert by_name["cmp1"] == ["ovsdb-server", "ovs-vswitchd", "openvswitch-switch", "chrony", "libvirtd",
                               "nova-compute", "neutron-openvswitch-agent"]
    assert "apache2" in by_name["ctl1"] and "neutron-l3-agent" not in by_name["ctl1"]


def test_catalog_groups_are_ansible_group_names():
    for svc in catalog.SERVICES:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", svc.group), svc.group
    text = render_files(load(INVENTORIES / "aio.yml"))["hosts.yml"]
    for svc in catalog.deployable():
        assert f"    {svc.group}:\n" in text
    for svc in catalog.SERVICES:
        if not svc.deployable:
            assert f"    {svc.group}:\n" not in text


def test_haproxy_fronts_every_api_and_the_database_only_with_vips(tmp_path):
    """Without a VIP (and without TLS) there is no HAProxy and nothing to front; with the HA
    inventory every API is a frontend on the controllers' management
    addresses, the database one as TCP checked on Galera's Synced check."""
    plain = tmp_path / "plain.yml"
    plain.write_text(AIO.replace("  tls: true\n", "", 1))
    assert catalog.frontends(load(plain)) == [] and catalog.service("haproxy").hosts(load(plain)) == []
    fronts = {f["name"]: f for f in catalog.frontends(load(INVENTORIES / "ha.yml", preview=True))}
    assert {"keystone", "glance", "nova_api", "nova_metadata", "neutron", "horizon", "mariadb"} <= set(fronts)
    assert "rabbitmq" not in fronts and "memcached" not in fronts
    assert fronts["mariadb"]["check_port"] == 9200 and not fronts["mariadb"]["public"]
    assert fronts["keystone"]["public"] and fronts["nova_metadata"]["public"] is False
    assert [b["address"] for b in fronts["keystone"]["backends"]] == ["10.62.0.11", "10.62.0.12", "10.62.0.13"]


def test_tls_on_one_controller_puts_haproxy_in_front_of_its_public_apis(tmp_path):
    """TLS on a lone controller: HAProxy (no pacemaker) serves the public
    APIs only, the dashboard on 443 too, the APIs on management behind it;
    refused when the controller has no API address of its own to serve on."""
    path = tmp_path / "inv.yml"
    assert "\n  tls: true\n" in AIO  # the aio example has it
    path.write_text(AIO)
    inv = load(path)
    assert catalog.service("haproxy").hosts(inv) == ["aio1"] and catalog.service("pacemaker").hosts(inv) == []
    fronts = {f["name"]: f for f in catalog.frontends(inv)}
    assert all(f["public"] for f in fronts.values()) and {"keystone", "nova_novncproxy", "horizon"} <= set(fronts)
    assert "mariadb" not in fronts and "nova_metadata" not in fronts
    assert [b["address"] for b in fronts["keystone"]["backends"]] == ["10.42.0.11"]
    assert catalog.public_ports(inv)["horizon_https"] == 443
    assert catalog.shared_values(inv)["public_endpoint"] == "https://10.43.0.11"
    assert _problems(tmp_path, path.read_text()) == []
    # management and API on one address: HAProxy and the APIs would take the same ports
    one = path.read_text().replace("      api:      {interface: eth0, address: 10.43.0.11}\n", "")
    assert one != path.read_text()
    found = _problems(tmp_path, one)
    assert any(p.startswith("inv.yml:") and "error: cloud.tls: TLS with one controller needs an address of aio1 "
               "on the API network" in p for p in found), found


def test_ceph_monitors_survive_the_loss_of_any_node_where_they_can():
    """Three monitors where there are three storage nodes or, with fewer,
    three controllers; otherwise one, on the first storage node."""
    ha = load(INVENTORIES / "ha.yml", preview=True)
    assert catalog.ceph_nodes(ha) == (["ctl1", "ctl2", "ctl3"], ["cmp1", "cmp2"])
    assert catalog.ceph_nodes(load(INVENTORIES / "multinode.yml")) == (["sto1"], ["sto1"])
    assert catalog.ceph_nodes(load(INVENTORIES / "aio.yml")) == (["aio1"], ["aio1"])


def test_reports_name_only_what_verify_and_check_read():
    """verify's "services up" and check read Nova's services and Neutron's
    agents: a report from any other API would never be seen, and fail them
    (a heat-engine report did, on the lab)."""
    assert {api for s in catalog.SERVICES for api, _name in s.reports} <= {"compute", "network"}
