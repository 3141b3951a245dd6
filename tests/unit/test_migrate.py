"""`server migrate`'s pre-checks and its reading of Nova's answers, against
a fake of the few openstacksdk calls it makes (the real move is measured
on the multinode lab by bench/migration.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import pytest

from stackwright import migrate
from stackwright.loader import load

INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"
MULTINODE = load(INVENTORIES / "multinode.yml")  # compute nodes cmp1, cmp2; Ceph
AIO = load(INVENTORIES / "aio.yml")


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(migrate.time, "sleep", lambda seconds: None)


class FakeCompute:
    """Servers and services as Nova would list them; the moves it is asked
    for are recorded, and each get_server answers with the next state of
    *timeline* (the last one repeats)."""

    def __init__(self, server: NS, services: list[NS], timeline: list[dict[str, Any]] | None = None):
        self.server, self._services, self.timeline = server, services, list(timeline or [])
        self.calls: list[tuple[str, Any]] = []
        same = {"model": "Cascadelake-Server", "vendor": "Intel", "features": ["avx2", "sse4.2"]}
        self.cpu_info: dict[str, dict[str, Any]] = {"cmp1": same, "cmp2": same}

    def get(self, url: str, microversion: str) -> NS:
        """GET /os-hypervisors/detail at a version that still has cpu_info."""
        assert (url, microversion) == ("/os-hypervisors/detail", "2.87")
        hyps = [{"hypervisor_hostname": f"{h}.multinode.stackwright.test", "cpu_info": json.dumps(info)}
                for h, info in self.cpu_info.items()]
        return NS(json=lambda: {"hypervisors": hyps})

    def find_server(self, ref: str, ignore_missing: bool, all_projects: bool) -> NS | None:
        return self.server if ref in (self.server.name, self.server.id) else None

    def get_server(self, server_id: str) -> NS:
        if self.timeline and self.calls:
            state = self.timeline.pop(0) if len(self.timeline) > 1 else self.timeline[0]
            self.server = NS(**{**vars(self.server), **state})
        return self.server

    def services(self, binary: str) -> list[NS]:
        return self._services

    def server_migrations(self, server_id: str) -> list[NS]:
        return [NS(memory_total_bytes=100, memory_processed_bytes=40)]

    def live_migrate_server(self, server_id: str, host: str | None, block_migration: bool) -> None:
        self.calls.append(("live", (host, block_migration)))

    def migrate_server(self, server_id: str, host: str | None) -> None:
        self.calls.append(("cold", host))

    def confirm_server_resize(self, server_id: str) -> None:
        self.calls.append(("confirm", server_id))


class FakeNodeCompute(FakeCompute):
    """Several servers on cmp1; each move lands on cmp2 at once."""

    def __init__(self, servers: list[NS], services: list[NS]):
        super().__init__(servers[0], services)
        self.all = {s.id: s for s in servers}
        self.migrations_: list[NS] = []

    def servers(self, all_projects: bool, compute_host: str) -> list[NS]:
        return [s for s in self.all.values() if s.compute_host == compute_host]

    def find_server(self, ref: str, ignore_missing: bool, all_projects: bool) -> NS | None:
        return self.all.get(ref)

    def get_server(self, server_id: str) -> NS:
        return self.all[server_id]

    def _moved(self, server_id: str, status: str) -> None:
        self.all[server_id] = NS(**{**vars(self.all[server_id]), "compute_host": "cmp2", "status": status})

    def live_migrate_server(self, server_id: str, host: str | None, block_migration: bool) -> None:
        super().live_migrate_server(server_id, host, block_migration)
        self._moved(server_id, self.all[server_id].status)

    def migrate_server(self, server_id: str, host: str | None) -> None:
        super().migrate_server(server_id, host)
        self.before = self.all[server_id].status
        self._moved(server_id, "VERIFY_RESIZE")

    def confirm_server_resize(self, server_id: str) -> None:
        super().confirm_server_resize(server_id)
        self._moved(server_id, self.before)

    def disable_service(self, service: NS, host: str, binary: str, disabled_reason: str) -> None:
        self.calls.append(("disable", (host, disabled_reason.split(" 20")[0])))
        service.status, service.disabled_reason = "disabled", disabled_reason

    def enable_service(self, service: NS, host: str, binary: str) -> None:
        self.calls.append(("enable", host))
        service.status = "enabled"

    def update_service_forced_down(self, service: NS, host: str, binary: str, forced: bool) -> None:
        self.calls.append(("forced_down", (host, forced)))
        service.is_forced_down = forced
        service.state = "down" if forced else service.state

    def evacuate_server(self, server_id: str) -> None:
        self.calls.append(("evacuate", server_id))
        before = self.all[server_id].status
        self._moved(server_id, "SHUTOFF" if before == "SHUTOFF" else "ACTIVE")
        self.migrations_.append(NS(source_compute="cmp1", migration_type="evacuation", status="done"))

    def migrations(self, source_compute: str, migration_type: str) -> list[NS]:
        self.calls.append(("migrations", source_compute))
        return [m for m in self.migrations_ if m.source_compute == source_compute
                and m.migration_type == migration_type]


class FakeNetwork:
    """Neutron's ports and their bindings (port-bindings-extended): one port
    a server, bound ACTIVE on its node; *leftover* adds an INACTIVE binding
    on that host, as a failed live migration's activation leaves it."""

    def __init__(self, servers: dict[str, str], leftover: dict[str, str] | None = None):
        self.bindings = {f"port-{sid}": {host: "ACTIVE"} for sid, host in servers.items()}
        for sid, host in (leftover or {}).items():
            self.bindings[f"port-{sid}"][host] = "INACTIVE"
        self.deleted: list[tuple[str, str]] = []

    def ports(self, device_id: str) -> list[NS]:
        return [NS(id=f"port-{device_id}")] if f"port-{device_id}" in self.bindings else []

    def port_bindings(self, port: str) -> list[NS]:
        return [NS(host=h, status=st) for h, st in self.bindings[port].items()]

    def delete_port_binding(self, port: str, host: str) -> None:
        assert self.bindings[port].pop(host) == "INACTIVE", "an active binding must never be deleted"
        self.deleted.append((port, host))


