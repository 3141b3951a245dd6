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
