"""node add / node remove: the refusals, the wait for a new node, what the
APIs forget of a node that leaves (against a fake of the SDK)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace as NS
from typing import Any

import pytest

from stackwright import membership, migrate
from stackwright.loader import load

INVENTORIES = Path(__file__).resolve().parents[2] / "inventories"
MULTINODE = load(INVENTORIES / "multinode.yml")  # cmp1, cmp2 compute; ctl1, net1, sto1


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(migrate.time, "sleep", lambda seconds: None)


class Fake:
    """Nova's services, hypervisors and servers, Neutron's agents."""

    def __init__(self, services: list[NS], servers: list[NS] = (), hypervisors: list[NS] = (),
                 agents: list[NS] = ()):
        self._services, self._servers = list(services), list(servers)
        self._hypervisors, self._agents = list(hypervisors), list(agents)
        self.deleted: list[tuple[str, Any]] = []
        self.compute, self.network = self, self

    def services(self, binary: str) -> list[NS]:
        return list(self._services)

    def servers(self, all_projects: bool, compute_host: str) -> list[NS]:
        return [s for s in self._servers if s.compute_host == compute_host]

    def hypervisors(self) -> list[NS]:
        return list(self._hypervisors)

    def agents(self, host: str) -> list[NS]:
        return [a for a in self._agents if a.host == host]

    def delete_agent(self, agent: NS) -> None:
        self.deleted.append(("agent", agent.agent_type))
        self._agents.remove(agent)

    def delete_service(self, service: NS) -> None:
        self.deleted.append(("service", service.host))
        self._services.remove(service)


def svc(host: str, state: str = "up", status: str = "enabled") -> NS:
    return NS(host=host, state=state, status=status, is_forced_down=False)


def test_add_refuses_a_node_the_inventory_lacks() -> None:
    with pytest.raises(migrate.Refused, match=r"no node 'cmp3' in mn\.yml .*write the new node into the inventory"):
        membership.check_add(Fake([]), MULTINODE, "cmp3", "mn.yml")


@pytest.mark.parametrize(("node", "roles"), [("ctl1", "controller"), ("net1", "network"), ("sto1", "storage")])
def test_add_and_remove_handle_compute_nodes_only(node: str, roles: str) -> None:
    with pytest.raises(migrate.Refused, match=rf"{node} has the role\(s\) {roles}: node add handles compute nodes"):
        membership.check_add(Fake([]), MULTINODE, node, "mn.yml")
    with pytest.raises(migrate.Refused, match="holds the cloud's state"):
        membership.check_remove(Fake([]), MULTINODE, node, "mn.yml", drain=False)


def test_add_refuses_a_node_the_cloud_knows() -> None:
    with pytest.raises(migrate.Refused, match=r"cmp2 is part of cloud multinode already .*registered, up"):
        membership.check_add(Fake([svc("cmp1"), svc("cmp2")]), MULTINODE, "cmp2", "mn.yml")


def test_add_accepts_a_new_compute_node() -> None:
    membership.check_add(Fake([svc("cmp1")]), MULTINODE, "cmp2", "mn.yml")


def test_remove_refuses_while_servers_live_there_unless_drained() -> None:
    servers = [NS(name=f"vm{i}", status="ACTIVE", compute_host="cmp2") for i in range(7)]
    servers.append(NS(name="elsewhere", status="ACTIVE", compute_host="cmp1"))
    fake = Fake([svc("cmp1"), svc("cmp2")], servers)
    with pytest.raises(migrate.Refused) as err:
        membership.check_remove(fake, MULTINODE, "cmp2", "mn.yml", drain=False)
    assert str(err.value) == ("cmp2 still holds 7 server(s): vm0 (ACTIVE), vm1 (ACTIVE), vm2 (ACTIVE), vm3 (ACTIVE), "
                              "vm4 (ACTIVE) and 2 more. Move them away first (`stackwright node drain`), or add "
                              "--drain to do it now")
    assert len(membership.check_remove(fake, MULTINODE, "cmp2", "mn.yml", drain=True)) == 7
    assert membership.check_remove(fake, MULTINODE, "cmp1", "mn.yml", drain=True)[0].name == "elsewhere"


def test_joined_waits_for_service_hypervisor_and_agent() -> None:
    fake = Fake([svc("cmp2", state="down")], hypervisors=[],
                agents=[NS(host="cmp2", agent_type="Open vSwitch agent", is_alive=False)])
    calls = {"n": 0}
    real = fake.services

    def services(binary: str) -> list[NS]:
        calls["n"] += 1
        if calls["n"] == 3:  # it comes up after a while
            fake._services = [svc("cmp2")]
            fake._hypervisors = [NS(name="cmp2.multinode.stackwright.test")]
            fake._agents[0].is_alive = True
        return real(binary)

    fake.services = services
    assert membership.joined(fake, "cmp2", timeout=60) == {
        "compute_service": "up", "hypervisor": "cmp2.multinode.stackwright.test", "ovs_agent": "alive"}
    assert calls["n"] == 3


def test_joined_times_out_naming_what_it_waited_for(monkeypatch) -> None:
    clock = iter(range(0, 1000, 10))
    monkeypatch.setattr(migrate.time, "monotonic", lambda: next(clock))
    with pytest.raises(migrate.Refused, match="timed out after 30s waiting for cmp2 to report to the cloud"):
        membership.joined(Fake([]), "cmp2", timeout=30)


def test_forget_deletes_the_agents_then_the_compute_service() -> None:
    agents = [NS(host="cmp2", agent_type="Open vSwitch agent"), NS(host="cmp1", agent_type="Open vSwitch agent")]
    fake = Fake([svc("cmp1"), svc("cmp2", state="down", status="disabled")], agents=agents)
    said: list[str] = []
    done = membership.forget(fake, "cmp2", said.append)
    assert fake.deleted == [("agent", "Open vSwitch agent"), ("service", "cmp2")]
    assert [s.host for s in fake._services] == ["cmp1"] and [a.host for a in fake._agents] == ["cmp1"]
    assert done == ["network agent Open vSwitch agent deleted",
                    "compute service deleted (with its resource provider and host mapping)"]
    assert membership.forget(fake, "cmp2", said.append) == []  # twice: nothing left to delete
