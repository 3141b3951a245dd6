"""One run at a time against a cloud: the run lock (stackwright/lock.py)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackwright import lock
from stackwright.main import cli

REPO = Path(__file__).resolve().parents[2]

# a second process that takes the lock of the work directory it is given,
# says so, and keeps it until its standard input closes
HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from stackwright import lock
    work, sys.argv = Path(sys.argv[1]), ["stackwright", "deploy", "mycloud.yml"]
    with lock.held(work, "mycloud"):
        print("held", flush=True)
        sys.stdin.read()
""")


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    work = tmp_path / ".stackwright" / "mycloud"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(work)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield work, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_a_second_run_is_refused_naming_the_first(holder):
    work, proc = holder
    with pytest.raises(lock.Locked) as refused, lock.held(work, "mycloud"):
        pytest.fail("took a lock another process holds")
    message = str(refused.value)
    assert message.startswith("another run is changing cloud 'mycloud' from this machine (pid ")
    assert f"pid {proc.pid}: stackwright deploy mycloud.yml (since " in message
    assert "wait for it to end, or stop it, then run again" in message


def test_a_killed_run_leaves_nothing_to_clean_up(holder):
    work, proc = holder
    proc.kill()  # the kernel drops its lock with it
    proc.wait()
    with lock.held(work, "mycloud"):
        assert "stackwright" in (work / "run.lock").read_text()
    assert (work / "run.lock").read_text() == ""  # released: the file says nobody


def test_the_lock_is_reentrant_within_one_run(tmp_path: Path):
    """node add runs a deploy and then its peer playbook under one lock."""
    work = tmp_path / "w"
    with lock.held(work, "c"), lock.held(work, "c"):
        pass
    with lock.held(work, "c"):  # and free again afterwards
        pass


def test_deploy_is_refused_before_it_touches_anything(holder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    work, _proc = holder
    from stackwright.commands import deploy

    def past_the_lock(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("deploy got past the lock")

    monkeypatch.setattr(deploy, "render", past_the_lock)  # nothing is rendered or run, no node is reached
    monkeypatch.setattr(deploy, "run_playbook", past_the_lock)
    inventory = tmp_path / "mycloud.yml"
    text = (REPO / "inventories" / "aio.yml").read_text().replace("name: aio\n", "name: mycloud\n")
    inventory.write_text(text)
    assert work == tmp_path / ".stackwright" / "mycloud"
    result = CliRunner().invoke(cli, ["deploy", str(inventory)])
    assert result.exit_code != 0
    assert "another run is changing cloud 'mycloud' from this machine" in result.output
    assert not (tmp_path / "mycloud.secrets.yml").exists(), "it wrote the secrets file"
    assert not (work / "inventory").exists(), "it rendered the inventory"
    shutil.rmtree(work, ignore_errors=True)
