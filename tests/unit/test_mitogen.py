"""`deploy --mitogen`: the strategy plugin Stackwright points Ansible at
loads on this ansible-core and runs tasks (locally, through Mitogen)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stackwright.runner import mitogen_env


def test_mitogen_strategy_runs_a_play(tmp_path: Path):
    env = mitogen_env()
    assert Path(env["ANSIBLE_STRATEGY_PLUGINS"], "mitogen_linear.py").is_file()
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n  connection: local\n  gather_facts: false\n  tasks:\n"
        "    - name: Run a module\n      ansible.builtin.command: echo through-mitogen\n"
        "      register: out\n      changed_when: false\n"
        "    - name: Where it ran\n      ansible.builtin.debug:\n        msg: '{{ out.stdout }}'\n"
    )
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(playbook)],
        env={**os.environ, **env, "ANSIBLE_PYTHON_INTERPRETER": sys.executable}, capture_output=True, text=True,
        check=False, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"msg": "through-mitogen"' in proc.stdout
    # the strategy really is Mitogen's (ansible-core warns that it is third-party)
    assert "strategy plugins not included in ansible.builtin" in proc.stdout + proc.stderr