def svc(host: str, state: str = "up", status: str = "enabled", reason: str | None = None) -> NS:
    return NS(host=host, state=state, status=status, disabled_reason=reason, is_forced_down=False)


def conn_with(status: str = "ACTIVE", host: str = "cmp1", task: str | None = None,
              services: list[NS] | None = None, timeline: list[dict[str, Any]] | None = None) -> NS:
    server = NS(id="1234", name="web1", status=status, compute_host=host, task_state=task)
    return NS(compute=FakeCompute(server, services if services is not None else [svc("cmp1"), svc("cmp2")],
                                  timeline), network=FakeNetwork({server.id: host}))


@pytest.mark.parametrize(("conn", "live", "to", "message"), [
    (conn_with(), True, None, None),
    (conn_with(status="SHUTOFF"), True, None,
     "server web1 is SHUTOFF; a live migration needs it ACTIVE or PAUSED: migrate it cold (without --live)"),
    (conn_with(status="ERROR"), False, None, "server web1 is ERROR; a cold migration needs it ACTIVE or SHUTOFF"),
    (conn_with(task="migrating"), True, None, "server web1 is busy (migrating)"),
    (conn_with(), True, "cmp1", "server web1 runs on cmp1 already"),
    (conn_with(), True, "net1", "'net1' is not a compute node of cloud multinode (compute nodes: cmp1, cmp2)"),
    (conn_with(services=[svc("cmp1"), svc("cmp2", status="disabled", reason="maintenance")]), True, "cmp2",
     "target cmp2 has its compute service disabled (maintenance) (`openstack compute service set --enable cmp2"),
    (conn_with(services=[svc("cmp1"), svc("cmp2", state="down")]), False, None,
     "no other compute node can take server web1: cmp2 has its compute service down"),
    (conn_with(services=[svc("cmp1", state="down"), svc("cmp2")]), True, "cmp2",
     "its node cmp1 has its compute service down: a migration needs the source node running; if the node is "
     "dead, evacuate the server instead"),
    (conn_with(services=[svc("cmp1")]), True, "cmp2", "target cmp2 has no nova-compute registered"),
], ids=["ok", "live-shutoff", "cold-error", "busy", "same-node", "not-compute", "target-disabled",
        "no-other-node", "source-down", "target-unregistered"])
