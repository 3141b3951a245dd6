"""verify's "services up" expects what the service catalog says the
inventory's nodes report: a Nova service or Neutron agent that never
registered fails the step by name, a cloud without compute nodes skips the
boot with the reason.  The API answers are stand-ins; the step's decisions
are what is tested (the lab tests run it against the real cloud)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace as NS

from rich.console import Console

from stackwright import catalog
from stackwright.loader import load
from stackwright.verify import Options, Verify

INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"


class Cloud:
    """The four listings the step reads, as the SDK returns them."""

    def __init__(self, services, agents):
        self.compute = NS(services=lambda: [NS(binary=b, host=h, state=s) for b, h, s in services],
                          find_flavor=lambda name: NS(id="f"))
        self.network = NS(agents=lambda: [NS(agent_type=t, host=h, is_alive=a) for t, h, a in agents],
                          find_network=lambda name: NS(id="n"))
        self.image = NS(find_image=lambda name: NS(id="i"))


def _run(conn, inventory: Path):
    opts = Options(timeout=0, expected=tuple(catalog.reports(load(inventory))))
    v = Verify(conn, opts, Console(quiet=True))
    v.step("services up", v.services)
    v.step("boot a server", v.boot if v.steps[-1].result == "passed" else v._not_up)
    return v.steps


TWO_NODE_SERVICES = [("nova-conductor", "ctl1", "up"), ("nova-scheduler", "ctl1", "up"),
                     ("nova-compute", "cmp1", "up")]
TWO_NODE_AGENTS = [("Open vSwitch agent", "ctl1", True), ("Open vSwitch agent", "cmp1", True),
                   ("L3 agent", "ctl1", True), ("DHCP agent", "ctl1", True), ("Metadata agent", "ctl1", True)]


def test_every_expected_service_up_passes():
    steps = _run(Cloud(TWO_NODE_SERVICES, TWO_NODE_AGENTS), INVENTORIES / "two-node.yml")
    assert steps[0].result == "passed", steps[0].detail
    assert steps[0].detail == "1 compute service(s) up, 5 network agent(s) alive (all 8 the inventory expects)"


def test_a_service_that_never_registered_fails_by_name():
    agents = [a for a in TWO_NODE_AGENTS if a[:2] != ("Open vSwitch agent", "cmp1")]
    steps = _run(Cloud(TWO_NODE_SERVICES, agents), INVENTORIES / "two-node.yml")
    assert (steps[0].result, steps[0].detail) == ("failed", "Open vSwitch agent@cmp1 never reported")
    assert (steps[1].result, steps[1].detail) == ("skipped", "services are not up")


def test_a_service_down_fails_by_name():
    services = [*TWO_NODE_SERVICES[:2], ("nova-compute", "cmp1", "down")]
    steps = _run(Cloud(services, TWO_NODE_AGENTS), INVENTORIES / "two-node.yml")
    assert (steps[0].result, steps[0].detail) == ("failed", "nova-compute@cmp1 down")


def _ha_cloud(down: str) -> Cloud:
    """The HA example's services and agents, those of node *down* dead."""
    inv = load(INVENTORIES / "ha.yml")
    reports = catalog.reports(inv)
    services = [(name, host, "down" if host == down else "up") for api, name, host in reports if api == "compute"]
    agents = [(name, host, host != down) for api, name, host in reports if api == "network"]
    return Cloud(services, agents)


def test_a_dead_node_whose_services_run_elsewhere_is_named_not_failed():
    """A controller powered off: its schedulers, conductors and agents are
    down, each also runs on the two others; the cloud works."""
    steps = _run(_ha_cloud("ctl2"), INVENTORIES / "ha.yml")
    assert steps[0].result == "passed", steps[0].detail
    assert steps[0].detail.endswith("node(s) ctl2 down (every service there down; each runs on another node too)")
    assert steps[1].detail != "services are not up"


def test_a_node_down_that_leaves_a_kind_without_any_instance_fails():
    services = [s for s in TWO_NODE_SERVICES if s[1] != "cmp1"] + [("nova-compute", "cmp1", "down")]
    agents = [(t, h, h != "cmp1") for t, h, _ in TWO_NODE_AGENTS]
    steps = _run(Cloud(services, agents), INVENTORIES / "two-node.yml")
    # the other node's OVS agent keeps that kind running; no nova-compute does
    assert (steps[0].result, steps[0].detail) == ("failed", "nova-compute@cmp1 down")


