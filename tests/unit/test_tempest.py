"""Reading Tempest's results and rendering its configuration."""

from __future__ import annotations

import configparser
import os
import shutil
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from stackwright.tempest import (
    KNOWN_FAILURES,
    TempestError,
    by_service,
    image_file,
    init_workspace,
    parse,
    render_conf,
    selection,
)

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
    "volumes": False, "objects": False, "backups": False, "storage_protocol": "iSCSI", "vendor_name": "Open Source",
    "network_extensions": ["agent", "router"], "dashboard_url": "", "microversions": {}, "cacert": None,
    "img_file": "/w/tempest-image.img", "img_disk_format": "raw", "img_container_format": "bare",
    "img_properties": "kernel_id:k1,ramdisk_id:r1,os_command_line:console=ttyS0",
}


def test_conf_describes_the_cloud():
    text = render_conf(CLOUD)
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string(text)
    assert conf["identity"]["uri_v3"] == "http://10.43.0.11:5000/v3"
    # certificates are checked; without TLS there is no CA to name
    assert conf["identity"]["disable_ssl_certificate_validation"] == "false"
    assert "ca_certificates_file" not in conf["identity"]
    with_tls = configparser.ConfigParser(interpolation=None)
    with_tls.read_string(render_conf({**CLOUD, "auth_url": "https://10.63.0.10:5000/v3", "cacert": "/srv/ha-ca.pem"}))
    assert with_tls["identity"]["ca_certificates_file"] == "/srv/ha-ca.pem"
    assert conf["compute"]["image_ref"] == "img" and conf["compute"]["flavor_ref_alt"] == "f2"
    assert conf["network"]["public_network_id"] == "pub"
    assert conf["service_available"]["cinder"] == "false" and conf["service_available"]["neutron"] == "true"
    assert conf["compute-feature-enabled"]["resize"] == "false"  # one compute node
    # the test guest takes the key pair's key: Tempest logs in over a floating IP
    assert conf["validation"]["run_validation"] == "true"
    assert conf["validation"]["connect_method"] == "floating" and conf["validation"]["image_ssh_user"] == "root"
    without = configparser.ConfigParser(interpolation=None)
    without.read_string(render_conf({**CLOUD, "public_network_id": "", "public_network_name": ""}))
    assert without["validation"]["run_validation"] == "false"  # no floating IP: unreachable from here
    assert conf["network-feature-enabled"]["api_extensions"] == "agent,router"
    # an image a scenario test uploads boots as the test guest does
    assert conf["scenario"]["img_file"] == "/w/tempest-image.img"
    assert conf["volume-feature-enabled"]["backup"] == "false"  # no cinder-backup deployed
    with_backups = configparser.ConfigParser(interpolation=None)
    with_backups.read_string(render_conf({**CLOUD, "volumes": True, "backups": True}))
    assert with_backups["volume-feature-enabled"]["backup"] == "true"
    assert conf["service_available"]["swift"] == "false"
    with_swift = configparser.ConfigParser(interpolation=None)
    with_swift.read_string(render_conf({**CLOUD, "objects": True}))
    assert with_swift["service_available"]["swift"] == "true" and with_swift["object-storage"]["region"] == "RegionOne"
    assert conf["volume"]["storage_protocol"] == "iSCSI" and conf["volume"]["vendor_name"] == "Open Source"
    assert conf["scenario"]["img_properties"] == "kernel_id:k1,ramdisk_id:r1,os_command_line:console=ttyS0"
    assert conf["service_available"]["horizon"] == "false" and not conf.has_section("dashboard")


def test_the_volume_backend_says_what_tempests_volume_types_ask_for():
    from stackwright.tempest import volume_backend

    rbd = NS(block_storage=NS(backend_pools=lambda: [NS(name="rbd@rbd-1#rbd-1", capabilities={
        "storage_protocol": "ceph", "vendor_name": "Open Source", "volume_backend_name": "rbd-1"})]))
    assert volume_backend(rbd, True) == {"storage_protocol": "ceph", "vendor_name": "Open Source"}
    assert volume_backend(rbd, False) == {"storage_protocol": "iSCSI", "vendor_name": "Open Source"}