def test_prechecks_name_what_is_missing(conn, live, to, message):
    if message is None:
        move = migrate.check(conn, MULTINODE, "web1", live, to)
        assert (move.source, move.target, move.live, move.block) == ("cmp1", None, True, False)  # Ceph: no copy
        return
    with pytest.raises(migrate.Refused) as info:
        migrate.check(conn, MULTINODE, "web1", live, to)
    assert message in str(info.value)


def test_unknown_server_and_one_compute_node():
    with pytest.raises(migrate.Refused, match="no server 'nosuch' \\(by name or ID, in any project\\)"):
        migrate.check(conn_with(), MULTINODE, "nosuch", True, None)
    with pytest.raises(migrate.Refused, match="cloud aio has one compute node only"):
        migrate.check(conn_with(host="aio1", services=[svc("aio1")]), AIO, "web1", False, None)


def test_live_move_reports_progress_and_where_it_ended():
    conn = conn_with(timeline=[{"task_state": "migrating"}, {"task_state": "migrating"},
                               {"task_state": None, "compute_host": "cmp2"}])
    said: list[str] = []
    move = migrate.check(conn, MULTINODE, "web1", True, "cmp2")
    result = migrate.run(conn, move, said.append, timeout=30)
    assert conn.compute.calls == [("live", ("cmp2", False))]
    assert result["to"] == "cmp2" and result["mode"] == "live" and result["status_after"] == "ACTIVE"
    assert "ACTIVE, migrating on cmp1; memory 40% copied" in said


def test_cold_move_is_confirmed():
    conn = conn_with(timeline=[{"task_state": "resize_migrating", "status": "RESIZE"},
                               {"task_state": None, "status": "VERIFY_RESIZE", "compute_host": "cmp2"},
                               {"task_state": None, "status": "ACTIVE", "compute_host": "cmp2"}])
    move = migrate.check(conn, MULTINODE, "web1", False, None)
    result = migrate.run(conn, move, lambda msg: None, timeout=30)
    assert conn.compute.calls == [("cold", None), ("confirm", "1234")]
    assert (result["mode"], result["to"], result["status_after"]) == ("cold", "cmp2", "ACTIVE")


def test_a_failed_migrations_inactive_binding_is_removed_before_the_next_move():
    """The leftover of Neutron's activation race: an INACTIVE binding of the
    server's port on cmp2 (the failed live migration's destination).  It is
    removed before the move is asked of Nova, and said; the active binding
    stays."""
    conn = conn_with(timeline=[{"task_state": None, "compute_host": "cmp2"}])
    conn.network = FakeNetwork({"1234": "cmp1"}, leftover={"1234": "cmp2"})
    said: list[str] = []
    migrate.run(conn, migrate.check(conn, MULTINODE, "web1", True, "cmp2"), said.append, timeout=30)
    assert conn.network.deleted == [("port-1234", "cmp2")]
    assert conn.network.bindings == {"port-1234": {"cmp1": "ACTIVE"}}
    assert said[0] == "web1: removed port port-1234's inactive binding on cmp2, left by a failed migration"
    # nothing left over: nothing deleted, nothing said
    conn = conn_with(timeline=[{"task_state": None, "compute_host": "cmp2"}])
    said = []
    migrate.run(conn, migrate.check(conn, MULTINODE, "web1", True, "cmp2"), said.append, timeout=30)
    assert conn.network.deleted == [] and not [m for m in said if "binding" in m]


