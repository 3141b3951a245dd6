"""`stackwright check`'s reading of what the APIs and the nodes report
(fakes of the SDK calls and of the runner's events; the real thing runs
against the multinode lab in the end-to-end test)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from types import SimpleNamespace as NS

from stackwright import health
from stackwright.loader import load

MULTINODE = load(Path(__file__).resolve().parents[2] / "inventories" / "multinode.yml")


def cloud(compute: list[NS], agents: list[NS], volume: list[NS], hypervisors: list[NS]) -> NS:
    return NS(compute=NS(services=lambda: compute, hypervisors=lambda details: hypervisors),
              network=NS(agents=lambda: agents), block_storage=NS(services=lambda: volume))


def svc(binary: str, host: str, state: str = "up", status: str = "enabled", forced: bool = False,
        reason: str | None = None) -> NS:
    return NS(binary=binary, host=host, state=state, status=status, is_forced_down=forced, disabled_reason=reason)


def agent(kind: str, host: str, alive: bool = True, admin: bool = True) -> NS:
    return NS(agent_type=kind, host=host, is_alive=alive, is_admin_state_up=admin)


HEALTHY_AGENTS = [agent("Open vSwitch agent", h) for h in ("net1", "cmp1", "cmp2")] + [
    agent(k, "net1") for k in ("L3 agent", "DHCP agent", "Metadata agent")]


def test_services_are_held_against_what_the_catalog_expects():
    conn = cloud([svc("nova-conductor", "ctl1"), svc("nova-scheduler", "ctl1"),
                  svc("nova-compute", "cmp1", status="disabled", reason="stackwright node drain"),
                  svc("nova-compute", "cmp2", state="down", forced=True)],
                 [a for a in HEALTHY_AGENTS if a.agent_type != "DHCP agent"] + [agent("DHCP agent", "net1", False)],
                 [svc("cinder-scheduler", "ctl1"), svc("cinder-volume", "rbd@rbd-1")], [])
    rows = {r.item: (r.status, r.detail) for r in health.services(conn, MULTINODE)}
    assert rows["nova-compute@cmp1"] == ("warning", "disabled: stackwright node drain")
    assert rows["nova-compute@cmp2"] == ("failed", "forced down (evacuated?)")
    assert rows["DHCP agent@net1"] == ("failed", "not alive")
    assert rows["nova-conductor@ctl1"] == ("ok", "up, enabled")
    assert rows["cinder-volume@rbd@rbd-1"][0] == "ok"


def test_a_service_that_never_reported_is_a_failure():
    conn = cloud([svc("nova-conductor", "ctl1"), svc("nova-scheduler", "ctl1"), svc("nova-compute", "cmp1")],
                 HEALTHY_AGENTS, [], [NS(name="cmp1.multinode.stackwright.test", state="up", status="enabled")])
    rows = {r.item: (r.status, r.detail) for r in [*health.services(conn, MULTINODE),
                                                   *health.hypervisors(conn, MULTINODE)]}
    assert rows["nova-compute@cmp2"] == ("failed", "never reported (not deployed, or never started)")
    assert rows["cinder"] == ("failed", "no Cinder service reported")
    assert rows["cmp2"] == ("failed", "not registered") and rows["cmp1"][0] == "ok"


def test_endpoints_answer_below_500():
    conn = NS(identity=NS(services=lambda: [NS(id="k", name="keystone"), NS(id="c", name="cinder")],
                          endpoints=lambda interface: [NS(service_id="k", url="http://10.0.0.1:5000/v3"),
                                                       NS(service_id="c", url="http://10.0.0.1:8776/v3/%(project_id)s")]))
    codes = {"http://10.0.0.1:5000/v3": 200, "http://10.0.0.1:8776/v3": 503}
    rows = list(health.endpoints(conn, get=codes.__getitem__))
    assert [(r.item, r.status, r.detail) for r in rows] == [
        ("cinder", "failed", "http://10.0.0.1:8776/v3: HTTP 503"),
        ("keystone", "ok", "http://10.0.0.1:5000/v3: HTTP 200")]


def event(task: str, host: str, res: dict, kind: str = "runner_on_ok") -> dict:
    return {"event": kind, "event_data": {"task": task, "host": host, "res": res}}


def test_node_findings():
    report = health.NodeReport()
    warn = {"status": "HEALTH_WARN", "checks": {"MON_DISK_LOW": {"summary": {"message": "mon sto1 is low"}}}}
    report.handle(event("Ceph health", "sto1", {"stdout": json.dumps(warn)}))
    report.handle(event("RabbitMQ answers", "ctl1", {}))
    report.handle(event("MariaDB answers", "ctl1", {"msg": "non-zero return code", "stderr": "connect failed"},
                        "runner_on_failed"))
    report.handle(event("Certificates", "cmp1", {"results": [
        {"item": "/etc/pki/libvirt/servercert.pem", "not_after": "20270601000000Z"},
        {"item": "/etc/pki/qemu/server-cert.pem", "not_after": "20261210000000Z"},
        {"item": "/etc/pki/x.pem", "failed": True, "msg": "No such file"}]}))
    report.handle(event("Certificates", "cmp2", {"msg": "timed out"}, "runner_on_unreachable"))
    now = datetime.datetime(2026, 12, 3, tzinfo=datetime.UTC)
    rows = [(r.area, r.item, r.status) for r in health.node_rows(report, now)]
    assert rows == [
        ("ceph", "cluster", "warning"), ("rabbitmq", "ctl1", "ok"), ("mariadb", "ctl1", "failed"),
        ("certificate", "cmp1:/etc/pki/libvirt/servercert.pem", "ok"),
        ("certificate", "cmp1:/etc/pki/qemu/server-cert.pem", "warning"),
        ("certificate", "cmp1:/etc/pki/x.pem", "failed"), ("node", "cmp2", "failed")]
    assert health.worst([health.Row("a", "b", "ok", ""), health.Row("a", "c", "warning", "")]) == "warning"


def hypervisor_cpus(**cpus: tuple[str, list[str]]) -> NS:
    hyps = [{"hypervisor_hostname": f"{h}.x", "cpu_info": {"model": m, "vendor": "Intel", "features": f}}
            for h, (m, f) in cpus.items()]
    return NS(compute=NS(get=lambda url, microversion: NS(json=lambda: {"hypervisors": hyps})))


def test_cpus_that_keep_a_guest_from_moving_live_are_a_warning():
    conn = hypervisor_cpus(cmp1=("Skylake", ["avx2", "sse4.2"]), cmp2=("Broadwell", ["sse4.2"]))
    rows = [(r.item, r.status, r.detail) for r in health.cpus(conn, MULTINODE)]
    assert rows == [("cmp1 -> cmp2", "warning", "no live migration this way: cmp2's CPU (Broadwell) lacks features "
                     "of cmp1's (Skylake) that its guests may use: avx2")]
    same = hypervisor_cpus(cmp1=("Skylake", ["avx2"]), cmp2=("Skylake", ["avx2"]))
    assert [(r.item, r.status, r.detail) for r in health.cpus(same, MULTINODE)] == [
        ("compute nodes", "ok", "a guest can move live between any two of 2 (CPU Skylake)")]
    emulated = MULTINODE.model_copy(update={"cloud": MULTINODE.cloud.model_copy(update={"hypervisor": "qemu"})})
    assert [r.status for r in health.cpus(conn, emulated)] == ["ok"]


# crm_mon -1 --output-as=xml on a lab's three controllers (trimmed), with
# ctl3 in standby, the public VIP stopped and a failed HAProxy monitor
CRM_MON = """<pacemaker-result api-version="2.25" request="crm_mon -1 --output-as=xml">
  <summary>
    <current_dc present="true" name="ctl3" id="3" with_quorum="true"/>
    <nodes_configured number="3"/>
  </summary>
  <nodes>
    <node name="ctl1" id="1" online="true" standby="false"/>
    <node name="ctl2" id="2" online="true" standby="false"/>
    <node name="ctl3" id="3" online="true" standby="true"/>
  </nodes>
  <resources>
    <resource id="fence-ctl1" resource_agent="stonith:fence_ipmilan" role="Started" failed="false">
      <node name="ctl2" id="2" cached="true"/>
    </resource>
    <resource id="vip-internal" resource_agent="ocf:heartbeat:IPaddr2" role="Started" failed="false">
      <node name="ctl1" id="1" cached="true"/>
    </resource>
    <resource id="vip-public" resource_agent="ocf:heartbeat:IPaddr2" role="Stopped" failed="false"/>
    <clone id="haproxy-clone" failed="false">
      <resource id="haproxy" resource_agent="systemd:haproxy" role="Started"><node name="ctl1" id="1"/></resource>
      <resource id="haproxy" resource_agent="systemd:haproxy" role="Started"><node name="ctl2" id="2"/></resource>
      <resource id="haproxy" resource_agent="systemd:haproxy" role="Stopped"/>
    </clone>
  </resources>
  <failures>
    <failure op_key="haproxy_monitor_5000" node="ctl3" exitstatus="not running" exitreason="" exitcode="7"
      call="30" status="complete" last-rc-change="2026-12-05 08:10:00Z"/>
  </failures>