def test_microversion_ranges_come_from_the_clouds_version_documents():
    from stackwright.tempest import microversions

    def api(low: tuple[int, int] | None, high: tuple[int, int] | None) -> NS:
        return NS(get_endpoint_data=lambda: NS(min_microversion=low, max_microversion=high))

    # what Zed's APIs announce; Glance has none, Cinder is asked only when deployed
    conn = NS(compute=api((2, 1), (2, 93)), placement=api((1, 0), (1, 39)), block_storage=api((3, 0), (3, 70)))
    found = microversions(conn, True)
    assert found == {"compute": ("2.1", "2.93"), "placement": ("1.0", "1.39"), "volume": ("3.0", "3.70")}
    assert "volume" not in microversions(conn, False)
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string(render_conf({**CLOUD, "volumes": True, "microversions": found}))
    assert (conf["volume"]["min_microversion"], conf["volume"]["max_microversion"]) == ("3.0", "3.70")
    assert conf["compute"]["max_microversion"] == "2.93" and conf["placement"]["max_microversion"] == "1.39"
    plain = configparser.ConfigParser(interpolation=None)
    plain.read_string(render_conf(CLOUD))
    assert not plain.has_option("volume", "max_microversion")  # unknown: Tempest's default (the base version)
    # an API without microversions announces none
    assert microversions(NS(compute=api(None, None), placement=api(None, None)), False) == {}


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


LISTED = [FLAVOR, BASIC, NETS, IMAGE, "tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token",
          "tempest.api.volume.test_volumes_get.VolumesGetTest.test_volume_create_get_update_delete"]


def _chosen(test_set: str) -> list[str]:
    import re

    args = selection(test_set)
    assert args[0] == "--regex"
    return [t for t in LISTED if re.search(args[1], t)]


def test_sets_choose_their_tests():
    assert selection("smoke") == ["--smoke"]
    assert _chosen("full") == LISTED
    assert _chosen("scenario") == [BASIC]
    assert _chosen("nova") == [FLAVOR]
    assert _chosen("keystone,neutron") == [NETS, LISTED[4]]
    assert _chosen("glance, scenario") == [BASIC, IMAGE]
    for wrong in ("heat", "nova,bogus", "", "smoke,nova"):
        with pytest.raises(TempestError, match="is not one of smoke, full"):
            selection(wrong)


def test_results_per_service():
    assert by_service(parse(OUTPUT)) == {
        "glance": {"passed": 0, "failed": 0, "skipped": 1},
        "nova": {"passed": 1, "failed": 0, "skipped": 0},
        "neutron": {"passed": 1, "failed": 0, "skipped": 0},
        "cinder": {"passed": 0, "failed": 0, "skipped": 1},
        "scenario": {"passed": 0, "failed": 1, "skipped": 0},
    }


def test_known_failures_carry_their_reason():
    assert KNOWN_FAILURES.get(BASIC) is None
    for test, reason in KNOWN_FAILURES.items():
        assert test.startswith("tempest.") and len(reason) > 40


def test_the_guest_image_is_saved_once_with_what_makes_it_boot(tmp_path):
    saved = []
    img = NS(size=4, kernel_id="k1", ramdisk_id="r1", os_command_line="console=ttyS0", disk_format="raw",
             container_format="bare")

    def download_image(image, output):
        saved.append(image)
        Path(output).write_bytes(b"disk")

    conn = NS(image=NS(download_image=download_image))
    values = image_file(conn, img, tmp_path / "guest.img")
    assert values == {"img_file": str(tmp_path / "guest.img"), "img_disk_format": "raw",
                      "img_container_format": "bare",
                      "img_properties": "kernel_id:k1,ramdisk_id:r1,os_command_line:console=ttyS0"}
    image_file(conn, img, tmp_path / "guest.img")
    assert saved == [img]  # the same size is there already: not fetched again
