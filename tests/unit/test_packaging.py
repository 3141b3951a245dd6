"""An installed wheel carries roles/, playbooks/ and templates/ and works
outside the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_carries_data_and_runs_outside_the_tree(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(REPO)], check=True, capture_output=True)
    wheel = next(dist.glob("stackwright-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("stackwright/main.py", "stackwright/data/playbooks/site.yml",
                   "stackwright/data/roles/keystone/tasks/main.yml",
                   "stackwright/data/templates/inventory/hosts.yml.j2", "stackwright/data/ansible.cfg",
                   "stackwright/data/plugins/filter/stackwright.py"):
        assert needed in names, needed
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "aio.yml").write_text((REPO / "inventories" / "aio.yml").read_text())
    env = dict(os.environ, PYTHONPATH=str(target))
    probe = subprocess.run(
        [sys.executable, "-c", "from stackwright.paths import data_dir; print(data_dir())"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    )
    assert probe.stdout.strip() == str(target / "stackwright" / "data")
    out = subprocess.run([sys.executable, "-m", "stackwright", "render", "aio.yml", "-o", "out"], cwd=elsewhere,
                         env=env, capture_output=True, text=True, check=True)
    assert "rendered aio.yml" in out.stdout
    assert (elsewhere / "out" / "host_vars" / "aio1.yml").exists()
