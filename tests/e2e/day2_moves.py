"""The day-2 moves of a server that the multinode and the HA end-to-end
tests both make, through the CLI as an operator does, each observed from
outside: the API, the guest's console (its uptime, its disk marker) and a
ping through its floating IP."""

from __future__ import annotations

import json
import time
from typing import Any

from stackwright_cli import sw

from stackwright.guest import Pinger, diskmarks, uptime
from stackwright.migrate import wait


def as_json(*args: str) -> dict[str, Any]:
    done = sw(*args, "--format", "json", timeout=1800)
    return json.loads(done.stdout)


def refused(*args: str) -> str:
    """A command that must fail: its output, on one line."""
    done = sw(*args, check=False, timeout=600)
    assert done.returncode != 0, done.stdout
    return " ".join((done.stdout + done.stderr).split())


def watched(conn: Any, server: Any, address: str) -> tuple[str, Pinger]:
    """The server's disk marker (its first boot wrote it) and a pinger of
    its floating IP, once the guest answers and its console shows uptime."""
    mark = wait("the guest's disk marker", lambda: diskmarks(conn, server), 600, 2)[-1]
    pinger = Pinger(address, interval=0.1)
    pinger.start()
    wait("ping through the floating IP", lambda: pinger.answered, 300, 1)
    wait("the guest's uptime on its console", lambda: uptime(conn, server), 60, 1)
    return mark, pinger


def live_then_cold(inventory: str, conn: Any, server: Any, pinger: Pinger, there: str, back: str,
                   timings: dict[str, float]) -> None:
    """A live migration of *server* from *back* to *there* (the guest keeps
    running: its uptime goes on; the longest ping gap is timed), then a
    cold migration (resize-confirm) back."""
    name = server.name
    before = uptime(conn, server)
    called = time.time()
    live = as_json("server", "migrate", inventory, name, "--live", "--to", there)
    done = time.time()
    assert (live["result"], live["mode"], live["source"], live["to"], live["block"]) == \
        ("moved", "live", back, there, False), live
    after = wait("the guest's uptime after the move", lambda: (u := uptime(conn, server)) > before and u, 60, 1)
    assert after > before  # a rebooted guest's uptime would start again from 0
    time.sleep(3)
    gap, _lost = pinger.gap(called, done + 3)
    timings["live migration"], timings["its longest ping gap"] = done - called, gap

    start = time.monotonic()
    cold = as_json("server", "migrate", inventory, name, "--to", back)
    timings["cold migration"] = time.monotonic() - start
    assert (cold["result"], cold["mode"], cold["to"], cold["status_after"]) == ("moved", "cold", back, "ACTIVE"), cold


def evacuate(inventory: str, conn: Any, server: Any, pinger: Pinger, mark: str, dead: str, to: str,
             timings: dict[str, float]) -> None:
    """*dead* (where *server* runs) fenced through its BMC: the server is
    rebuilt on *to* from its own disk (Ceph: the marker is the one it had)
    and answers ping again."""
    start = time.monotonic()
    evacuated = as_json("node", "evacuate", inventory, dead, "--fence")
    timings["power cut to ACTIVE elsewhere"] = time.monotonic() - start
    assert evacuated["evacuated"] is True
    assert [(r["server"], r["result"], r["to"], r["status_after"]) for r in evacuated["servers"]] == \
        [(server.name, "evacuated", to, "ACTIVE")], evacuated
    assert wait("the disk marker after the evacuation", lambda: diskmarks(conn, server), 300, 2) == [mark]
    answered = len(pinger.answered)
    wait("ping after the evacuation", lambda: len(pinger.answered) > answered + 5, 300, 1)


def back_in_service(inventory: str, conn: Any, dead: str, computes: list[str], timings: dict[str, float]) -> None:
    """The evacuated node comes back: not before it has power; then its
    evacuated servers' remains are removed and it is enabled; every compute
    service of *computes* is up and enabled."""
    assert f"{dead} is powered off: power it on first" in refused("node", "enable", inventory, dead)
    assert f"{dead}: power on" in sw("node", "power", inventory, dead, "on").stdout
    start = time.monotonic()
    back = sw("node", "enable", inventory, dead, timeout=900)
    timings["node back in service"] = time.monotonic() - start
    assert "evacuated servers' remains removed, forced-down state lifted; compute service enabled" in \
        back.stdout, back.stdout
    services = {s.host: s for s in conn.compute.services(binary="nova-compute")}
    assert {h: (s.status, s.state, s.is_forced_down) for h, s in services.items()} == \
        {h: ("enabled", "up", False) for h in computes}
