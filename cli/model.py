"""The node inventory: the one typed model of what the operator wants built.

Everything else (validate, render, lab, deploy) reads these classes.  Field
constraints that concern a single value live here; rules that relate several
parts of the file (an address inside its network, a NIC used twice...) live in
:mod:`stackwright.checks` so that all of them can be reported at once.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

NodeRole = Literal["controller", "network", "compute", "storage"]
NetworkRole = Literal["management", "api", "tenant", "external", "storage"]
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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _ssh_host(value: str) -> str:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?", value):
            raise ValueError("must be an IPv4 address or a DNS name") from None
    return value


class SshAccess(_Strict):
    """How Ansible reaches a node (defaults: its management address, root, 22)."""

    host: Annotated[str, AfterValidator(_ssh_host)] | None = None
    user: Name = "root"
    port: Annotated[int, Field(ge=1, le=65535)] = 22


class Cloud(_Strict):
    name: Hostname
    region: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")] = (
        "RegionOne"
    )
    release: Literal["zed"] = "zed"
    domain: Annotated[
        str, StringConstraints(pattern=r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
    ] = "stackwright.test"
    internal_vip: ipaddress.IPv4Address | None = None
    public_vip: ipaddress.IPv4Address | None = None
    ntp_servers: list[str] = Field(default_factory=list)
    apt_proxy: Annotated[str, StringConstraints(pattern=r"^https?://\S+$")] | None = None
    ssh: SshAccess = Field(default_factory=SshAccess)


class Network(_Strict):
    name: Name
    role: NetworkRole
    cidr: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address | None = None
    vlan: VlanId | None = None
    mtu: Mtu = 1500


class Nic(_Strict):
    name: IfName
    mac: Mac | None = None
    mtu: Mtu | None = None


class Bond(_Strict):
    name: IfName
    members: list[IfName]
    provider: BondProvider = "ovs"
    mode: str | None = None
    lacp: Literal["active", "passive", "off"] | None = None
    mtu: Mtu | None = None


class Attachment(_Strict):
    """A network on a node: which NIC or bond carries it and the node's address."""

    interface: IfName
    address: ipaddress.IPv4Address


class Node(_Strict):
    name: Hostname
    roles: Annotated[list[NodeRole], Field(min_length=1)]
    nics: Annotated[list[Nic], Field(min_length=1)]
    bonds: list[Bond] = Field(default_factory=list)
    networks: dict[Name, Attachment]
    ssh: SshAccess | None = None


class Inventory(_Strict):
    cloud: Cloud
    networks: Annotated[list[Network], Field(min_length=1)]
    nodes: Annotated[list[Node], Field(min_length=1)]

    # -- convenience views used by render, lab and deploy -----------------
    def network(self, name: str) -> Network:
        return next(n for n in self.networks if n.name == name)

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
        base = node.ssh or self.cloud.ssh
        host = base.host or self.address(node, "management")
        return SshAccess(host=str(host) if host else None, user=base.user, port=base.port)

    def internal_endpoint_host(self) -> str:
        """Where services reach each other: the internal VIP, else the first
        controller's management address (one controller only)."""
        if self.cloud.internal_vip:
            return str(self.cloud.internal_vip)
        return str(self.address(self.nodes_with_role("controller")[0], "management"))

    def public_endpoint_host(self) -> str:
        """Where users reach the APIs: the public VIP, else the first
        controller's API address (its management address without an API
        network)."""
        if self.cloud.public_vip:
            return str(self.cloud.public_vip)
        controller = self.nodes_with_role("controller")[0]
        return str(self.address(controller, "api") or self.address(controller, "management"))