def test_block_migration_without_shared_storage():
    two = load(INVENTORIES / "multinode.yml")
    no_ceph = two.model_copy(update={"cloud": two.cloud.model_copy(update={"services": two.cloud.services.model_copy(
        update={"ceph": False})})})
    assert migrate.check(conn_with(), no_ceph, "web1", True, None).block is True
    assert migrate.check(conn_with(), no_ceph, "web1", False, None).block is False


def test_a_move_nova_gives_up_on_is_reported(monkeypatch):
    """The server stays where it was, with no task: the move failed."""
    conn = conn_with(timeline=[{"task_state": None}])
    move = migrate.check(conn, MULTINODE, "web1", True, "cmp2")
    now = iter(range(0, 10_000, 6))
    monkeypatch.setattr(migrate.time, "monotonic", lambda: float(next(now)))
    with pytest.raises(migrate.Refused, match="Nova left server web1 on cmp1: the move failed"):
        migrate.run(conn, move, lambda msg: None, timeout=600)


def test_drain_disables_the_node_and_moves_every_server_the_right_way():
    servers = [NS(id=f"id-{name}", name=name, status=status, compute_host="cmp1", task_state=None)
               for name, status in (("a-running", "ACTIVE"), ("b-off", "SHUTOFF"), ("c-broken", "ERROR"))]
    services = [svc("cmp1"), svc("cmp2")]
    conn = NS(compute=FakeNodeCompute(servers, services), network=FakeNetwork({s.id: "cmp1" for s in servers}))
    said: list[str] = []
    rows = migrate.drain(conn, MULTINODE, "cmp1", said.append, timeout=30)
    assert conn.compute.calls[0] == ("disable", ("cmp1", "stackwright node drain"))
    assert ("live", (None, False)) in conn.compute.calls and ("cold", None) in conn.compute.calls
    assert [(r["server"], r["result"], r.get("mode"), r.get("to")) for r in rows] == [
        ("a-running", "moved", "live", "cmp2"), ("b-off", "moved", "cold", "cmp2"),
        ("c-broken", "not moved", None, None)]
    assert "only running, paused or shut-off servers are moved" in rows[2]["reason"]
    assert conn.compute.all["id-b-off"].status == "SHUTOFF"  # a cold move keeps the server's state
    # a second drain finds the node disabled and only the broken server
    again = migrate.drain(conn, MULTINODE, "cmp1", said.append, timeout=30)
    assert [r["server"] for r in again] == ["c-broken"]
    assert [c for c in conn.compute.calls if c[0] == "disable"] == [("disable", ("cmp1", "stackwright node drain"))]
    assert migrate.enable(conn, MULTINODE, "cmp1") == ["compute service enabled"]
    assert migrate.enable(conn, MULTINODE, "cmp1") == []


def test_drain_refuses_what_is_not_a_compute_node_of_the_cloud():
    conn = NS(compute=FakeNodeCompute([NS(id="x", name="x", status="ACTIVE", compute_host="cmp1", task_state=None)],
                                      [svc("cmp1")]))
    with pytest.raises(migrate.Refused, match="'ctl1' is not a compute node of cloud multinode"):
        migrate.drain(conn, MULTINODE, "ctl1", lambda msg: None)
    with pytest.raises(migrate.Refused, match="cmp2 has no nova-compute registered"):
        migrate.enable(conn, MULTINODE, "cmp2")


class Bmc:
    """A fence device: the power state, and what it was asked."""

    def __init__(self, state: str, obeys: bool = True):
        self.state, self.obeys, self.asked = state, obeys, []

    def __call__(self, action: str) -> str:
        self.asked.append(action)
        if action != "status" and self.obeys:
            self.state = action
        return self.state


def evacuation_lab(statuses: tuple[tuple[str, str], ...] = (("a-running", "ACTIVE"), ("b-off", "SHUTOFF"),
                                                            ("c-broken", "ERROR"), ("d-paused", "PAUSED"))) -> NS:
    servers = [NS(id=f"id-{name}", name=name, status=status, compute_host="cmp1", task_state=None)
               for name, status in statuses]
    compute = FakeNodeCompute(servers, [svc("cmp1", state="down"), svc("cmp2")])
    return NS(compute=compute, network=FakeNetwork({s.id: "cmp1" for s in servers}))