def test_a_cloud_without_compute_nodes_skips_the_boot_with_the_reason(tmp_path):
    text = (INVENTORIES / INVENTORIES / "two-node.yml").read_text()
    inv = tmp_path / "nocompute.yml"
    inv.write_text(text[: text.index("  - name: cmp1")])
    conn = Cloud(TWO_NODE_SERVICES[:2], [a for a in TWO_NODE_AGENTS if a[1] == "ctl1"])
    assert [(s.result, s.detail) for s in _run(conn, inv)] == [
        ("skipped", "the inventory has no compute node: nothing can boot"),
        ("skipped", "the inventory has no compute node: nothing can boot")]


def _dhcp_step(console: str, agents: list[tuple[str, bool]]):
    port = NS(id="p1", status="ACTIVE", binding_host_id="cmp1", binding_vif_type="ovs", network_id="n",
              fixed_ips=[{"ip_address": "192.168.100.7"}])
    dhcp_port = NS(status="DOWN", binding_host_id="ctl1")

    def ports(device_id=None, network_id=None, device_owner=None):
        return [port] if device_id == "s" else [dhcp_port] if device_owner == "network:dhcp" else []

    conn = NS(network=NS(ports=ports, network_hosting_dhcp_agents=lambda net: [
                  NS(host=h, is_alive=a) for h, a in agents]),
              compute=NS(get_server_console_output=lambda server: {"output": console}))
    v = Verify(conn, Options(timeout=0), Console(quiet=True))
    v._server = NS(id="s")
    v.step("DHCP address", v.dhcp)
    return v.steps[-1]


def test_dhcp_that_never_answers_says_what_neutron_sees():
    step = _dhcp_step("booting\nSTACKWRIGHT-DHCP none\n", [("ctl1", False)])
    assert step.result == "failed"
    assert step.detail == ("the guest gave up asking for an address; its port p1 ACTIVE (bound to cmp1, vif ovs); "
                           "DHCP agents of its network: ctl1 (dead); DHCP port on ctl1 DOWN")
    waited = _dhcp_step("still booting\n", [])
    assert waited.detail.startswith("DHCP address in the console log: not within 0s; its port p1 ACTIVE")
    assert "DHCP agents of its network: none" in waited.detail


def test_dhcp_address_of_the_port_passes():
    step = _dhcp_step("STACKWRIGHT-DHCP 192.168.100.7/24\n", [("ctl1", True)])
    assert (step.result, step.detail) == ("passed", "guest configured 192.168.100.7/24 by DHCP (its port's address)")


class Orchestration:
    """Heat as the SDK shows it: a stack that goes through *states* (the
    last one stays), then is deleted."""

    def __init__(self, states: list[tuple[str, str]], address: str | None = "10.45.0.150"):
        self.states, self.address, self.created, self.deleted = list(states), address, None, False

    def create_stack(self, **attrs):
        self.created = attrs
        return NS(id="s1", name=attrs["name"])

    def get_stack(self, sid):
        status, reason = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        outputs = [{"output_key": "address", "output_value": self.address}] if self.address else []
        return NS(id=sid, status=status, status_reason=reason, outputs=outputs)

    def delete_stack(self, stack):
        self.deleted = True

    def find_stack(self, sid):
        return NS(id=sid, status="DELETE_COMPLETE", status_reason="") if self.deleted else self.get_stack(sid)


def _stack_step(orchestration: Orchestration, heat: bool = True, answers: bool = True, monkeypatch=None):
    from stackwright import verify as verify_mod

    monkeypatch.setattr(verify_mod, "ping", lambda address, timeout: answers)
    monkeypatch.setattr(verify_mod.time, "sleep", lambda s: None)
    v = Verify(NS(orchestration=orchestration), Options(timeout=60, heat=heat), Console(quiet=True))
    v.step("orchestration stack", v.stack)
    v.step("clean up", v.cleanup)
    return v.steps


