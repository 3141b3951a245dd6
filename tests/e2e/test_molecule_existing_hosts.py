"""The documented path for running role scenarios on hosts a user already
has: the lab brings nodes up first (standing in for the user's VMs), molecule
runs with STACKWRIGHT_MOLECULE_LAB=0 and plain Ansible SSH settings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stackwright.lab import Lab
from stackwright.loader import load

pytestmark = [pytest.mark.lab, pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root")]

REPO = Path(__file__).resolve().parents[2]


def sw(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "stackwright", *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"stackwright {' '.join(args)}: {result.stdout}{result.stderr}"


def test_memcached_scenario_on_existing_hosts(tmp_path: Path):
    text = (REPO / "molecule" / "inventories" / "single.yml").read_text()
    # Subnets no other lab test uses, so a run beside another lab still passes.
    text = text.replace("name: molecule1", "name: myvms").replace("10.72.", "10.86.").replace("10.73.", "10.87.")
    inventory = tmp_path / "my-vms.yml"
    inventory.write_text(text)
    lab = Lab(load(inventory))
    try:
        sw("lab", "up", str(inventory))  # "the user's VMs"
        bindir = Path(sys.executable).parent
        env = dict(
            os.environ,
            PATH=f"{bindir}:{os.environ.get('PATH', '')}",
            STACKWRIGHT_MOLECULE_INVENTORY=str(inventory),
            STACKWRIGHT_MOLECULE_LAB="0",
            NO_COLOR="1",
            ANSIBLE_PRIVATE_KEY_FILE=str(lab.key),
            ANSIBLE_SSH_COMMON_ARGS=f"-o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes",
        )
        result = subprocess.run([str(bindir / "molecule"), "test"], cwd=REPO / "roles" / "memcached", env=env,
                                capture_output=True, text=True, check=False, timeout=900)
        out = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
        assert result.returncode == 0, out[-4000:]
        assert "idempotence: Executed: Successful" in out
        assert "verify: Executed: Successful" in out
        assert lab.is_up(), "destroy must leave existing hosts alone"
        assert (tmp_path / "my-vms.secrets.yml").stat().st_mode & 0o777 == 0o600
    finally:
        sw("lab", "down", str(inventory))
