"""Reading Tempest's results and rendering its configuration."""

from __future__ import annotations

import configparser
import os
import shutil

import pytest

from stackwright.tempest import TempestError, init_workspace, parse, render_conf

# tempest run output (subunit-trace), as printed by Tempest 33

FLAVOR = "tempest.api.compute.flavors.test_flavors.FlavorsV2TestJSON.test_get_flavor"
BASIC = "tempest.scenario.test_server_basic_ops.TestServerBasicOps.test_server_basic_ops"
NETS = "tempest.api.network.test_networks.NetworksTest.test_list_networks"
IMAGE = "tempest.api.image.v2.test_images.BasicOperationsImagesTest.test_delete_image"
OUTPUT = "\n".join([
    "{0} " + FLAVOR + "[id-1f12046b-753d-40d2-abb6-d8eb8b30cb2f,smoke] [0.190612s] ... ok",
    "{0} setUpClass (tempest.api.volume.test_volumes_get.VolumesGetTest) ... SKIPPED: Cinder is not available",
    "{0} " + BASIC + "[compute,id-7fff3fb3-91d8-4fd0-bd7d-0204f1f180ba,network,smoke] [301.2s] ... FAILED",
    "{0} " + NETS + "[id-f7ffdeda-e200-4a7a-bcbe-05716e86bf43,smoke] [1.0s] ... ok",
    "{0} " + IMAGE + "[id-f848bb94-1c6e-45a4-8726-39e3a5b23535,smoke] ... SKIPPED: no reason",
    "Totals",
])


def test_parse_counts_and_reasons():
    out = parse(OUTPUT)
    assert out.passed == [FLAVOR, NETS]
    assert out.failed == [BASIC]
    assert out.skipped == {"tempest.api.volume.test_volumes_get.VolumesGetTest": "Cinder is not available",
                           IMAGE: "no reason"}


CLOUD = {
    "cloud": "aio", "admin_password": "s3cret-s3cret-s3cret", "auth_url": "http://10.43.0.11:5000/v3",
    "region": "RegionOne", "image_id": "img", "flavor_id": "f1", "flavor_alt_id": "f2",
    "public_network_id": "pub", "public_network_name": "public", "compute_nodes": 1, "timeout": 300,
    "volumes": False, "network_extensions": ["agent", "router"], "dashboard_url": "",
}


def test_conf_describes_the_cloud():
    text = render_conf(CLOUD)
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string(text)
    assert conf["identity"]["uri_v3"] == "http://10.43.0.11:5000/v3"
    assert conf["compute"]["image_ref"] == "img" and conf["compute"]["flavor_ref_alt"] == "f2"
    assert conf["network"]["public_network_id"] == "pub"
    assert conf["service_available"]["cinder"] == "false" and conf["service_available"]["neutron"] == "true"
    assert conf["compute-feature-enabled"]["resize"] == "false"  # one compute node
    assert conf["validation"]["run_validation"] == "false"
    assert conf["network-feature-enabled"]["api_extensions"] == "agent,router"
    assert conf["service_available"]["horizon"] == "false" and not conf.has_section("dashboard")


def test_conf_points_tempest_at_a_dashboard_that_answers():
    text = render_conf({**CLOUD, "compute_nodes": 2, "volumes": True, "network_extensions": [],
                        "dashboard_url": "http://10.43.0.11/"})
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string(text)
    assert conf["service_available"]["horizon"] == "true"
    assert conf["dashboard"]["dashboard_url"] == "http://10.43.0.11/"


def _tempest() -> str:
    """Debian's tempest: required by `make test`; `make check` (no apt, no
    root) skips what needs it."""
    tempest = shutil.which("tempest")
    if tempest is None and os.environ.get("STACKWRIGHT_CHECK") == "1":
        pytest.skip("Debian's tempest is not installed (make check runs without host packages)")
    assert tempest, "the tests need Debian's tempest (make test-host-packages installs it)"
    return tempest


def test_workspace_is_made_beside_a_global_registry_that_already_names_tempest(tmp_path, monkeypatch):
    """~/.tempest/workspace.yaml of an earlier run names a workspace
    "tempest" elsewhere: ours is made anyway, and the global file is left
    as it was."""
    tempest = _tempest()
    home = tmp_path / "home"
    (home / ".tempest").mkdir(parents=True)
    registry = home / ".tempest" / "workspace.yaml"
    registry.write_text("tempest: /somewhere/else/tempest\n")
    monkeypatch.setenv("HOME", str(home))
    workspace = tmp_path / "cloud" / "tempest"
    init_workspace(tempest, workspace)
    assert (workspace / "etc").is_dir()
    assert registry.read_text() == "tempest: /somewhere/else/tempest\n"
    assert str(workspace) in (workspace.parent / "tempest-workspaces.yaml").read_text()
    init_workspace(tempest, workspace)  # a second run reuses it


def test_workspace_failure_is_reported_with_tempest_own_words(tmp_path):
    # our own registry names the workspace for another directory: tempest refuses
    (tmp_path / "tempest-workspaces.yaml").write_text("stackwright: /somewhere/else\n")
    with pytest.raises(TempestError, match=r"tempest init .* failed: .*stackwright"):
        init_workspace(_tempest(), tmp_path / "tempest")
