"""The node inventory: the one typed model of what the operator wants built.

Everything else (validate, render, lab, deploy) reads these classes.  Field
constraints that concern a single value live here; rules that relate several
parts of the file (an address inside its network, a NIC used twice...) live in
:mod:`stackwright.checks` so that all of them can be reported at once.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

NodeRole = Literal["controller", "network", "compute", "storage"]
NetworkRole = Literal["management", "api", "tenant", "external", "storage", "admin"]
BondProvider = Literal["ovs", "linux"]

# Host names and interface names as Linux and DNS accept them.
Hostname = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,30}$")]
IfName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,14}$")]
Mac = Annotated[
    str, StringConstraints(pattern=r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
]
Mtu = Annotated[int, Field(ge=576, le=9216)]
VlanId = Annotated[int, Field(ge=1, le=4094)]


def _beside_inventory(value: Path, info: ValidationInfo) -> Path:
    """A relative path is taken from the inventory file's folder (the
    loader passes it as the context's `base`), never from the current one."""
    base = (info.context or {}).get("base")
    return value if value.is_absolute() or base is None else Path(base) / value


# A file on the deploying machine that the inventory names.
InventoryFile = Annotated[Path, AfterValidator(_beside_inventory)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- the grammar of free-text fields ----------------------------------------
# Every string the operator writes ends up in a configuration file, a
# template or a command line on the nodes.  Each one is checked against the
# grammar of what it names, so that nothing else can slip through: a brace
# would be evaluated by Ansible's templating on the deploying machine, a
# quote or a newline would add a line to apt.conf or chrony.conf.

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_URL_PATH = re.compile(r"(/[A-Za-z0-9._~-]*)*")
_NETLOC = re.compile(r"(?P<host>[^:]+)(:(?P<port>[0-9]{1,5}))?")


def _grammar(message: str, fix: str, part: str = "") -> PydanticCustomError:
    """The error for a value outside its grammar.  *part*, the offending
    piece of the operator's text, goes in as {part}: pydantic fills the
    message's placeholders from its context, so text of the operator's
    must never be in the message template itself."""
    return PydanticCustomError("grammar", message, {"fix": fix, "part": repr(part[:70])})


def _dns_name(value: str) -> str:
    """A DNS name as RFC 1123 writes one: dot-separated labels of 1-63
    lower-case letters, digits and '-' (not first or last), 253 at most."""
    if len(value) > 253:
        raise _grammar("is longer than the 253 characters a DNS name may have", "use a shorter name")
    for label in value.split("."):
        if not _LABEL.fullmatch(label):
            what = "an empty label (two dots, or a dot at an end)" if not label else "the label {part}"
            raise _grammar(f"is not a DNS name: {what}",
                           "write dot-separated labels of lower-case letters, digits and '-' (at most 63 "
                           "characters each, not starting or ending with '-'), such as cloud.example.org", label)
    if value.rsplit(".", 1)[-1].isdigit():
        raise _grammar("is not a DNS name: its last label is all digits, which no top-level domain is",
                       "write an IPv4 address with four numbers from 0 to 255, or a DNS name")
    return value


def _host(value: str) -> str:
    """An IPv4 address or a DNS name."""
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        try:
            _dns_name(value)
        except PydanticCustomError:
            raise _grammar("is neither an IPv4 address nor a DNS name",
                           "write an address such as 192.0.2.10 or a name such as ntp.example.org") from None
    return value


def _proxy_url(value: str) -> str:
    """http(s)://HOST[:PORT][/PATH]: what apt's Acquire::http::Proxy takes,
    without credentials (they would be written to the rendered inventory and
    to apt.conf on every node, readable by all)."""
    fix = "write a URL such as http://proxy.example.org:3142"
    if any(c.isspace() or not c.isprintable() for c in value):  # urlsplit would drop a line break
        raise _grammar("contains a space, a line break or a control character", fix)
    try:
        parts = urllib.parse.urlsplit(value)
    except ValueError:  # e.g. an unclosed [ of an IPv6 literal
        raise _grammar("is not a URL", fix) from None
    if parts.scheme not in ("http", "https") or not value.startswith(f"{parts.scheme}://"):
        raise _grammar("is not an http:// or https:// URL", fix)
    if "@" in parts.netloc:
        raise _grammar("carries credentials; Stackwright would write them into files every node user can read",
                       "use a proxy that admits the nodes by address, such as apt-cacher-ng")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise _grammar("has a query or fragment; a proxy URL has neither", fix)
    where = _NETLOC.fullmatch(parts.netloc)
    if not where or not 0 < int(where["port"] or 80) < 65536:
        raise _grammar("needs a host and, if any, a port from 1 to 65535", fix)
    try:
        _host(where["host"])
    except PydanticCustomError:
        raise _grammar("has the host {part}, which is neither an IPv4 address nor a DNS name",
                       fix, where["host"]) from None
    if not _URL_PATH.fullmatch(parts.path):
        raise _grammar("has a path with characters a proxy path does not need",
                       "use letters, digits and . _ ~ - / in the path")
    return value


DnsName = Annotated[str, AfterValidator(_dns_name)]
Host = Annotated[str, AfterValidator(_host)]
ProxyUrl = Annotated[str, AfterValidator(_proxy_url)]


class SshAccess(_Strict):
    """How Ansible reaches a node (defaults: its management address, root, 22)."""

    host: Host | None = None
    user: Name = "root"
    port: Annotated[int, Field(ge=1, le=65535)] = 22


class Fence(_Strict):
    """The node's power control, used to fence it (power it off for sure)
    before its servers are evacuated: its BMC over IPMI 2.0 (fence_ipmilan
    with lanplus, from Debian's fence-agents, run on the deploying
    machine).  The password is the secrets file's
    ``fence_password_<node>``, handed to the agent on its standard input."""

    agent: Literal["ipmilan"]
    address: Host
    port: Annotated[int, Field(ge=1, le=65535)] = 623
    # IPMI user names are at most 16 bytes
    username: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,16}$")]
    # RMCP+ cipher suite: 3 (AES-128, HMAC-SHA1) is what nearly every BMC
    # offers; 17 (HMAC-SHA256) where the BMC has it.  Named, because letting
    # ipmitool ask the BMC first costs about 14 s per call on some BMCs.
    cipher: Literal[3, 17] = 3