@pytest.mark.parametrize(("state", "message"), [
    ("up", "cmp1 is powered on (its BMC says so) and its compute service is up: the node works, drain it instead"),
    ("down", "cmp1 is powered on (its BMC says so) and its compute service is down, but the node may still run"),
])
def test_evacuate_refuses_a_node_that_is_not_fenced(state, message):
    conn = evacuation_lab()
    conn.compute._services[0].state = state
    bmc = Bmc("on")
    with pytest.raises(migrate.Refused, match=re.escape(message) + ".*add --fence"):
        migrate.evacuate(conn, MULTINODE, "cmp1", bmc, fence=False, say=lambda msg: None)
    assert bmc.asked == ["status"] and conn.compute.calls == []  # nothing asked of Nova


def test_evacuate_refuses_when_the_bmc_does_not_power_off():
    conn, bmc = evacuation_lab(), Bmc("on", obeys=False)
    with pytest.raises(migrate.Refused, match="cmp1's BMC did not power it off; nothing was evacuated"):
        migrate.evacuate(conn, MULTINODE, "cmp1", bmc, fence=True, say=lambda msg: None)
    assert conn.compute.calls == []


def test_evacuate_fences_tells_nova_and_rebuilds_every_server_elsewhere():
    conn, bmc, said = evacuation_lab(), Bmc("on"), []
    rows = migrate.evacuate(conn, MULTINODE, "cmp1", bmc, fence=True, say=said.append, timeout=60)
    assert bmc.asked == ["status", "off", "status"]
    calls = conn.compute.calls
    # Nova hears of the dead node before any server is rebuilt
    assert calls[:2] == [("forced_down", ("cmp1", True)), ("disable", ("cmp1", "stackwright node evacuate"))]
    assert [c for c in calls if c[0] == "evacuate"] == [("evacuate", "id-a-running"), ("evacuate", "id-b-off"),
                                                         ("evacuate", "id-c-broken")]
    assert [(r["server"], r["result"], r.get("to"), r.get("status_after")) for r in rows] == [
        ("a-running", "evacuated", "cmp2", "ACTIVE"), ("b-off", "evacuated", "cmp2", "SHUTOFF"),
        ("c-broken", "evacuated", "cmp2", "ACTIVE"), ("d-paused", "not evacuated", None, None)]
    assert rows[3]["reason"] == "it is PAUSED: Nova evacuates ACTIVE, SHUTOFF, ERROR servers"
    assert "cmp1 is off (its BMC says so)" in said


def test_evacuation_removes_a_leftover_binding_before_the_rebuild():
    """CI's multinode failure: the live migration's leftover INACTIVE
    binding on cmp2 made the evacuation's rebuild there fail in Neutron
    (DBDuplicateEntry).  It is removed before Nova is asked."""
    conn = evacuation_lab((("a-running", "ACTIVE"),))
    conn.network = FakeNetwork({"id-a-running": "cmp1"}, leftover={"id-a-running": "cmp2"})
    order: list[str] = []
    delete, evacuate = conn.network.delete_port_binding, conn.compute.evacuate_server
    conn.network.delete_port_binding = lambda port, host: (order.append("unbind"), delete(port, host))
    conn.compute.evacuate_server = lambda sid: (order.append("evacuate"), evacuate(sid))
    rows = migrate.evacuate(conn, MULTINODE, "cmp1", Bmc("off"), fence=False, say=lambda msg: None, timeout=60)
    assert order == ["unbind", "evacuate"] and rows[0]["result"] == "evacuated"
    assert conn.network.bindings["port-id-a-running"] == {"cmp1": "ACTIVE"}


