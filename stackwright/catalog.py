"""The service catalog: every service Stackwright knows, in one place.

For each service: the inventory group its nodes form (roles and plays name
only this group), the node roles it runs on (or the rule that picks its
nodes), the deploy phase and Ansible role that build it, where its packages
come from, its processes, its API ports and Keystone entry, its database and
its secrets, and whether Stackwright can deploy it yet.

Everything that used to repeat these facts derives from here: the rendered
service groups and the packages phase's sources (:mod:`stackwright.render`),
the services ``plan`` lists, the phases of ``deploy --tags``, the secrets
file, and ``validate``'s refusals (a service, topology or setting not
deployable yet) and warnings (a service this inventory leaves out, and why).
A unit test (tests/unit/test_catalog.py) fails when site.yml, the packages
role or a role's defaults disagree with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .model import Inventory, Node, NodeRole, Services
from .problems import Problem

NODE_ROLES: tuple[NodeRole, ...] = ("controller", "network", "compute", "storage")


@dataclass(frozen=True)
class Listener:
    """A port a service listens on: its name in the rendered
    ``stackwright_ports``, the port, for an API its Keystone service type and
    path (the endpoint is http://<endpoint host>:<port><path>), and the URL a
    health check asks (HAProxy's, once HA lands).  Only a *public* listener
    answers on the API network (users reach it there); every other listens
    on the management network only."""

    name: str
    port: int
    keystone_type: str | None = None
    path: str = ""
    health: str = "/"
    public: bool = False
    # HAProxy fronts it on the VIPs (an HTTP API), with *health* as its check
    proxied: bool = False
    # ... or, for a database, as TCP, one member at a time (the others are
    # backups), checked over HTTP on this port instead
    check_port: int | None = None


@dataclass(frozen=True)
class Packages:
    """The Debian packages a service's nodes install, as data: *names*
    always, *with_ceph* or *without_ceph* as the cloud runs Ceph or not
    (Ceph's client libraries, or LVM's iSCSI target), *with_options* when
    the cloud runs an optional service (its dashboard panels), and the *debconf*
    answers their first install needs, as (package, question, type, value):
    Stackwright configures the services, not the packages' own scripts.
    The packages phase installs them for every node at once; a role's own
    install step (common's apt_install) installs the same when it runs alone."""

    names: tuple[str, ...]
    with_ceph: tuple[str, ...] = ()
    without_ceph: tuple[str, ...] = ()
    debconf: tuple[tuple[str, str, str, str], ...] = ()
    # (cloud.services option, packages): added when the cloud runs that
    # service (a dashboard plugin for it)
    with_options: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def for_cloud(self, services: Services) -> dict[str, list[object]]:
        extra = [name for option, names in self.with_options if getattr(services, option) for name in names]
        return {"names": [*self.names, *(self.with_ceph if services.ceph else self.without_ceph), *extra],
                "debconf": [{"name": p, "question": q, "vtype": t, "value": v} for p, q, t, v in self.debconf]}


def _no_db_setup(package: str, prefix: str, *extra: str) -> tuple[tuple[str, str, str, str], ...]:
    """The Debian OpenStack packages' questions: set up no database, broker
    or Keystone access (dbconfig-common and openstack-pkg-tools)."""
    return tuple((package, f"{prefix}/configure_{what}", "boolean", "false") for what in ("db", *extra))


# Debian's OpenStack clients of Ceph: its Python bindings and ceph-common's
# tools and ceph.conf directory.
_RBD = ("python3-rbd", "python3-rados", "ceph-common")
_NOVA_DEBCONF = (*_no_db_setup("nova-common", "nova", "rabbit", "ksat", "neutron", "placement"),
                 ("nova-api", "novaapi/configure_db", "boolean", "false"),
                 ("nova-api", "nova/configure_api-endpoint", "boolean", "false"),
                 # the noVNC console proxy, not SPICE
                 ("nova-consoleproxy", "nova-consoleproxy/daemon_type", "select", "novnc"))
_NEUTRON_DEBCONF = (*_no_db_setup("neutron-common", "neutron", "rabbit", "ksat", "nova"),
                    ("neutron-api", "neutron/configure_api-endpoint", "boolean", "false"))
_CINDER_DEBCONF = (*_no_db_setup("cinder-common", "cinder", "rabbit", "ksat"),
                   ("cinder-api", "cinder/configure_api-endpoint", "boolean", "false"))


@dataclass(frozen=True)
class Service:
    """One service of the catalog.

    *group* is the inventory group; *runs_on* the node roles whose nodes form
    it, or *members* the rule that picks them when node roles alone do not
    say (Open vSwitch, Neutron's agents, Ceph).  *needs* returns why this
    inventory leaves the service out (None: deployed).  *not_yet* says what
    is missing before Stackwright can deploy it at all (empty: deployable);
    *option* is the ``cloud.services`` switch that asks for it.
    """

    group: str
    phase: str
    role: str
    units: tuple[str, ...]  # systemd units, in start order (the roles start, restart and stop these)
    packages: Packages = Packages(())
    runs_on: tuple[NodeRole, ...] = ()
    members: Callable[[Inventory], list[str]] | None = None
    listeners: tuple[Listener, ...] = ()
    database: str | None = None  # the database its processes use (`stackwright restore` stops them meanwhile)
    secrets: tuple[str, ...] = ()
    # what each node of the group reports to the cloud's APIs once it runs:
    # ("compute", Nova service binary) or ("network", Neutron agent type);
    # verify's "services up" expects exactly these
    reports: tuple[tuple[str, str], ...] = ()
    needs: Callable[[Inventory], str | None] | None = None
    option: str | None = None
    not_yet: str = ""

    @property
    def deployable(self) -> bool:
        return not self.not_yet

    def left_out(self, inv: Inventory) -> str | None:
        """Why this inventory does not get the service (None: it does)."""
        if not self.deployable:
            return self.not_yet
        if self.option and not getattr(inv.cloud.services, self.option):
            return f"cloud.services.{self.option} is off"
        return self.needs(inv) if self.needs else None

    def hosts(self, inv: Inventory) -> list[str]:
        """The nodes that run it in this inventory (sorted)."""
        if self.left_out(inv):
            return []
        if self.members is not None:
            return sorted(self.members(inv))
        return sorted(n.name for n in inv.nodes if set(self.runs_on) & set(n.roles))


# -- rules that pick nodes or leave a service out --------------------------


def runs_neutron_agent(inv: Inventory, node: Node) -> bool:
    """Network and compute nodes; controllers too when there is no network
    node (the seeds' scheme 1)."""
    return bool({"network", "compute"} & set(node.roles)) or (
        "controller" in node.roles and not inv.nodes_with_role("network"))


def ceph_nodes(inv: Inventory) -> tuple[list[str], list[str]]:
    """(monitors, OSD nodes) of the cloud's Ceph cluster: OSDs on every
    storage node, monitors (with managers) on the first three storage nodes;
    with fewer storage nodes, on the first three controllers when there are
    three (an HA cloud: a lone monitor on a storage node would stop every
    image, volume and instance disk when that node dies; three monitors
    keep a quorum through the loss of any one), else on the first storage
    node.  Empty without services.ceph."""
    if not inv.cloud.services.ceph:
        return [], []
    osds = sorted(n.name for n in inv.nodes_with_role("storage"))
    if len(osds) >= 3:
        return osds[:3], osds
    controllers = [n.name for n in inv.nodes_with_role("controller")]
    if len(controllers) >= 3:
        return controllers[:3], osds
    return osds[:1], osds


def _ovs_nodes(inv: Inventory) -> list[str]:
    from .layout import build  # the layout decides (OVS bonds, bridged VLANs, agents)

    return [name for name, lay in build(inv).items() if lay.ovs]


def _gateways(inv: Inventory) -> list[str]:
    return [n.name for n in inv.nodes_with_role("network") or inv.nodes_with_role("controller")]


def ha_controllers(inv: Inventory) -> list[str]:
    """The controllers that hold the cloud's virtual IPs together (pacemaker
    and HAProxy run there): every controller once the inventory has a VIP."""
    if inv.cloud.internal_vip is None and inv.cloud.public_vip is None:
        return []
    return [n.name for n in inv.nodes_with_role("controller")]


def haproxy_nodes(inv: Inventory) -> list[str]:
    """Where HAProxy runs: on the controllers holding the VIPs (pacemaker
    runs it there), and on a lone controller when TLS is on (systemd runs
    it: it terminates TLS on the controller's API address, in front of
    APIs that then listen on management only)."""
    if members := ha_controllers(inv):
        return members
    return [n.name for n in inv.nodes_with_role("controller")] if inv.cloud.tls else []


def _no_storage_node(inv: Inventory) -> str | None:
    if inv.nodes_with_role("storage"):
        return None
    return ("no node has the storage role, so there is no volume backend (Ceph or LVM) for Cinder: "
            "the cloud has no block storage (no volume endpoint, no volume panels in Horizon)")


def _no_backup_store(inv: Inventory) -> str | None:
    if not inv.nodes_with_role("storage"):
        return _no_storage_node(inv)
    if inv.cloud.services.ceph:
        return None
    return ("cinder-backup keeps its backups in Ceph, which this cloud does not run (its Swift driver, the other "
            "store, is not deployable yet)")


# the servers and the daemons that keep their data whole (auditors,
# replicators, updaters; the account reaper deletes what deleted accounts
# held); rsync carries the replicators' copies between storage nodes
_SWIFT_STORAGE_UNITS = ("rsync", "swift-account", "swift-account-auditor", "swift-account-reaper",
                        "swift-account-replicator", "swift-container", "swift-container-auditor",
                        "swift-container-replicator", "swift-container-updater", "swift-object",
                        "swift-object-auditor", "swift-object-replicator", "swift-object-updater")


# -- the catalog, in deploy order (site.yml's plays) ------------------------

# what an API service needs to reach MariaDB and memcached
_API_CLIENTS = ("python3-pymysql", "python3-memcache")
_CEPH = Packages(("ceph-mon", "ceph-mgr", "ceph-osd", "ceph-common"))

SERVICES: tuple[Service, ...] = (
    Service("openvswitch", "network", "openvswitch", ("ovsdb-server", "ovs-vswitchd", "openvswitch-switch"),
            packages=Packages(("openvswitch-switch",)),
            members=_ovs_nodes),
    Service("chrony", "time", "chrony", ("chrony",), packages=Packages(("chrony",)), runs_on=NODE_ROLES),
    # HAProxy in front of every API, on the VIPs: configured first, then
    # pacemaker runs it (a clone on every member) with the VIPs; or, with TLS
    # on one controller, in front of its public APIs, run by systemd
    Service("haproxy", "cluster", "haproxy", ("haproxy",), packages=Packages(("haproxy",)),
            members=haproxy_nodes, listeners=(Listener("haproxy_stats", 1936),)),
    # The cluster stack holding the VIPs: corosync (knet) and pacemaker, with
    # pcs for the operator (its daemon, pcsd, stays off: the role writes
    # corosync.conf itself, so nothing listens on 2224), the agents of the
    # VIPs (resource-agents) and of the fence devices (fence-agents,
    # ipmitool).  pacemaker-cli-utils: crm_mon, cibadmin, crm_attribute.
    Service("pacemaker", "cluster", "pacemaker", ("corosync", "pacemaker"),
            packages=Packages(("corosync", "pacemaker", "pacemaker-cli-utils", "pcs", "resource-agents",
                               "fence-agents", "ipmitool")),
            members=ha_controllers, secrets=("corosync_authkey",)),
    # mariadb-backup: `stackwright backup` takes a hot, consistent copy of the databases with it
    Service("mariadb", "mariadb", "mariadb", ("mariadb",),
            packages=Packages(("mariadb-server", "mariadb-backup", "python3-pymysql")),
            runs_on=("controller",),
            # with several members, HAProxy writes to one Synced member
            # (galera_check answers on 9200 whether this one is)
            listeners=(Listener("mariadb", 3306, proxied=True, check_port=9200), Listener("galera_check", 9200)),
            # Galera's state transfers (several controllers) log in with it
            secrets=("mariadb_sst_password",)),
    # python3-requests: Ansible's rabbitmq modules need it
    Service("rabbitmq", "rabbitmq", "rabbitmq", ("rabbitmq-server",),
            packages=Packages(("rabbitmq-server", "python3-requests")), runs_on=("controller",),
            listeners=(Listener("rabbitmq", 5672),),
            secrets=("rabbitmq_openstack_password", "rabbitmq_erlang_cookie")),
    Service("memcached", "memcached", "memcached", ("memcached",), packages=Packages(("memcached",)),
            runs_on=("controller",),
            listeners=(Listener("memcached", 11211),)),
    Service("ceph_mon", "ceph", "ceph", ("ceph-mon.target", "ceph-mgr.target"), packages=_CEPH,
            members=lambda inv: ceph_nodes(inv)[0], secrets=("ceph_fsid",)),
    Service("ceph_osd", "ceph", "ceph", ("ceph-osd.target",), packages=_CEPH, members=lambda inv: ceph_nodes(inv)[1]),
    Service("keystone", "keystone", "keystone", ("keystone",),
            packages=Packages(("keystone", *_API_CLIENTS), debconf=(
                *_no_db_setup("keystone", "keystone"), ("keystone", "keystone/create-admin-tenant", "boolean", "false"),
                ("keystone", "keystone/register-endpoint", "boolean", "false"))),
            runs_on=("controller",),
            listeners=(Listener("keystone", 5000, "identity", "/v3", "/v3", public=True, proxied=True),),
            database="keystone",
            secrets=("keystone_admin_password", "keystone_db_password")),
    Service("placement", "placement", "placement", ("placement-api",),
            packages=Packages(("placement-api", *_API_CLIENTS), debconf=_no_db_setup("placement-common", "placement")),
            runs_on=("controller",), listeners=(Listener("placement", 8778, "placement", public=True, proxied=True),),
            database="placement",
            secrets=("placement_db_password", "placement_keystone_password")),
    Service("glance", "glance", "glance", ("glance-api",),
            packages=Packages(("glance-api", *_API_CLIENTS), with_ceph=_RBD, debconf=(
                *_no_db_setup("glance-common", "glance"),
                ("glance-api", "glance/register-endpoint", "boolean", "false"))),
            runs_on=("controller",),
            listeners=(Listener("glance", 9292, "image", health="/healthcheck", public=True, proxied=True),),
            database="glance",
            secrets=("glance_db_password", "glance_keystone_password")),
    Service("nova", "nova", "nova", ("nova-api", "nova-api-metadata", "nova-conductor", "nova-scheduler",
                                     "nova-novncproxy"),
            packages=Packages(("nova-api", "nova-conductor", "nova-scheduler", "nova-consoleproxy", *_API_CLIENTS),
                              debconf=_NOVA_DEBCONF),
            runs_on=("controller",),
            listeners=(Listener("nova_api", 8774, "compute", "/v2.1", public=True, proxied=True),
                       Listener("nova_metadata", 8775, proxied=True),
                       Listener("nova_novncproxy", 6080, health="/vnc_auto.html", public=True, proxied=True)),
            database="nova", reports=(("compute", "nova-conductor"), ("compute", "nova-scheduler")),
            secrets=("nova_db_password", "nova_keystone_password", "nova_metadata_secret")),
    # genisoimage: config drives (a Recommends of nova-compute; Tempest found it
    # missing); qemu-block-extra: qemu's RBD driver; python3-cryptography: the
    # pki role makes the node's libvirt and QEMU keys and requests there
    Service("nova_compute", "nova", "nova", ("libvirtd", "nova-compute"),
            packages=Packages(("nova-compute", "genisoimage", "nova-compute-kvm", "qemu-system-x86",
                               "libvirt-daemon-system", "python3-libvirt", "python3-cryptography"),
                              with_ceph=("qemu-block-extra", "ceph-common"),
                              debconf=_NOVA_DEBCONF),
            runs_on=("compute",), reports=(("compute", "nova-compute"),),
            # the cloud's CA signs each compute node's libvirt and QEMU certificate
            secrets=("libvirt_ceph_secret_uuid", "libvirt_nova_ceph_secret_uuid", "cloud_ca_key",
                     "cloud_ca_certificate"),
            # live migration: libvirt with TLS, on management only
            listeners=(Listener("libvirt_tls", 16514),),
            needs=lambda inv: None if inv.nodes_with_role("compute") else
            "no node has the compute role: the cloud cannot run instances"),
    Service("neutron_server", "neutron", "neutron", ("neutron-api", "neutron-rpc-server"),
            packages=Packages(("neutron-server", *_API_CLIENTS), debconf=_NEUTRON_DEBCONF),
            runs_on=("controller",), listeners=(Listener("neutron", 9696, "network", public=True, proxied=True),),
            database="neutron",
            secrets=("neutron_db_password", "neutron_keystone_password")),
    Service("neutron_ovs_agent", "neutron", "neutron", ("neutron-openvswitch-agent",),
            packages=Packages(("neutron-openvswitch-agent",), debconf=_NEUTRON_DEBCONF),
            reports=(("network", "Open vSwitch agent"),),
            members=lambda inv: [n.name for n in inv.nodes if runs_neutron_agent(inv, n)]),
    Service("neutron_gateway", "neutron", "neutron",
            ("neutron-l3-agent", "neutron-dhcp-agent", "neutron-metadata-agent"),
            packages=Packages(("neutron-l3-agent", "neutron-dhcp-agent", "neutron-metadata-agent"),
                              debconf=_NEUTRON_DEBCONF),
            reports=(("network", "L3 agent"), ("network", "DHCP agent"), ("network", "Metadata agent")),
            members=_gateways),
    Service("cinder", "cinder", "cinder", ("cinder-api", "cinder-scheduler"),
            packages=Packages(("cinder-api", "cinder-scheduler", *_API_CLIENTS), debconf=_CINDER_DEBCONF),
            runs_on=("controller",),
            listeners=(Listener("cinder", 8776, "volumev3", "/v3/%(project_id)s", "/healthcheck", public=True,
                                proxied=True),),
            database="cinder", secrets=("cinder_db_password", "cinder_keystone_password"),
            needs=_no_storage_node),
    Service("cinder_volume", "cinder", "cinder", ("cinder-volume",),
            packages=Packages(("cinder-volume",), with_ceph=_RBD, without_ceph=("tgt",), debconf=_CINDER_DEBCONF),
            runs_on=("storage",), database="cinder", needs=_no_storage_node),
    # cinder-backup beside cinder-volume: reading a volume it uses the volume
    # service's own Ceph key on that node
    Service("cinder_backup", "cinder", "cinder", ("cinder-backup",),
            packages=Packages(("cinder-backup",), with_ceph=_RBD, debconf=_CINDER_DEBCONF),
            runs_on=("storage",), database="cinder", option="cinder_backup", needs=_no_backup_store),
    Service("horizon", "horizon", "horizon", ("apache2",),
            # Heat's panels (stacks, resource types, template versions and
            # generator) when the cloud runs Heat
            packages=Packages(("openstack-dashboard-apache", "python3-pymemcache"), debconf=(
                ("openstack-dashboard-apache", "horizon/activate_vhost", "boolean", "true"),
                ("openstack-dashboard-apache", "horizon/use_ssl", "boolean", "false")),
                with_options=(("heat", ("python3-heat-dashboard",)),)),
            runs_on=("controller",),
            listeners=(Listener("horizon", 80, health="/auth/login/", public=True, proxied=True),),
            secrets=("horizon_secret_key",)),
    # heat-api-cfn: the CloudFormation API, which the guests' signals and
    # wait conditions call (on the public endpoint)
    Service("heat", "heat", "heat", ("heat-api", "heat-api-cfn", "heat-engine"),
            packages=Packages(("heat-api", "heat-api-cfn", "heat-engine", *_API_CLIENTS), debconf=(
                *_no_db_setup("heat-common", "heat", "rabbit", "ksat"),
                ("heat-common", "heat/configure_with_debconf", "boolean", "false"),
                ("heat-api", "heat/configure_api-endpoint", "boolean", "false"))),
            runs_on=("controller",), option="heat",
            listeners=(Listener("heat_api", 8004, "orchestration", "/v1/%(project_id)s", public=True, proxied=True),
                       Listener("heat_api_cfn", 8000, "cloudformation", "/v1", public=True, proxied=True)),
            database="heat",
            secrets=("heat_db_password", "heat_keystone_password", "heat_domain_admin_password",
                     "heat_auth_encryption_key")),
    # Swift: the account, container and object servers and their
    # background daemons on the storage nodes (the rings are built there, on
    # the first one), the proxy under uwsgi on the controllers
    Service("swift_storage", "swift", "swift", _SWIFT_STORAGE_UNITS,
            packages=Packages(("swift-account", "swift-container", "swift-object", "rsync")),
            runs_on=("storage",), option="swift",
            listeners=(Listener("swift_object", 6200), Listener("swift_container", 6201),
                       Listener("swift_account", 6202), Listener("swift_rsync", 873)),
            secrets=("swift_hash_path_prefix", "swift_hash_path_suffix")),
    Service("swift_proxy", "swift", "swift", ("swift-proxy",),
            packages=Packages(("swift-proxy", "python3-keystonemiddleware", "python3-memcache")),
            # (validate refuses swift without storage nodes)
            runs_on=("controller",), option="swift",
            listeners=(Listener("swift_proxy", 8080, "object-store", "/v1/AUTH_%(project_id)s", "/healthcheck",
                                public=True, proxied=True),),
            secrets=("swift_keystone_password", "swift_hash_path_prefix", "swift_hash_path_suffix")),
    Service("ceilometer", "ceilometer", "ceilometer", ("ceilometer-central", "ceilometer-compute"),
            runs_on=("controller", "compute"), option="ceilometer",
            not_yet="Stackwright has no telemetry roles yet (the issue on Swift, Heat and telemetry)"),
)

# Phases of site.yml that are not one service's: every node's base set-up.
HOST_PHASES = ("prepare", "packages", "network")
FINAL_PHASES = ("post_deploy",)


def deployable() -> tuple[Service, ...]:
    return tuple(s for s in SERVICES if s.deployable)


def service(group: str) -> Service:
    return next(s for s in SERVICES if s.group == group)


def phases() -> list[str]:
    """Every deploy phase (the --tags names), in the order deploy runs them."""
    return list(dict.fromkeys([*HOST_PHASES, *(s.phase for s in deployable()), *FINAL_PHASES]))


def service_groups(inv: Inventory) -> dict[str, list[str]]:
    """group -> its nodes, for every deployable service (empty: left out)."""
    return {s.group: s.hosts(inv) for s in deployable()}


def packages(inv: Inventory) -> dict[str, dict[str, list[object]]]:
    """group -> the packages its nodes install and their debconf answers, for
    this cloud (rendered as stackwright_packages)."""
    return {s.group: s.packages.for_cloud(inv.cloud.services) for s in deployable()}


def units() -> dict[str, list[str]]:
    """group -> the systemd units its nodes run (rendered as stackwright_units)."""
    return {s.group: list(s.units) for s in deployable()}


def databases() -> dict[str, str]:
    """group -> the database its processes use (rendered as
    stackwright_databases: a restore stops these while it replaces the data)."""
    return {s.group: s.database for s in deployable() if s.database}


def ports() -> dict[str, int]:
    """Every listener's port by name (rendered as stackwright_ports)."""
    return {lis.name: lis.port for s in deployable() for lis in s.listeners}


def public_ports(inv: Inventory) -> dict[str, int]:
    """The listeners users reach on the API network, of the services this
    inventory gets: nothing else may answer there (with TLS, HAProxy serves
    the dashboard on 443 and redirects its port 80 there)."""
    out = {lis.name: lis.port for s in deployable() if not s.left_out(inv) for lis in s.listeners if lis.public}
    if inv.cloud.tls and "horizon" in out:
        out["horizon_https"] = 443
    return out


def shared_values(inv: Inventory) -> dict[str, object]:
    """The values every service uses to reach the shared ones, computed once
    (rendered into group_vars; the roles' defaults read them): where the
    database, Keystone and Glance answer, the memcached servers and the
    brokers.  The transport URL itself, which holds a password, is put
    together by Ansible from the brokers (templates/inventory)."""
    port = ports()
    internal = inv.internal_endpoint_host()

    def on_management(group: str, name: str) -> list[str]:
        return [f"{inv.address(inv.node(host), 'management')}:{port[name]}" for host in service(group).hosts(inv)]

    return {
        # (by address: the database is no endpoint, and needs no name)
        "database_host": inv.internal_endpoint_address(),
        # scheme and host of every public endpoint (HAProxy terminates TLS)
        "public_endpoint": f"{'https' if inv.cloud.tls else 'http'}://{inv.public_endpoint_host()}",
        "keystone_internal_url": f"http://{internal}:{port['keystone']}",
        "glance_internal_url": f"http://{internal}:{port['glance']}",
        "memcached_servers": on_management("memcached", "memcached"),
        "rabbitmq_hosts": on_management("rabbitmq", "rabbitmq"),
        # several brokers: the services' queues are quorum queues (oslo.messaging
        # 14, Debian 12's, declares them with rabbit_quorum_queue; RabbitMQ
        # 3.10 replicates them by Raft over a majority of the brokers, so a
        # broker's death loses no queue and no acknowledged message). Classic
        # mirrored queues, the other choice, are deprecated since RabbitMQ 3.9.
        # One broker: nothing replicates, the file keeps oslo's defaults (a
        # queue's type cannot change once declared, so a cloud keeps its kind).
        "oslo_messaging_rabbit": ({"rabbit_quorum_queue": True}
                                  if len(service("rabbitmq").hosts(inv)) > 1 else None),
    }


def frontends(inv: Inventory) -> list[dict[str, object]]:
    """What HAProxy serves on the VIPs: every API of this inventory's
    services, its health check, whether it answers on the public VIP too,
    and its backends (each node of the service on its management address).
    On a lone controller with TLS only the public APIs (on its API address;
    the services reach each other on management directly).  Empty without
    HAProxy."""
    out: list[dict[str, object]] = []
    if not service("haproxy").hosts(inv):
        return out
    public_only = not ha_controllers(inv)
    for s in deployable():
        hosts = s.hosts(inv)
        for lis in s.listeners:
            if lis.proxied and hosts and (lis.public or not public_only):
                out.append({"name": lis.name, "port": lis.port, "health": lis.health, "public": lis.public,
                            "check_port": lis.check_port,
                            "backends": [{"name": h, "address": str(inv.address(inv.node(h), "management"))}
                                         for h in hosts]})
    return out


def units_by_node(inv: Inventory) -> dict[str, list[str]]:
    """node -> the processes it runs, in deploy order (each service's nodes
    computed once: on 1,000 nodes a per-node lookup would be quadratic)."""
    out: dict[str, list[str]] = {n.name: [] for n in inv.nodes}
    for s in deployable():
        for host in s.hosts(inv):
            # the daemons, as plan shows them (ceph-osd, not ceph-osd.target)
            out[host] += [u.removesuffix(".target") for u in s.units if u.removesuffix(".target") not in out[host]]
    return out


def reports(inv: Inventory) -> list[tuple[str, str, str]]:
    """(api, name, host) of everything the deployed cloud's nodes report
    (Nova services, Neutron agents), sorted."""
    return sorted({(api, name, host) for s in deployable() for host in s.hosts(inv) for api, name in s.reports})


def left_out(inv: Inventory) -> dict[str, str]:
    """Deployable services this inventory does not get, with the reason (one
    entry per reason: a service's parts share theirs)."""
    out: dict[str, str] = {}
    for s in deployable():
        reason = s.left_out(inv)
        if reason and reason not in out.values() and not (s.option and reason.endswith("is off")):
            out[s.group] = reason
    return out


def secrets() -> tuple[str, ...]:
    """Every secret some deployable service uses, sorted."""
    return tuple(sorted({name for s in deployable() for name in s.secrets}))


# -- validate: what the catalog cannot deploy yet, and what it leaves out ---


def _several_controllers(inv: Inventory, count: int) -> Iterator[Problem]:
    """What several controllers are refused for."""
    if count < 2:
        return
    if not inv.cloud.services.ceph:
        # found by a three-controller lab deploy: verify's server failed
        # with "Image ... has no associated data"
        yield Problem(("cloud", "services", "ceph"), f"{count} controllers share Glance's images "
                      "only through Ceph: with Glance's file store an image lives on the one controller that "
                      "took the upload, and the others answer 'no associated data' (Glance's Swift store is not "
                      "deployable yet)", "set `ceph: true` under `services:` and give a node the storage role",
                      not_yet=True)


def _tls_on_one_controller(inv: Inventory, controllers: list[Node]) -> Iterator[Problem]:
    """TLS on a lone controller needs an API address apart from management."""
    if not inv.cloud.tls or len(controllers) != 1 or ha_controllers(inv):
        return
    controller = controllers[0]
    # (by the networks' roles as written: a node may name a network the
    # inventory lacks, which validate reports on its own)
    roles = {n.name: n.role for n in inv.networks}
    by_role = {roles[name]: att.address for name, att in reversed(controller.networks.items()) if name in roles}
    if by_role.get("api") in (None, by_role.get("management")):
        yield Problem(("cloud", "tls"), f"TLS with one controller needs an address of {controller.name} on "
                      "the API network, apart from its management address: HAProxy terminates TLS on the "
                      "API address while the APIs listen on management only (on one address both would "
                      "take the same ports)", f"give {controller.name} an address on the network with "
                      "`role: api`, or remove `tls: true`")


def problems(inv: Inventory) -> Iterator[Problem]:
    for s in SERVICES:
        if s.option and getattr(inv.cloud.services, s.option) and not s.deployable:
            yield Problem(("cloud", "services", s.option), f"{s.option} is not deployable yet: {s.not_yet}",
                          f"remove `{s.option}: true` (or set it to false)", not_yet=True)
        elif s.option and getattr(inv.cloud.services, s.option) and s.needs and (reason := s.needs(inv)):
            yield Problem(("cloud", "services", s.option), f"{s.option} cannot be deployed here: {reason}",
                          f"give the cloud what it lacks, or remove `{s.option}: true`")
    controllers = inv.nodes_with_role("controller")
    yield from _several_controllers(inv, len(controllers))
    for name in ("internal_vip", "public_vip"):
        if getattr(inv.cloud, name) is not None and len(controllers) == 1:
            yield Problem(("cloud", name), "a virtual IP needs the high-availability stack (pacemaker), which is "
                          "not deployable yet: nothing would hold the address", f"remove `{name}:`", not_yet=True)
    yield from _tls_on_one_controller(inv, controllers)
    external = [(i, n) for i, n in enumerate(inv.networks) if n.role == "external"]
    if not any(n.floating_range for _, n in external):
        yield Problem(("networks", external[0][0]) if external else ("networks",),
                      "no external network with a floating_range: the cloud gets no external (provider) network, "
                      "so routers have no gateway and instances no floating IPs (verify skips that step)",
                      "add `floating_range: {start: ..., end: ...}` to the network with `role: external`",
                      severity="warning")
    storage = inv.nodes_with_role("storage")
    if storage and not inv.cloud.services.ceph:
        yield Problem(("cloud", "services", "ceph"), "storage nodes without Ceph: cinder-volume uses LVM over "
                      "iSCSI, and the deploy stops on a storage node that has no volume group cinder-volumes "
                      f"({', '.join(n.name for n in storage)})",
                      "create it on the disks Cinder may use (vgcreate cinder-volumes /dev/sdX), or set "
                      "`services.ceph: true`", severity="warning")
    for group, reason in left_out(inv).items():
        yield Problem(("nodes",), f"{group} is left out: {reason}",
                      "add the storage role to a node (with services.ceph, or an LVM volume group) for block "
                      "storage" if group.startswith("cinder") else f"add a node with the {group.split('_')[-1]} role",
                      severity="warning")