class Services(_Strict):
    """Optional services (the core - Keystone, Glance, Placement, Nova,
    Neutron, Cinder, Horizon - is always deployed)."""

    swift: bool = False
    heat: bool = False
    ceilometer: bool = False
    ceph: bool = False
    # cinder-backup on the storage nodes, its backups in Ceph's backups pool
    cinder_backup: bool = False


class Cloud(_Strict):
    name: Hostname
    region: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")] = (
        "RegionOne"
    )
    release: Literal["zed"] = "zed"
    domain: DnsName = "stackwright.test"
    internal_vip: ipaddress.IPv4Address | None = None
    public_vip: ipaddress.IPv4Address | None = None
    # Names of the endpoints (default: the VIP or controller address itself).
    internal_fqdn: DnsName | None = None
    public_fqdn: DnsName | None = None
    # TLS on the public endpoints, terminated by HAProxy on the public VIP.
    tls: bool = False
    # The operator's certificate for them (PEM, the server's first, then its
    # chain) and its unencrypted key: files on the deploying machine,
    # relative to the inventory's folder.  Without them the cloud's own CA
    # (in the secrets file) signs one on every controller.
    tls_certificate: InventoryFile | None = None
    tls_key: InventoryFile | None = None
    # The CA clients are told to trust (clouds.yaml's cacert, openrc's
    # OS_CACERT): needed when tls_certificate is not signed by a CA the
    # clients already trust; the cloud's own CA without tls_certificate.
    tls_ca: InventoryFile | None = None
    services: Services = Field(default_factory=lambda: Services())
    # Open vSwitch datapath: `system` (kernel) on servers, `netdev` (userspace)
    # where the kernel has no openvswitch module (the lab sets this).
    ovs_datapath: Literal["system", "netdev"] = "system"
    # The kernel has bonding and 802.1q modules.  False where it has not (the
    # lab sets this): Linux bonds are then built as OVS bonds with the
    # equivalent mode and VLAN-tagged networks as tagged OVS internal ports.
    kernel_bonding: bool = True
    # Nodes get a default route through the gateway of their API network
    # (else management, else admin).  The lab turns this off: its nodes never
    # get a route to the outside.
    default_route: bool = True
    # dpkg skips fsync while unpacking (force-unsafe-io): much faster
    # installs, but a power loss during one can leave broken packages.  For
    # throw-away nodes; the lab sets it.
    dpkg_unsafe_io: bool = False
    # Nova's virt_type: `auto` tries KVM on each compute node and falls back
    # to qemu emulation where hardware virtualisation does not really work.
    hypervisor: Literal["kvm", "qemu", "auto"] = "auto"
    ntp_servers: Annotated[list[Host], Field(max_length=16)] = Field(default_factory=list)
    apt_proxy: ProxyUrl | None = None
    ssh: SshAccess = Field(default_factory=SshAccess)


