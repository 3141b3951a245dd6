"""The tap re-plug watcher (roles/openvswitch/files/stackwright-ovs-replug)
decides from link events what to re-plug; its OVS and kernel reads are
replaced here by a small fake, its decisions are the real code."""

from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "openvswitch" / "files" / "stackwright-ovs-replug"
_loader = importlib.machinery.SourceFileLoader("stackwright_ovs_replug", str(SCRIPT))
_spec = importlib.util.spec_from_loader("stackwright_ovs_replug", _loader)
assert _spec is not None
replug_mod: Any = importlib.util.module_from_spec(_spec)
_loader.exec_module(replug_mod)

TAP = "tap0a1b2c3d-4e"


class Host:
    """A node as the watcher reads it: the tap's Interface row and device."""

    def __init__(self) -> None:
        self.row = "row-1"  # the port's Interface row ("" : no port)
        self.device: int | None = 9  # the tap's ifindex (None: no device)
        self.replugged: list[tuple[str, int]] = []
        self.vm = "uuid-of-the-server"  # the port's external_ids:vm-uuid ("": not Nova's)
        self.bits = 0x1103  # the device's flags: UP, BROADCAST, PROMISC, MULTICAST
        self.set_up: list[str] = []

    def vsctl(self, *args: str) -> str:
        assert args[-1] in ("_uuid", "external_ids:vm-uuid"), args
        return self.row if args[-1] == "_uuid" else self.vm if self.row else ""

    def flags(self, name: str) -> int | None:
        return self.bits if self.device is not None else None

    def up(self, name: str) -> None:
        self.set_up.append(name)
        self.bits |= 0x1

    def ifindex(self, name: str) -> int | None:
        return self.device

    def replug(self, name: str, index: int) -> None:
        self.replugged.append((name, index))
        self.row = f"row-{len(self.replugged) + 1}"


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Host:
    h = Host()
    monkeypatch.setattr(replug_mod, "vsctl", h.vsctl)
    monkeypatch.setattr(replug_mod, "ifindex", h.ifindex)
    monkeypatch.setattr(replug_mod, "replug", h.replug)
    monkeypatch.setattr(replug_mod, "flags", h.flags)
    monkeypatch.setattr(replug_mod, "set_up", h.up)
    return h


def gone(w: Any, h: Host, index: int, at: float) -> None:
    h.device = None
    w.event(f"Deleted {index}: {TAP}: <BROADCAST,MULTICAST> mtu 1450", at)


def made(w: Any, h: Host, index: int, at: float) -> None:
    h.device = index
    w.event(f"{index}: {TAP}: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN", at)


def test_a_soft_reboot_is_replugged_once_after_the_new_tap_stays(host: Host) -> None:
    """qemu's tap goes, libvirt's passing tap lives a millisecond, qemu's
    new one stays: one re-plug, on the new device, once it has stayed."""
    w = replug_mod.Watcher()
    gone(w, host, 9, 0.0)
    made(w, host, 10, 0.2)
    gone(w, host, 10, 0.201)
    w.due(1.5)
    assert host.replugged == []
    made(w, host, 11, 2.0)
    w.due(2.5)
    assert host.replugged == []  # not steady yet
    w.due(2.0 + replug_mod.STEADY)
    assert host.replugged == [(TAP, 11)]
    w.due(10.0)
    assert host.replugged == [(TAP, 11)]


def test_a_passing_tap_alone_is_left_alone(host: Host) -> None:
    """A server deleted: the tap goes, libvirt's passing tap, os-vif takes
    the port away: nothing is re-plugged, no port comes back."""
    w = replug_mod.Watcher()
    gone(w, host, 9, 0.0)
    made(w, host, 10, 0.2)
    gone(w, host, 10, 0.201)
    host.row = ""
    w.due(5.0)
    assert host.replugged == []


def test_a_port_plugged_anew_is_left_alone(host: Host) -> None:
    """A stop and start: os-vif replaced the row before the new tap came."""
    w = replug_mod.Watcher()
    gone(w, host, 9, 0.0)
    host.row = "row-by-os-vif"
    made(w, host, 10, 1.0)
    w.due(5.0)
    assert host.replugged == []


def test_a_tap_without_a_past_is_left_alone(host: Host) -> None:
    """A new server: its tap appears under a port no device had before."""
    w = replug_mod.Watcher()
    made(w, host, 12, 0.0)
    w.due(5.0)
    assert host.replugged == []


def test_other_devices_and_lines_are_ignored(host: Host) -> None:
    w = replug_mod.Watcher()
    w.event("Deleted 3: eth1: <BROADCAST,MULTICAST> mtu 1500", 0.0)
    w.event("garbage", 0.0)
    assert w.gone == {} and w.steady == {}


def flagged(w: Any, h: Host, index: int, bits: int, names: str, at: float) -> None:
    h.device, h.bits = index, bits
    w.event(f"{index}: {TAP}: <{names}> mtu 1450 qdisc noqueue state DOWN", at)


def test_a_tap_whose_up_flag_ovs_took_is_set_up_once(host: Host) -> None:
    """libvirt sets the new tap up, OVS's promiscuous write clears it: the
    tap stays down and promiscuous; after STEADY it is set up, once."""
    w = replug_mod.Watcher()
    flagged(w, host, 294, 0x1003, "BROADCAST,MULTICAST,UP,LOWER_UP", 0.0)
    flagged(w, host, 294, 0x1102, "BROADCAST,MULTICAST,PROMISC", 0.002)
    w.due(0.5)
    assert host.set_up == []  # not steady yet: libvirt may still be at work
    w.due(0.002 + replug_mod.STEADY)
    assert host.set_up == [TAP]
    flagged(w, host, 294, 0x1103, "BROADCAST,MULTICAST,PROMISC,UP,LOWER_UP", 1.1)
    w.due(10.0)
    assert host.set_up == [TAP] and host.replugged == []


def test_a_tap_that_comes_up_by_itself_is_left_alone(host: Host) -> None:
    w = replug_mod.Watcher()
    flagged(w, host, 30, 0x1002, "BROADCAST,MULTICAST", 0.0)
    flagged(w, host, 30, 0x1103, "BROADCAST,MULTICAST,PROMISC,UP,LOWER_UP", 0.3)
    w.due(5.0)
    assert host.set_up == []


def test_a_down_tap_not_of_a_server_or_not_opened_by_ovs_is_left_alone(host: Host) -> None:
    """A DHCP port's tap before it moves to its namespace (no vm-uuid), a
    tap OVS has not opened (not promiscuous), a tap that went meanwhile."""
    w = replug_mod.Watcher()
    host.vm = ""
    flagged(w, host, 40, 0x1102, "BROADCAST,MULTICAST,PROMISC", 0.0)
    w.due(5.0)
    host.vm = "uuid-of-the-server"
    flagged(w, host, 41, 0x1002, "BROADCAST,MULTICAST", 6.0)
    w.due(10.0)
    flagged(w, host, 42, 0x1102, "BROADCAST,MULTICAST,PROMISC", 11.0)
    host.device = 43  # another device of the name by now
    w.due(15.0)
    assert host.set_up == []
