"""Deploys that survive being killed (`make interrupt-test`, about 30 min,
outside CI's budget): one aio lab, five deploys each killed a little
further on, at a moment seen in the node's own processes (read from this
host's /proc, so nothing on the node has to cooperate):

1. dpkg of the packages phase's install job has run for 10 s (the job
   itself runs on: an asynchronous job outlives its ansible-playbook);
   meanwhile a second deploy is refused with the run lock's message;
2. the Ceph OSD script runs;
3. `keystone-manage db_sync` runs (killed on the node too);
4. `nova-manage db sync` runs: the deploy is killed and the node loses
   its power, then boots again;
5. the test guest is being built.

Each cut kills the deploy and every process it started (as a dead
workstation would).  Then a deploy runs to the end, `verify` passes (a
server answers on a floating IP, SSH into it, a volume) and `deploy
--full` changes nothing.  Timings are printed, not asserted.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from stackwright_cli import lab_copy, last_deploy, network_report, opt_in_lab, sw

from stackwright.lab import Lab
from stackwright.loader import load

pytestmark = opt_in_lab("STACKWRIGHT_INTERRUPT_TEST", "about 30 min: `make interrupt-test` runs it")

INVENTORY = Path(__file__).resolve().parents[2] / "inventories" / "aio.yml"


def _ppids() -> dict[int, int]:
    """Every process of this host and its parent."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # gone meanwhile
                continue
            found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return found


def descendants(root: int) -> list[int]:
    """The processes below *root*, parents first."""
    ppids, found, todo = _ppids(), [], [root]
    while todo:
        parent = todo.pop(0)
        children = [pid for pid, ppid in ppids.items() if ppid == parent]
        found += children
        todo += children
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def node_processes(lab: Lab, pattern: str) -> list[int]:
    """The node's processes whose command line matches *pattern*."""
    init = lab.init_pid(lab.inv.nodes[0])
    return [pid for pid in descendants(init) if re.search(pattern, cmdline(pid))] if init else []


def kill_tree(proc: subprocess.Popen[str]) -> None:
    """The deploy and everything it started (ansible-runner gives
    ansible-playbook a session of its own), as if the workstation died."""
    for pid in [proc.pid, *descendants(proc.pid)]:
        with contextlib.suppress(ProcessLookupError):  # ended meanwhile
            os.kill(pid, signal.SIGKILL)
    proc.wait(timeout=60)


def deploy_until(path: Path, log: Path, moment: str, reached: Callable[[], bool],
                 timeout: float = 2400) -> tuple[subprocess.Popen[str], float]:
    """Start a deploy; return it (still running) once *reached* holds, and
    the seconds it took.  Fails when the deploy ends first."""
    start = time.monotonic()
    with open(log, "w") as out:  # a file, not a pipe: a full pipe would stall the deploy
        proc = subprocess.Popen([sys.executable, "-m", "stackwright", "deploy", str(path)],
                                stdout=out, stderr=subprocess.STDOUT, text=True)
    while not reached():
        if proc.poll() is not None or time.monotonic() - start > timeout:
            if proc.poll() is None:
                kill_tree(proc)
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
            pytest.fail(f"the deploy ended (rc {proc.returncode}) or timed out before {moment}:\n{tail}")
        time.sleep(0.5)
    return proc, time.monotonic() - start


def held_for(pattern: str, lab: Lab, seconds: float) -> Callable[[], bool]:
    """A process matching *pattern* has run on the node for *seconds*."""
    since: dict[str, float] = {}

    def check() -> bool:
        if not node_processes(lab, pattern):
            since.pop("t", None)
            return False
        since.setdefault("t", time.monotonic())
        return time.monotonic() - since["t"] >= seconds

    return check


@pytest.fixture(scope="module")
def lab_inventory(tmp_path_factory: pytest.TempPathFactory):
    yield from lab_copy(INVENTORY, "aio", "e2eint", tmp_path_factory.mktemp("e2eint"),
                        {"10.42.": "10.92.", "10.43.": "10.93.", "10.44.": "10.94.", "10.45.": "10.95."})


def test_deploy_killed_at_five_points_converges(lab_inventory: Path):
    timings: dict[str, float] = {}
    sw("lab", "up", str(lab_inventory))
    lab = Lab(load(lab_inventory))
    node = lab.inv.nodes[0]
    logs = lab_inventory.parent

    # 1. mid-install: dpkg has worked for 10 s in the packages phase's job
    dpkg_held = held_for(r"^(/usr/bin/)?dpkg ", lab, 10)
    proc, timings["cut 1: mid-install"] = deploy_until(
        lab_inventory, logs / "deploy-1.log", "dpkg ran 10 s in the install job",
        lambda: dpkg_held() and bool(node_processes(lab, "stackwright-install-packages")))
    second = sw("deploy", str(lab_inventory), check=False)  # while the first one runs
    assert second.returncode != 0 and "another run is changing cloud 'e2eint'" in second.stdout + second.stderr, \
        second.stdout + second.stderr
    kill_tree(proc)

    # 2. the Ceph OSD's creation
    proc, timings["cut 2: Ceph OSD"] = deploy_until(
        lab_inventory, logs / "deploy-2.log", "the OSD script",
        lambda: bool(node_processes(lab, "stackwright-ceph-osd")))
    kill_tree(proc)

    # 3. Keystone's schema migration, killed on the node too
    proc, timings["cut 3: keystone db_sync"] = deploy_until(
        lab_inventory, logs / "deploy-3.log", "keystone-manage db_sync",
        lambda: bool(node_processes(lab, r"keystone-manage .*db_sync")))
    kill_tree(proc)
    for pid in node_processes(lab, r"keystone-manage .*db_sync"):
        os.kill(pid, signal.SIGKILL)

    # 4. a power cut of the node in the middle of Nova's schema migration
    proc, timings["cut 4: power cut in nova db sync"] = deploy_until(
        lab_inventory, logs / "deploy-4.log", "nova-manage db sync",
        lambda: bool(node_processes(lab, r"nova-manage .*\bdb sync")))
    kill_tree(proc)
    assert lab.power_off(node)
    start = time.monotonic()
    lab.power_on(node)
    timings["node boot"] = time.monotonic() - start

    # 5. the test guest's build
    proc, timings["cut 5: test guest build"] = deploy_until(
        lab_inventory, logs / "deploy-5.log", "the test guest's build",
        lambda: bool(node_processes(lab, "stackwright-build-testguest")))
    kill_tree(proc)

    # to the end, then the cloud works, then nothing is left to change
    start = time.monotonic()
    done = sw("deploy", str(lab_inventory), timeout=2400)
    timings["deploy to the end"] = time.monotonic() - start
    assert "deployed" in done.stdout
    start = time.monotonic()
    verify = sw("verify", str(lab_inventory), check=False)
    timings["verify"] = time.monotonic() - start
    assert verify.returncode == 0, verify.stdout + verify.stderr + network_report(lab)
    for step in ("floating IP answers ping", "SSH into the guest", "volume attached"):
        assert re.search(rf"passed {step} \(", verify.stdout), verify.stdout
    start = time.monotonic()
    full = sw("deploy", "--full", str(lab_inventory), timeout=2400)
    timings["deploy --full"] = time.monotonic() - start
    summary = last_deploy(lab_inventory)
    assert summary["changed_by_host"] == {"aio1": 0} and summary["skipped_phases"] == [], \
        (summary, full.stdout[-4000:])
    print("\n" + "\n".join(f"{what:34} {secs:7.0f} s" for what, secs in timings.items()))