class AddressRange(_Strict):
    start: ipaddress.IPv4Address
    end: ipaddress.IPv4Address


class Network(_Strict):
    name: Name
    role: NetworkRole
    cidr: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address | None = None
    # 802.1q tag of this network on the NICs/bonds that carry it (none: untagged).
    vlan: VlanId | None = None
    mtu: Mtu = 1500
    # tenant: how Neutron builds project networks (vxlan/gre tunnel between
    # the nodes' addresses on this network; vlan/flat on a provider bridge).
    # external: flat or vlan on br-ex.
    type: Literal["vxlan", "gre", "vlan", "flat"] | None = None
    # tenant type vlan: the VLAN ids Neutron hands out, e.g. "100:199".
    vlan_range: Annotated[str, StringConstraints(pattern=r"^\d{1,4}:\d{1,4}$")] | None = None
    # Neutron physical network name for vlan/flat (bridge_mappings).
    physnet: Name | None = None
    # OVS bridge that carries this network (derived when unset: br-ex for
    # external, br-<physnet> for vlan/flat tenant networks).
    bridge: IfName | None = None
    # external: the floating IP range Neutron hands out.
    floating_range: AddressRange | None = None
    # tenant: the MTU instances should get; must leave room for the tunnel
    # header (vxlan 50 bytes, gre 42) inside `mtu`.
    instance_mtu: Mtu | None = None

    @property
    def segmentation(self) -> str | None:
        """Tenant/external network type, with its default."""
        if self.role == "tenant":
            return self.type or "vxlan"
        if self.role == "external":
            return self.type or ("vlan" if self.vlan else "flat")
        return None

    @property
    def physical_network(self) -> str | None:
        if self.segmentation in ("vlan", "flat"):
            return self.physnet or ("external" if self.role == "external" else "physnet1")
        return None

    @property
    def ovs_bridge(self) -> str | None:
        """The OVS bridge this network lives on, if any."""
        if self.bridge:
            return self.bridge
        if self.role == "external":
            return "br-ex"
        if self.role == "tenant" and self.physical_network:
            return f"br-{self.physical_network}"[:15]
        return None


class Nic(_Strict):
    name: IfName
    mac: Mac | None = None
    mtu: Mtu | None = None


OVS_BOND_MODES = ("active-backup", "balance-slb", "balance-tcp")
LINUX_BOND_MODES = (
    "balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb",
)


def linux_bond_mode(mode: str | None) -> str | None:
    """Mode 0-6 or its name -> the name."""
    if mode is not None and mode.isdigit() and int(mode) < len(LINUX_BOND_MODES):
        return LINUX_BOND_MODES[int(mode)]
    return mode


