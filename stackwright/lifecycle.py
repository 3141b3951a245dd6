"""`stackwright verify --lifecycle`: what users do to their servers every
day, each a step with its result and time, on verify's own test server
(the steps after "volume attached", before "clean up").

Each step checks what the operation is for, not only the state Nova
reports: a snapshot carries the disk (a server booted from it prints the
same disk marker), shelve and unshelve keep the disk, a rebuild gives a new
one, a reboot boots the guest again, a resize changes the flavor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .guest import DISKMARK, HOSTKEY_MARK, Pinger
from .verify import StepFailed, StepSkipped, Verify, ping, wait_for


class Lifecycle(Verify):
    """verify's steps, and the day-to-day operations on its server."""

    def _state(self, wanted: str, what: str) -> Any:
        def reached() -> Any:
            s = self.conn.compute.get_server(self._server.id)
            if s.status == "ERROR":
                raise StepFailed(f"{what}: server went to ERROR: {(s.fault or {}).get('message', 'no message')}")
            return s if s.status == wanted and not s.task_state else None
        return wait_for(f"{what}: server {wanted}", reached, self.opts.timeout, interval=2)

    def _answers(self, what: str) -> str:
        """ACTIVE is Nova's word; the guest answering through its floating
        IP is the user's (a resume or a reboot that leaves the guest's tap
        unplugged is ACTIVE too)."""
        if not self._address:
            return ""
        if not ping(self._address, self.opts.timeout):
            raise StepFailed(f"{what}: ACTIVE, but {self._address} does not answer ping")
        return ", answers ping"

    def _pair(self, first: Callable[[Any], None], middle: str, second: Callable[[Any], None], what: str) -> str:
        first(self._server)
        self._state(middle, what)
        second(self._server)
        self._state("ACTIVE", what)
        return f"{middle}, then ACTIVE again{self._answers(what)}"

    def _marks(self) -> list[str]:
        return DISKMARK.findall(self._console())

    def _mark(self) -> str:
        """The disk marker the guest printed last (waiting for its boot)."""
        return str(wait_for("the guest's disk marker", self._marks, self.opts.timeout)[-1])

    def _need_server(self) -> None:
        if self._server is None:
            raise StepSkipped("no server")

    # -- steps ---------------------------------------------------------------
    def snapshot(self) -> str:
        """Snapshot the server, boot a second one from the snapshot: it has
        the first one's disk (the same marker)."""
        self._need_server()
        mark = self._mark()
        image = self.conn.compute.create_server_image(self._server, name=f"{self._server.name}-snap", wait=True,
                                                      timeout=self.opts.timeout)
        self._cleanup.append(("snapshot", lambda: self.conn.image.delete_image(image)))
        clone = self.conn.compute.create_server(
            name=f"{self._server.name}-fromsnap", image_id=image.id,
            flavor_id=self.conn.compute.find_flavor(self.opts.flavor, ignore_missing=False).id,
            networks=[{"uuid": self.conn.network.find_network(self.opts.network).id}])

        def remove_clone() -> None:
            self.conn.compute.delete_server(clone)
            self.conn.compute.wait_for_delete(clone, wait=self.opts.timeout)

        self._cleanup.append(("server from the snapshot", remove_clone))
        self.conn.compute.wait_for_server(clone, wait=self.opts.timeout)
        marks = wait_for("the disk marker of the server booted from the snapshot", lambda: DISKMARK.findall(
            self.conn.compute.get_server_console_output(clone)["output"] or ""), self.opts.timeout)
        if marks[-1] != mark:
            raise StepFailed(f"the server from the snapshot has disk {marks[-1]}, the original {mark}")
        remove_clone()
        self._cleanup.pop()
        return "a server booted from the snapshot has the original's disk"

    def stop_start(self) -> str:
        self._need_server()
        return self._pair(self.conn.compute.stop_server, "SHUTOFF", self.conn.compute.start_server, "stop/start")

    def reboot(self) -> str:
        """A soft reboot (the guest is asked to shut down, then started):
        it stops answering ping through its floating IP, answers again,
        and, logged into over SSH (the new boot's host key pinned from the
        console), has been up for less time than since the request."""
        self._need_server()
        if not self._address:
            raise StepSkipped("no floating IP to watch the guest through")
        pinger = Pinger(self._address, interval=0.5)
        pinger.start()
        try:
            wait_for("ping before the reboot", lambda: pinger.answered, self.opts.timeout, interval=1)
            old_key = HOSTKEY_MARK.findall(self._console())[-1:]
            asked = time.time()
            self.conn.compute.reboot_server(self._server, "SOFT")
            self._state("ACTIVE", "reboot")
            wait_for("the guest to go down", lambda: time.time() - (pinger.answered[-1] if pinger.answered else 0) > 3,
                     self.opts.timeout, interval=1)
            down = time.time()
            wait_for("the guest to answer again", lambda: pinger.answered[-1] > down, self.opts.timeout, interval=1)
            gap, _lost = pinger.gap(asked, time.time())
        finally:
            pinger.stop.set()
        if self._ssh is None:
            return f"down and back, answering ping again after {gap:.0f} s without (no SSH to look inside)"
        ssh, address = self._ssh, self._address
        wait_for("the new boot's host key on the console",
                 lambda: HOSTKEY_MARK.findall(self._console())[-1:] not in ([], old_key), self.opts.timeout)
        ssh.pin(address, self._console_log)
        inside = wait_for("SSH after the reboot", lambda: (r := ssh.run(address, "cut -d' ' -f1 /proc/uptime"))
                          .returncode == 0 and r.stdout.strip(), min(self.opts.timeout, 120), interval=3)
        since = time.time() - asked
        if float(inside) >= since:
            raise StepFailed(f"the guest has been up {float(inside):.0f} s, the reboot was asked {since:.0f} s ago")
        return (f"down and back, answering ping again after {gap:.0f} s without; inside, up {float(inside):.0f} s "
                "(a new boot)")

    def pause(self) -> str:
        self._need_server()
        return self._pair(self.conn.compute.pause_server, "PAUSED", self.conn.compute.unpause_server, "pause")

    def suspend(self) -> str:
        self._need_server()
        return self._pair(self.conn.compute.suspend_server, "SUSPENDED", self.conn.compute.resume_server,
                          "suspend")

    def lock(self) -> str:
        self._need_server()
        self.conn.compute.lock_server(self._server, locked_reason="stackwright verify --lifecycle")
        if not self.conn.compute.get_server(self._server.id).is_locked:
            raise StepFailed("the server does not show as locked")
        self.conn.compute.unlock_server(self._server)
        if self.conn.compute.get_server(self._server.id).is_locked:
            raise StepFailed("the server is still locked after unlock")
        return "locked (with its reason), then unlocked"

    def rescue(self) -> str:
        self._need_server()
        return self._pair(self.conn.compute.rescue_server, "RESCUE", self.conn.compute.unrescue_server, "rescue")

    def resize(self) -> str:
        self._need_server()
        before = self.conn.compute.get_server(self._server.id).flavor.name
        bigger = "m1.tiny" if before != "m1.tiny" else "m1.small"
        self.conn.compute.resize_server(self._server, self.conn.compute.find_flavor(bigger, ignore_missing=False).id)
        self._state("VERIFY_RESIZE", "resize")
        self.conn.compute.confirm_server_resize(self._server)
        after = self._state("ACTIVE", "resize confirm")
        if after.flavor.name != bigger:
            raise StepFailed(f"the server has flavor {after.flavor.name} after resizing to {bigger}")
        return f"{before} -> {bigger}, confirmed, on {after.compute_host}{self._answers('resize')}"

    def shelve(self) -> str:
        self._need_server()
        mark = self._mark()
        self.conn.compute.shelve_server(self._server)
        self._state("SHELVED_OFFLOADED", "shelve")
        self.conn.compute.unshelve_server(self._server)
        self._state("ACTIVE", "unshelve")
        marks = wait_for("the disk marker after unshelve", lambda: [m for m in self._marks() if m], self.opts.timeout)
        if marks[-1] != mark:
            raise StepFailed(f"after unshelve the disk is {marks[-1]}, before it was {mark}")
        return f"offloaded and back, with its disk{self._answers('unshelve')}"

    def rebuild(self) -> str:
        self._need_server()
        mark = self._mark()
        image = self.conn.image.find_image(self.opts.image, ignore_missing=False)
        self.conn.compute.rebuild_server(self._server, image.id)
        self._state("ACTIVE", "rebuild")
        fresh = wait_for("a new disk marker after the rebuild", lambda: [m for m in self._marks() if m != mark],
                         self.opts.timeout)
        return f"rebuilt from {self.opts.image}: a new disk ({fresh[-1][-8:]}){self._answers('rebuild')}"

    def more(self) -> list[tuple[str, Callable[[], str]]]:
        return [("snapshot, boot from it", self.snapshot), ("stop and start", self.stop_start),
                ("reboot", self.reboot), ("pause and unpause", self.pause), ("suspend and resume", self.suspend),
                ("lock and unlock", self.lock), ("rescue and unrescue", self.rescue),
                ("resize and confirm", self.resize), ("shelve and unshelve", self.shelve),
                ("rebuild", self.rebuild)]
