"""The end-to-end tests run the stackwright CLI as a user would: a failure or
a timeout fails the test with the command's output."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def _tail(output: str | bytes | None, lines: int = 60) -> str:
    text = output.decode(errors="replace") if isinstance(output, bytes) else output or ""
    return "\n".join(text.splitlines()[-lines:])


def sw(*args: str, env: dict[str, str] | None = None, check: bool = True,
       timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run([sys.executable, "-m", "stackwright", *args], capture_output=True, text=True,
                              env=env, check=False, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"stackwright {' '.join(args)} did not finish in {e.timeout:.0f}s\n{_tail(e.stdout)}")
    if check and proc.returncode != 0:
        pytest.fail(f"stackwright {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def lab_copy(source: Path, old_name: str, new_name: str, folder: Path, subnets: dict[str, str],
             extra: str = "") -> Iterator[Path]:
    """A copy of an example inventory for a test's own lab (another cloud
    name, other subnets, *extra* text appended), its lab removed before
    (leftovers of an interrupted run) and after."""
    text = source.read_text().replace(f"name: {old_name}\n", f"name: {new_name}\n")
    for old, new in subnets.items():
        text = text.replace(old, new)
    path = folder / f"{new_name}.yml"
    path.write_text(text + extra)
    sw("lab", "down", str(path))
    yield path
    sw("lab", "down", str(path))