class Bond(_Strict):
    name: IfName
    members: list[IfName]
    # ovs: an OVS bond (OVS does bonding and LACP itself); linux: a kernel bond.
    provider: BondProvider = "ovs"
    # ovs: active-backup | balance-slb | balance-tcp;
    # linux: 0-6 or balance-rr | active-backup | balance-xor | broadcast |
    # 802.3ad | balance-tlb | balance-alb
    mode: Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)] | None = None
    # ovs only
    lacp: Literal["active", "passive", "off"] | None = None
    # linux only
    miimon: Annotated[int, Field(ge=0, le=60000)] | None = None
    lacp_rate: Literal["slow", "fast"] | None = None
    xmit_hash_policy: Literal["layer2", "layer2+3", "layer3+4", "encap2+3", "encap3+4"] | None = None
    mtu: Mtu | None = None

    @property
    def linux_mode(self) -> str:
        """The kernel bond mode by name (active-backup when unset)."""
        return linux_bond_mode(self.mode) or "active-backup"


class Attachment(_Strict):
    """A network on a node: which NIC or bond carries it and the node's address."""

    interface: IfName
    # required except on external and vlan/flat tenant networks
    address: ipaddress.IPv4Address | None = None


class Node(_Strict):
    name: Hostname
    roles: Annotated[list[NodeRole], Field(min_length=1)]
    nics: Annotated[list[Nic], Field(min_length=1)]
    bonds: list[Bond] = Field(default_factory=list)
    networks: dict[Name, Attachment]
    ssh: SshAccess | None = None
    fence: Fence | None = None


class Inventory(_Strict):
    cloud: Cloud
    networks: Annotated[list[Network], Field(min_length=1)]
    nodes: Annotated[list[Node], Field(min_length=1)]

    # -- convenience views used by render, lab and deploy -----------------
    def network(self, name: str) -> Network:
        return next(n for n in self.networks if n.name == name)

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def networks_with_role(self, role: str) -> list[Network]:
        return [n for n in self.networks if n.role == role]

    def nodes_with_role(self, role: str) -> list[Node]:
        return [n for n in self.nodes if role in n.roles]

    def address(self, node: Node, role: str) -> ipaddress.IPv4Address | None:
        """The node's address on its first network of this role."""
        for net_name, att in node.networks.items():
            if self.network(net_name).role == role:
                return att.address
        return None

    def ssh_for(self, node: Node) -> SshAccess:
        """How Ansible reaches a node: its ssh settings, else its address on
        the admin network (Fuel-style layouts), else on management."""
        base = node.ssh or self.cloud.ssh
        host = base.host or self.address(node, "admin") or self.address(node, "management")
        return SshAccess(host=str(host) if host else None, user=base.user, port=base.port)

    def internal_endpoint_address(self) -> str:
        """Where services reach each other: the internal VIP, else the first
        controller's management address (one controller only)."""
        if self.cloud.internal_vip:
            return str(self.cloud.internal_vip)
        return str(self.address(self.nodes_with_role("controller")[0], "management"))

    def public_endpoint_address(self) -> str:
        """Where users reach the APIs: the public VIP, else the first
        controller's API address (its management address without an API
        network)."""
        if self.cloud.public_vip:
            return str(self.cloud.public_vip)
        controller = self.nodes_with_role("controller")[0]
        return str(self.address(controller, "api") or self.address(controller, "management"))

    def internal_endpoint_host(self) -> str:
        """The host of the internal endpoints' URLs: internal_fqdn (every
        node's /etc/hosts has it), else the address itself."""
        return self.cloud.internal_fqdn or self.internal_endpoint_address()

    def public_endpoint_host(self) -> str:
        """The host of the public endpoints' URLs: public_fqdn (the
        operator's DNS resolves it for the clients), else the address."""
        return self.cloud.public_fqdn or self.public_endpoint_address()