</pacemaker-result>"""


def test_cluster_findings():
    """Pacemaker from the first member that answers (a silent member is a
    failure of its own), a VIP held by nobody, a partly running clone, a
    failed action; Galera members that are not all in one Synced cluster;
    RabbitMQ with a broker down."""
    report = health.NodeReport()
    report.handle(event("Pacemaker status", "ctl1", {"stdout": CRM_MON}))
    report.handle(event("Pacemaker status", "ctl2", {"stdout": CRM_MON}))
    report.handle(event("Pacemaker status", "ctl3", {"msg": "timed out"}, "runner_on_failed"))
    synced = "wsrep_local_state_comment\tSynced\nwsrep_cluster_size\t3\nwsrep_cluster_status\tPrimary"
    report.handle(event("Galera state", "ctl1", {"stdout": synced}))
    report.handle(event("Galera state", "ctl2", {"stdout": synced.replace("\t3", "\t2")}))
    report.handle(event("Galera state", "ctl3", {"stdout": synced.replace("Synced", "Donor/Desynced")}))
    brokers = {"disk_nodes": ["rabbit@ctl1", "rabbit@ctl2", "rabbit@ctl3"], "running_nodes": ["rabbit@ctl2",
               "rabbit@ctl1"], "partitions": {}}
    for host in ("ctl1", "ctl2", "ctl3"):
        report.handle(event("RabbitMQ cluster", host, {"stdout": json.dumps(brokers)}))
    rows = [(r.area, r.item, r.status, r.detail) for r in health.node_rows(report)]
    assert rows == [
        ("galera", "ctl1", "ok", "Synced, Primary component of 3 of 3 members"),
        ("galera", "ctl2", "warning", "Synced, Primary component of 2 of 3 members"),
        ("galera", "ctl3", "failed", "Donor/Desynced, Primary component of 3 of 3 members"),
        ("rabbitmq", "cluster", "warning", "2 of 3 brokers running (ctl1, ctl2; not ctl3; seen from ctl1)"),
        ("pacemaker", "ctl3", "failed", "timed out"),
        ("pacemaker", "cluster", "warning", "quorate, 2 of 3 members online (ctl1, ctl2; DC ctl3; seen from ctl1)"),
        ("fence", "fence-ctl1", "ok", "fence_ipmilan started on ctl2"),
        ("vip", "vip-internal", "ok", "held by ctl1"),
        ("vip", "vip-public", "failed", "held by no member"),
        ("pacemaker", "haproxy-clone", "warning", "running on ctl1, ctl2"),
        ("pacemaker", "haproxy_monitor_5000 on ctl3", "failed", "not running at 2026-12-05 08:10:00Z")]
    partitioned = health.NodeReport()
    partitioned.handle(event("RabbitMQ cluster", "ctl1", {"stdout": json.dumps(
        dict(brokers, partitions={"rabbit@ctl1": ["rabbit@ctl3"]}))}))
    assert [r.status for r in health.node_rows(partitioned)] == ["failed"]