def test_the_stack_is_built_answers_and_is_removed(monkeypatch):
    heat = Orchestration([("CREATE_IN_PROGRESS", ""), ("CREATE_COMPLETE", "done")])
    steps = _stack_step(heat, monkeypatch=monkeypatch)
    assert steps[0].result == "passed", steps[0].detail
    assert steps[0].detail.endswith("CREATE_COMPLETE: its server answers ping on 10.45.0.150")
    assert heat.created["parameters"] == {"image": "stackwright-testguest", "flavor": "m1.nano",
                                          "network": "demo-net", "external_network": "public"}
    resources = heat.created["template"]["resources"]
    assert {r["type"] for r in resources.values()} == {"OS::Neutron::SecurityGroup", "OS::Neutron::Port",
                                                       "OS::Nova::Server", "OS::Neutron::FloatingIP"}
    assert (steps[1].result, steps[1].detail, heat.deleted) == ("passed", "removed stack", True)


def test_a_failed_stack_fails_with_heats_reason_and_is_removed(monkeypatch):
    heat = Orchestration([("CREATE_IN_PROGRESS", ""), ("CREATE_FAILED", "Resource CREATE failed: No valid host")])
    steps = _stack_step(heat, monkeypatch=monkeypatch)
    assert (steps[0].result, steps[0].detail.split(": ", 1)[1]) == \
        ("failed", "Resource CREATE failed: No valid host")
    assert heat.deleted


def test_a_stack_server_that_does_not_answer_fails(monkeypatch):
    steps = _stack_step(Orchestration([("CREATE_COMPLETE", "")]), answers=False, monkeypatch=monkeypatch)
    assert (steps[0].result, steps[0].detail) == ("failed", "the stack's server does not answer ping on 10.45.0.150")


def test_no_heat_no_stack(monkeypatch):
    heat = Orchestration([("CREATE_COMPLETE", "")])
    steps = _stack_step(heat, heat=False, monkeypatch=monkeypatch)
    assert (steps[0].result, steps[0].detail) == ("skipped", "the cloud runs no Heat (cloud.services.heat)")
    assert heat.created is None


class Backups:
    """Cinder and Nova as the backup step sees them: each backup asked for
    ends as the next of *ends* ((status, fail reason); the last repeats),
    a backup is restored to volume v2, which the guest sees as vdc holding
    *restored*; what is made is removed again."""

    def __init__(self, ends=(("available", None),), restored: str = "stackwright-volume"):
        self.ends, self.restored, self.attached, self.removed, self.asked = list(ends), restored, [], [], []
        self.block_storage = NS(create_backup=self._create, get_backup=self._get, wait_for_status=self._wait,
                                restore_backup=lambda b, name: NS(id=b.id, volume_id="v2"),
                                get_volume=lambda vid: NS(id=vid, name="vol-restored"),
                                delete_backup=lambda b: self.removed.append(b.id),
                                find_backup=lambda bid: None,
                                delete_volume=lambda v: self.removed.append(v.id))
        self.compute = NS(create_volume_attachment=lambda s, volume_id: self.attached.append(volume_id),
                          volume_attachments=lambda s: [NS(volume_id=v) for v in self.attached],
                          delete_volume_attachment=lambda a, s: self.attached.remove(a.volume_id))

    def _create(self, **attrs):
        self.asked.append(attrs)
        return NS(id=f"b{len(self.asked)}")

    def _get(self, bid):
        status, reason = self.ends[min(int(bid[1:]), len(self.ends)) - 1]
        return NS(id=bid, status=status, fail_reason=reason)

    def _wait(self, res, status, failures=(), wait=0):
        return res

    def run(self, address, script):
        if "/sys/block" in script:
            disks = ["vdb", "vdc"] if "v2" in self.attached else ["vdb"]
            return NS(returncode=0, stdout="".join(f"{d} 2097152\n" for d in disks), stderr="")
        assert script.startswith("dd if=/dev/vdc ")
        return NS(returncode=0, stdout=self.restored + "\n", stderr="")


def _backup_step(cloud: Backups, backup: bool = True, monkeypatch=None):
    monkeypatch.setattr("stackwright.verify.time.sleep", lambda s: None)
    v = Verify(cloud, Options(timeout=5, backup=backup), Console(quiet=True))
    v._server, v._address, v._ssh, v._volume = NS(id="s"), "10.45.0.150", cloud, NS(id="v1", name="vol")
    v.step("volume backup and restore", v.backup)
    v.step("clean up", v.cleanup)
    return v.steps


