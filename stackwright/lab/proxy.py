"""The package cache every lab on this machine shares.

One apt-cacher-ng for every lab (several labs run side by side: molecule
lanes, tests); it listens on the host's loopback only and each lab's
management bridge forwards its proxy port to it.  apt-cacher-ng does not
support two daemons on one cache directory: they race on index files and a
node's apt can stall.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
from collections.abc import Iterator
from pathlib import Path

from ..paths import state_dir
from .host import alive, port_open, run, stop, wait_until
from .sources import debian_archive_uri

PROXY_PORT = 3142  # what the nodes connect to, on their bridge address
SHARED_PROXY = ("127.0.0.1", 3143)  # the one apt-cacher-ng (not the distribution's 3142)


def proxy_dir() -> Path:
    return state_dir() / "proxy"


@contextlib.contextmanager
def _proxy_lock() -> Iterator[None]:
    """Labs start and stop the shared proxy one at a time."""
    proxy_dir().mkdir(parents=True, exist_ok=True)
    with open(proxy_dir() / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def proxy_rules(dev: str, address: str) -> list[list[str]]:
    """The nat rule that hands a lab's proxy port to the shared cache."""
    shared = ":".join(map(str, SHARED_PROXY))
    return [["PREROUTING", "-t", "nat", "-i", dev, "-p", "tcp", "-d", address, "--dport", str(PROXY_PORT),
             "-j", "DNAT", "--to-destination", shared, "-m", "comment", "--comment", "stackwright-lab"]]


def ensure_proxy() -> None:
    """Start the machine's shared apt-cacher-ng unless it runs already."""
    with _proxy_lock():
        if alive(proxy_dir() / "pid"):
            return
        conf = proxy_dir() / "conf"
        shutil.rmtree(conf, ignore_errors=True)
        shutil.copytree("/etc/apt-cacher-ng", conf)
        (conf / "backends_debian").write_text(debian_archive_uri() + "\n")
        (proxy_dir() / "log").mkdir(parents=True, exist_ok=True)
        cache = Path("/var/cache/apt-cacher-ng")
        cache.mkdir(parents=True, exist_ok=True)
        address, port = SHARED_PROXY
        run("/usr/sbin/apt-cacher-ng", "-c", str(conf), "ForeGround=0", f"BindAddress={address}",
            f"Port={port}", f"PidFile={proxy_dir() / 'pid'}", f"LogDir={proxy_dir() / 'log'}",
            f"CacheDir={cache}",
            # an index file fetched less than 10 minutes ago is served
            # as it is: fewer refreshes of the same InRelease, which
            # collide when two arrive in the same second ("Failure to
            # move file ... out of the way ... File exists", after which
            # the client's apt hangs)
            "FreshIndexMaxAge=600")
        # the daemon writes its pid file after it listens: wait for both,
        # or the next lab would start a second one (which fails to bind
        # and takes the pid file with it)
        wait_until(lambda: port_open(address, port) and alive(proxy_dir() / "pid"), 20,
                   "apt-cacher-ng did not start")


def release_proxy(lab_dir: Path) -> None:
    """Stop the shared apt-cacher-ng when no lab but *lab_dir*'s is left."""
    with _proxy_lock():
        others = [d for d in lab_dir.parent.iterdir() if d.is_dir() and d != lab_dir]
        if not others:
            stop(proxy_dir() / "pid", timeout=10)