def test_enable_after_evacuation_waits_for_the_node_and_its_clean_up():
    conn, bmc = evacuation_lab(), Bmc("off")
    migrate.evacuate(conn, MULTINODE, "cmp1", bmc, fence=False, say=lambda msg: None, timeout=60)
    with pytest.raises(migrate.Refused, match="cmp1 is powered off: power it on first"):
        migrate.enable(conn, MULTINODE, "cmp1", bmc)
    bmc("on")
    # nova-compute has not started yet: its evacuations are not "completed"
    with pytest.raises(migrate.Refused, match=r"timed out .* nova-compute on cmp1 to clean up"):
        migrate.enable(conn, MULTINODE, "cmp1", bmc, timeout=0.5)
    assert conn.compute._services[0].is_forced_down is True  # left as it was
    for m in conn.compute.migrations_:
        m.status = "completed"  # what nova-compute does at start for each server evacuated away
    conn.compute._services[0].state = "up"
    done = migrate.enable(conn, MULTINODE, "cmp1", bmc)
    assert done == ["evacuated servers' remains removed, forced-down state lifted", "compute service enabled"]
    assert conn.compute.calls[-2:] == [("forced_down", ("cmp1", False)), ("enable", "cmp1")]


def test_an_operators_confirmation_stands_for_the_bmc_unless_nova_hears_the_node():
    conn = evacuation_lab()
    conn.compute._services[0].state = "up"  # heartbeats still arrive
    with pytest.raises(migrate.Refused, match="cmp1's compute service is up: Nova still hears from it, so it is "
                                              "not off"):
        migrate.evacuate(conn, MULTINODE, "cmp1", None, fence=False, say=lambda msg: None)
    assert conn.compute.calls == []
    conn.compute._services[0].state = "down"
    said: list[str] = []
    rows = migrate.evacuate(conn, MULTINODE, "cmp1", None, fence=False, say=said.append, timeout=60)
    assert "cmp1: off, as the operator confirmed (not checked by a fence device)" in said
    assert [r["result"] for r in rows] == ["evacuated", "evacuated", "evacuated", "not evacuated"]


def test_live_migration_to_a_cpu_lacking_features_is_refused() -> None:
    compute = FakeCompute(NS(id="s1", name="web", status="ACTIVE", task_state=None, compute_host="cmp1"),
                          [svc("cmp1"), svc("cmp2")])
    compute.cpu_info["cmp2"] = {"model": "Broadwell", "vendor": "Intel", "features": ["sse4.2"]}
    with pytest.raises(migrate.Refused) as err:
        migrate.check(NS(compute=compute), MULTINODE, "web", live=True, to="cmp2")
    assert str(err.value) == (
        "a live migration to cmp2 would fail: cmp2's CPU (Broadwell) lacks features of cmp1's (Cascadelake-Server) "
        "that its guests may use: avx2 (guests see the host's CPU: cpu_mode host-model). Migrate it cold, or give "
        "the cloud one CPU model for all its compute nodes (nova_cpu_mode: custom, nova_cpu_models)")
    # cold migration restarts the guest on the new CPU: allowed
    assert migrate.check(NS(compute=compute), MULTINODE, "web", live=False, to="cmp2").target == "cmp2"
    # a newer CPU takes the guest of an older one
    compute.cpu_info["cmp1"], compute.cpu_info["cmp2"] = compute.cpu_info["cmp2"], compute.cpu_info["cmp1"]
    assert migrate.check(NS(compute=compute), MULTINODE, "web", live=True, to="cmp2").live


def test_cpus_of_another_vendor_and_emulated_guests() -> None:
    intel = migrate.Cpu("Skylake", "Intel", frozenset({"avx2"}))
    amd = migrate.Cpu("EPYC", "AMD", frozenset({"avx2"}))
    assert migrate.cpu_mismatch({"cmp1": intel, "cmp2": amd}, "cmp1", "cmp2") == \
        "cmp1 has a Intel CPU, cmp2 a AMD one"
    assert migrate.cpu_mismatch({"cmp1": intel}, "cmp1", "cmp2") is None  # unknown: Nova decides
    emulated = MULTINODE.model_copy(update={"cloud": MULTINODE.cloud.model_copy(update={"hypervisor": "qemu"})})
    assert not migrate.cpu_guarded(emulated) and migrate.cpu_guarded(MULTINODE)
