"""The CLI: exit codes and the exact messages an operator sees."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from click.testing import CliRunner

from stackwright import secrets as secrets_mod
from stackwright.main import cli

REPO = Path(__file__).resolve().parents[2]
AIO = REPO / "inventories" / "aio.yml"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_validate_ok():
    result = invoke("validate", str(AIO))
    assert result.exit_code == 0
    assert f"{AIO}: valid - cloud 'aio', 1 node(s), 4 network(s)" in result.output


def test_validate_reports_errors_with_file_line_and_fix(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(AIO.read_text().replace("address: 10.42.0.11", "address: 10.42.1.11").replace(
        "region: RegionOne", "regoin: RegionOne"))
    result = invoke("validate", str(bad))
    assert result.exit_code == 2
    assert f"{bad}:6: error: cloud.regoin: unknown key 'regoin'\n    fix: did you mean 'region'?" in result.output
    assert f"{bad}: 1 error(s)" in result.output  # structure errors stop before the address check


def test_validate_json(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(AIO.read_text().replace("address: 10.42.0.11", "address: 10.42.1.11"))
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if "10.42.1.11" in text)
    result = invoke("validate", "--format", "json", str(bad))
    assert result.exit_code == 2
    report = json.loads(result.output)
    assert report["valid"] is False
    assert report["problems"] == [{
        "line": line, "path": ["nodes", 0, "networks", "mgmt", "address"], "severity": "error",
        "message": "10.42.1.11 is outside network 'mgmt' (10.42.0.0/24)", "fix": "use an address inside 10.42.0.0/24",
    }]


def test_validate_missing_file_is_not_a_traceback(tmp_path):
    result = invoke("validate", str(tmp_path / "none.yml"))
    assert result.exit_code == 2
    assert "none.yml: error: (top level): file not found" in result.output


def test_render_writes_inventory(tmp_path):
    result = invoke("render", str(AIO), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0
    assert (tmp_path / "out" / "hosts.yml").exists()
    assert "(3 file(s) changed)" in result.output
    again = invoke("render", str(AIO), "-o", str(tmp_path / "out"))
    assert "(0 file(s) changed)" in again.output


def test_render_refuses_invalid_input(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("cloud: {}\n")
    result = invoke("render", str(bad), "-o", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "nothing was changed on any host" in result.output
    assert not (tmp_path / "out").exists()


def test_secrets_generated_private_and_never_overwritten(tmp_path):
    inv = tmp_path / "cloud.yml"
    inv.write_text(AIO.read_text())
    result = invoke("secrets", str(inv))
    assert result.exit_code == 0
    path = tmp_path / "cloud.secrets.yml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_text()
    for line in content.splitlines():
        if not line.startswith("#") and line.strip():
            assert line.split(": ", 1)[-1].strip() not in result.output
    again = invoke("secrets", str(inv))
    assert again.exit_code == 0
    assert "already has every secret; it was left unchanged" in again.output
    assert path.read_text() == content
    forced = invoke("secrets", "--force", str(inv))
    assert forced.exit_code == 0
    assert path.read_text() != content
    assert (tmp_path / "cloud.secrets.yml.bak").read_text() == content


def test_secrets_adds_only_what_an_older_file_lacks(tmp_path):
    """A file from before the cloud's CA: the CA is appended, every line the
    operator has stays as it was, nothing is printed."""
    inv = tmp_path / "cloud.yml"
    inv.write_text(AIO.read_text())
    invoke("secrets", str(inv))
    path = tmp_path / "cloud.secrets.yml"
    old = re.sub(r"^cloud_ca_\w+: \|\n(  .*\n)+", "", path.read_text(), flags=re.M)
    old = old.replace("keystone_admin_password: ", "keystone_admin_password: My.own-password_of~24chars #")
    path.write_text(old)
    result = invoke("secrets", str(inv))
    assert result.exit_code == 0, result.output
    assert "added 2 new secret(s)" in result.output and "cloud_ca_certificate, cloud_ca_key" in result.output
    text = path.read_text()
    assert text.startswith(old)
    values = secrets_mod.read(path)
    assert values["keystone_admin_password"] == "My.own-password_of~24chars"
    assert values["cloud_ca_key"].split("\n")[1] not in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_lab_ssh_unknown_node(tmp_path):
    result = invoke("lab", "ssh", str(AIO), "nosuch")
    assert result.exit_code == 1
    assert "no node 'nosuch' in" in result.output and "(nodes: aio1)" in result.output


def test_deploy_refuses_an_unknown_phase_before_touching_anything():
    result = invoke("deploy", str(AIO), "--tags", "network,post-deploy")
    assert result.exit_code == 2
    assert "no phase 'post-deploy'; did you mean 'post_deploy'?" in result.output
    assert "deploying" not in result.output


def test_lab_power_unknown_node_and_state(tmp_path):
    result = invoke("lab", "power", str(AIO), "off", "nosuch")
    assert result.exit_code == 1
    assert "no node 'nosuch' in" in result.output and "(nodes: aio1)" in result.output
    result = invoke("lab", "power", str(AIO), "sideways", "aio1")
    assert result.exit_code == 2 and "'sideways' is not one of 'off', 'on'" in result.output


def test_evacuating_a_node_without_a_fence_device_needs_the_operators_word():
    aio = str(Path(__file__).resolve().parents[2] / "inventories" / "aio.yml")
    result = CliRunner().invoke(cli, ["node", "evacuate", aio, "aio1"])
    assert result.exit_code == 1
    assert ("aio1 has no fence device in the inventory, so Stackwright cannot make sure it is off; power it off "
            "yourself and add --confirm-powered-off") in " ".join(result.output.split())
    both = CliRunner().invoke(cli, ["node", "evacuate", aio, "aio1", "--fence", "--confirm-powered-off"])
    assert both.exit_code == 2 and "exclude each other" in both.output


def test_backup_of_a_cloud_never_deployed_is_refused(tmp_path):
    inventory = tmp_path / "aio.yml"
    inventory.write_text(AIO.read_text())
    result = invoke("backup", str(inventory))
    assert result.exit_code == 1
    assert f"{tmp_path / 'aio.secrets.yml'}: no secrets file: this cloud was never deployed" in result.output


def test_restore_refuses_what_is_not_a_backup_before_touching_anything(tmp_path):
    inventory = tmp_path / "aio.yml"
    inventory.write_text(AIO.read_text())
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8bnot really gzip")
    result = invoke("restore", str(inventory), str(junk), "--yes")
    assert result.exit_code == 1
    assert f"{junk}: not a readable Stackwright backup archive" in result.output
    assert not (tmp_path / ".stackwright" / "aio" / "restore").exists()  # no playbook ran
    assert not list((tmp_path / ".stackwright" / "aio").glob("restore-*"))  # the unpacked copy is gone


def test_recover_database_refuses_what_it_cannot_recover_before_touching_anything(tmp_path):
    """One database server is no cluster; --from names a member; a cloud
    never deployed has no rendered inventory to run the playbook with."""
    one = invoke("recover", "database", str(AIO))
    assert one.exit_code == 1
    assert "one database server (aio1), no cluster to recover: start MariaDB on it" in " ".join(one.output.split())
    ha = tmp_path / "ha.yml"
    ha.write_text((REPO / "inventories" / "ha.yml").read_text())
    unknown = invoke("recover", "database", str(ha), "--from", "cmp1")
    assert unknown.exit_code == 1
    assert "--from cmp1: not a database member (members: ctl1, ctl2, ctl3)" in unknown.output
    fresh = invoke("recover", "database", str(ha), "--from", "ctl2")
    assert fresh.exit_code == 1
    assert "recover-database.yml: no rendered inventory" in fresh.output and "deploy the cloud first" in fresh.output
