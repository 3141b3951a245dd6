"""One run at a time against a cloud from this machine.

A deploy, or a day-2 command that runs a playbook, holds an exclusive
`flock` on `run.lock` in the cloud's work directory for as long as it
changes the cloud.  A second one started meanwhile is refused at once,
before it renders or runs anything, naming the run that holds the lock
(its PID, command line and start time, written into the file).  The
kernel drops the lock with its process, so a killed run leaves nothing
to clean up: the next run takes the lock and converges.

Re-entrant within a process: `node add` runs a deploy, then its peer
playbook, under the one lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

_held: dict[Path, int] = {}  # lock files this process holds, and how deep


class Locked(Exception):
    """Another run holds the cloud's lock; the message says which."""


def _this_run() -> str:
    args = " ".join(sys.argv[1:])
    return f"pid {os.getpid()}: stackwright {args} (since {time.strftime('%Y-%m-%d %H:%M:%S')})"


@contextlib.contextmanager
def held(work: Path, cloud: str) -> Iterator[None]:
    """Hold cloud *cloud*'s run lock (in its work directory *work*) for the
    block, or raise Locked at once."""
    work.mkdir(parents=True, exist_ok=True)
    path = (work / "run.lock").resolve()
    if path in _held:
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    with open(path, "a+", encoding="utf-8") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise Locked(f"another run is changing cloud {cloud!r} from this machine ({holder}): wait for it "
                         f"to end, or stop it, then run again (lock: {path})") from None
        lock.seek(0)
        lock.truncate()
        lock.write(_this_run() + "\n")
        lock.flush()
        _held[path] = 1
        try:
            yield
        finally:
            del _held[path]
            lock.seek(0)
            lock.truncate()
