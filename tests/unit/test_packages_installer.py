"""The packages phase's installer script (roles/packages/files), run with
stand-in apt-get and dpkg that record their calls and fail on demand."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "packages" / "files" / "stackwright-install-packages"

# each call appends "<tool> <niceness> <args>" to $CALLS; apt-get fails while
# $FAIL_APT names a file holding a positive count (decremented per failure),
# or always for a package named "broken"
STAND_IN = """#!/bin/sh
echo "$(basename "$0") $(nice) $*" >> "$CALLS"
case " $* " in *" broken "*) exit 100;; esac
if [ "$(basename "$0")" = apt-get ] && [ -s "$FAIL_APT" ]; then
    n=$(cat "$FAIL_APT"); if [ "$n" -gt 0 ]; then echo $((n - 1)) > "$FAIL_APT"; exit 100; fi
fi
exit 0
"""


@pytest.fixture
def run(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("apt-get", "dpkg"):
        (bin_dir / tool).write_text(STAND_IN)
        (bin_dir / tool).chmod(0o755)

    def _run(now: str, later: str, apt_failures: int = 0) -> tuple[int, list[str], Path]:
        proc = start(now, later, apt_failures)
        proc.wait(timeout=60)
        calls = (tmp_path / "calls").read_text().splitlines()
        # every job first finishes what a killed dpkg left (a no-op otherwise)
        assert calls[0] == "dpkg 0 --configure -a"
        return proc.returncode, calls[1:], tmp_path / "run" / "stackwright" / "job"

    def start(now: str, later: str, apt_failures: int = 0, fresh: bool = True) -> subprocess.Popen[str]:
        calls = tmp_path / "calls"
        if fresh:
            calls.write_text("")
        (tmp_path / "fail").write_text(str(apt_failures))
        job = tmp_path / "run" / "stackwright" / "job"  # its parents made by the script, as in /run
        env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls),
               "FAIL_APT": str(tmp_path / "fail")}
        # own session: the script lowers its session's (autogroup) weight
        return subprocess.Popen(["setsid", "-w", "sh", str(SCRIPT), str(job), "10", now, later],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)

    _run.start = start  # type: ignore[attr-defined]
    _run.bin = bin_dir  # type: ignore[attr-defined]
    return _run


def test_installs_now_then_the_rest_at_lower_priority(run):
    rc, calls, job = run("chrony openvswitch-switch", "nova-compute")
    assert rc == 0
    assert (job / "now").read_text() == "ok\n" and (job / "done").read_text() == "ok\n"
    # tool, niceness, then the packages after the options
    assert [(c.split()[0], c.split()[1], c.split("--force-confold ")[1]) for c in calls] == [
        ("apt-get", "0", "chrony openvswitch-switch"),
        ("apt-get", "10", "nova-compute"),
    ]
    assert all(" install -y -q --no-install-recommends " in c for c in calls)


def test_a_failed_package_script_is_run_again_before_apt_is_tried_again(run):
    rc, calls, job = run("", "openstack-dashboard-apache", apt_failures=1)
    assert rc == 0
    assert [c.split()[0] for c in calls] == ["apt-get", "dpkg", "apt-get"]
    assert "--configure --pending" in calls[1]
    assert (job / "done").read_text() == "ok\n"


def test_a_failure_now_fails_both_parts_and_skips_the_rest(run):
    rc, calls, job = run("broken", "nova-compute")
    assert rc == 1
    assert (job / "now").read_text() == "failed\n" and (job / "done").read_text() == "failed\n"
    assert not any("nova-compute" in c for c in calls)
    assert [c.split()[0] for c in calls].count("dpkg") == 1  # its first try worked; apt then failed again


def test_a_failure_later_leaves_now_ok(run):
    rc, _calls, job = run("chrony", "broken")
    assert rc == 1
    assert (job / "now").read_text() == "ok\n" and (job / "done").read_text() == "failed\n"


def test_a_second_job_waits_for_the_first(run, tmp_path):
    """A deploy killed mid-install leaves its job running; the next deploy's
    job starts meanwhile.  It waits on the lock and calls neither dpkg nor
    apt-get until the first has ended."""
    slow = run.bin / "apt-get"
    slow.write_text(STAND_IN.replace('exit 0\n', 'case " $* " in *" slow "*) sleep 3;; esac\nexit 0\n'))
    first = run.start("slow", "")
    calls = tmp_path / "calls"
    for _ in range(100):  # the first is in apt-get
        if "slow" in calls.read_text():
            break
        time.sleep(0.05)
    second = run.start("chrony", "", fresh=False)
    time.sleep(1)
    assert second.poll() is None and "chrony" not in calls.read_text()  # waiting
    assert first.wait(timeout=30) == 0 and second.wait(timeout=30) == 0
    tools = [c.split(" 0 ")[0] + " " + c.split()[-1] for c in calls.read_text().splitlines()]
    assert tools == ["dpkg -a", "apt-get slow", "dpkg -a", "apt-get chrony"]
