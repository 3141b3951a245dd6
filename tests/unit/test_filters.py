from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("sw_filters", REPO / "plugins" / "filter" / "stackwright.py")
assert spec and spec.loader
filters = importlib.util.module_from_spec(spec)
spec.loader.exec_module(filters)


def test_to_ini_orders_default_first_and_formats_values():
    text = filters.to_ini({
        "database": {"connection": "mysql+pymysql://u:p@h/db", "max_retries": -1},
        "DEFAULT": {"debug": False, "servers": ["a:1", "b:2"], "removed": None},
    })
    assert text == (
        "[DEFAULT]\ndebug = false\nservers = a:1,b:2\n\n"
        "[database]\nconnection = mysql+pymysql://u:p@h/db\nmax_retries = -1\n"
    )


def test_to_ini_drops_a_section_set_to_none_and_keeps_an_empty_one():
    text = filters.to_ini({"rbd": None, "file": {}, "glance_store": {"default_backend": "file"}})
    assert text == "[file]\n\n[glance_store]\ndefault_backend = file\n"


GLANCE = {"name": "glance", "type": "image", "region": "RegionOne", "roles": ["admin", "service"],
          "endpoints": {"public": "http://10.0.0.10:9292", "internal": "http://10.1.0.10:9292",
                        "admin": "http://10.1.0.10:9292"}}


def _token(roles=("admin", "service"), endpoints=None):
    endpoints = GLANCE["endpoints"] if endpoints is None else endpoints
    return {"roles": [{"id": r + "-id", "name": r} for r in roles],
            "catalog": [{"type": "identity", "name": "keystone", "endpoints": []},
                        {"type": "image", "name": "glance",
                         "endpoints": [{"interface": i, "url": u, "region_id": "RegionOne", "region": "RegionOne"}
                                       for i, u in endpoints.items()]}]}


def test_registration_in_place_needs_nothing():
    assert filters.registration_missing(_token(), GLANCE) == []


def test_registration_missing_names_what_is_missing():
    assert filters.registration_missing(None, GLANCE) == ["the service user cannot log in"]
    assert filters.registration_missing(_token(roles=["admin"]), GLANCE) == ["role service"]
    moved = dict(GLANCE["endpoints"], public="http://192.0.2.1:9292")
    assert filters.registration_missing(_token(endpoints=moved), GLANCE) == ["public endpoint http://10.0.0.10:9292"]
    no_admin = {k: v for k, v in GLANCE["endpoints"].items() if k != "admin"}
    assert filters.registration_missing(_token(endpoints=no_admin), GLANCE) == ["admin endpoint http://10.1.0.10:9292"]
    other_region = dict(GLANCE, region="RegionTwo")
    assert len(filters.registration_missing(_token(), other_region)) == 3
    no_service = {"roles": [{"name": "admin"}, {"name": "service"}], "catalog": []}
    assert filters.registration_missing(no_service, GLANCE) == ["catalog service glance (image)"]


def test_registration_url_with_a_project_placeholder():
    cinder = {"name": "cinderv3", "type": "volumev3", "region": "RegionOne", "roles": ["admin"],
              "endpoints": {"public": "http://10.0.0.10:8776/v3/%(project_id)s"}}
    token = {"roles": [{"name": "admin"}], "project": {"id": "p1"},
             "catalog": [{"type": "volumev3", "name": "cinderv3",
                          "endpoints": [{"interface": "public", "url": "http://10.0.0.10:8776/v3/p1",
                                         "region_id": "RegionOne"}]}]}
    assert filters.registration_missing(token, cinder) == []
    token["catalog"][0]["endpoints"][0]["url"] = "http://10.0.0.10:8776/v3/p2"
    assert filters.registration_missing(token, cinder) == ["public endpoint http://10.0.0.10:8776/v3/%(project_id)s"]


def test_running_keeps_the_units_that_run_in_their_order():
    services = {"cinder-api.service": {"state": "running"}, "cinder-backup.service": {"state": "stopped"},
                "cinder-scheduler.service": {"state": "running"}}
    assert filters.running(["cinder-scheduler", "cinder-backup", "cinder-volume", "cinder-api"], services) == [
        "cinder-scheduler", "cinder-api"]