def test_the_restored_volume_holds_what_the_guest_wrote(monkeypatch):
    cloud = Backups()
    steps = _backup_step(cloud, monkeypatch=monkeypatch)
    assert steps[0].result == "passed", steps[0].detail
    assert cloud.asked == [{"volume_id": "v1", "name": "vol-backup", "force": True}]
    assert "restored to volume v2: attached as /dev/vdc, it holds what the guest wrote" in steps[0].detail
    # the restored volume is detached and deleted, then the backup
    assert (steps[1].result, cloud.attached, cloud.removed) == ("passed", [], ["v2", "b1"])


def test_a_backup_service_the_scheduler_does_not_know_yet_is_waited_for(monkeypatch):
    """A cinder-backup started a moment ago: the scheduler places nothing on
    it until its first report; the step asks again, and removes the failed
    backups too."""
    cloud = Backups(ends=[("error", "Service not found for creating backup."), ("available", None)])
    steps = _backup_step(cloud, monkeypatch=monkeypatch)
    assert steps[0].result == "passed", steps[0].detail
    assert "backup b2 of the volume" in steps[0].detail
    assert cloud.removed == ["v2", "b2", "b1"]


def test_a_restored_volume_without_the_data_fails(monkeypatch):
    steps = _backup_step(Backups(restored=""), monkeypatch=monkeypatch)
    assert (steps[0].result, steps[0].detail) == (
        "failed", "inside, the restored volume /dev/vdc holds '', not what the guest wrote")


def test_a_failed_backup_fails_the_step_with_cinders_reason_and_is_removed(monkeypatch):
    cloud = Backups(ends=[("error", "rados.PermissionDeniedError: error connecting to the cluster")])
    steps = _backup_step(cloud, monkeypatch=monkeypatch)
    assert (steps[0].result, steps[0].detail) == (
        "failed", "backup b1 ended in error: rados.PermissionDeniedError: error connecting to the cluster")
    assert cloud.removed == ["b1"] and len(cloud.asked) == 1


def test_no_cinder_backup_no_backup(monkeypatch):
    cloud = Backups()
    steps = _backup_step(cloud, backup=False, monkeypatch=monkeypatch)
    assert (steps[0].result, steps[0].detail) == (
        "skipped", "the cloud runs no cinder-backup (cloud.services.cinder_backup)")
    assert cloud.asked == []


class ObjectStore:
    """Swift as the object step sees it: what is stored comes back (or
    *damaged*); containers and objects are removed again."""

    def __init__(self, damaged: bool = False, catalog: bool = True):
        self.damaged, self.catalog, self.stored, self.removed = damaged, catalog, {}, []
        self.object_store = NS(create_container=lambda name: self.stored.setdefault(name, {}),
                               create_object=self._put, download_object=self._get,
                               objects=lambda c: [NS(name=n) for n in self.stored[c]],
                               delete_object=lambda o, container: self.removed.append(f"{container}/{o.name}"),
                               delete_container=lambda c: self.removed.append(c))

    def has_service(self, kind):
        return self.catalog and kind == "object-store"

    def _put(self, container, name, data):
        self.stored[container][name] = data

    def _get(self, name, container):
        data = self.stored[container][name]
        return data[:-1] + bytes([data[-1] ^ 1]) if self.damaged else data


def _object_step(store: ObjectStore):
    v = Verify(store, Options(timeout=5), Console(quiet=True))
    v.step("object storage", v.objects)
    v.step("clean up", v.cleanup)
    return v.steps


def test_an_object_comes_back_whole_and_is_removed():
    store = ObjectStore()
    steps = _object_step(store)
    assert steps[0].result == "passed", steps[0].detail
    (container, objects), = store.stored.items()
    assert len(objects["object"]) == 1 << 20
    assert steps[0].detail.startswith(f"1 MiB object stored in container {container}")
    assert store.removed == [f"{container}/object", container]


def test_an_object_that_comes_back_different_fails():
    steps = _object_step(ObjectStore(damaged=True))
    assert steps[0].result == "failed"
    assert steps[0].detail.endswith("the object came back with 1048576 bytes that differ")


def test_no_swift_no_object_step():
    steps = _object_step(ObjectStore(catalog=False))
    assert (steps[0].result, steps[0].detail) == ("skipped", "no Object Storage (Swift) service in the catalog")
