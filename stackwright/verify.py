"""`stackwright verify`: an end-to-end smoke run against a deployed cloud.

Each step is timed and reported passed, failed or skipped: the services
answer, a test guest boots on the tenant network, gets its DHCP address,
reads its UUID from the metadata service (both seen in its console log),
answers ping on a floating IP from this machine (outside the cloud), lets
this machine in over SSH with the key the metadata service gave it (its
address, UUID and host name checked from inside), and a volume is created,
attached and seen by the guest.  Everything created is removed again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .guest import DHCP_MARK, DISK_MARK, METADATA_MARK, SSH_MARK, Ssh


class StepFailed(Exception):
    """A step's check did not hold; the message says what was seen."""


class StepSkipped(Exception):
    """A step cannot run on this cloud; the message says why."""


@dataclass
class Step:
    name: str
    result: str  # passed, failed, skipped
    seconds: float
    detail: str


# the guest's disks besides its root disk, a line each: name and sectors
GUEST_DISKS = "for d in /sys/block/vd*; do [ ${d##*/} = vda ] || echo ${d##*/} $(cat $d/size); done"
# a cinder-backup the scheduler has not heard from yet (its first report
# comes a minute or two after it starts)
NO_BACKUP_SERVICE = "Service not found for creating backup"
BACKUP_SERVICE_REPORT = 240  # s: how long a backup may wait for it


@dataclass
class Options:
    image: str = "stackwright-testguest"
    flavor: str = "m1.nano"
    network: str = "demo-net"
    external_network: str = "public"
    timeout: int = 300
    keep: bool = False
    # the cloud runs Heat: a stack is made and removed too
    heat: bool = False
    # the cloud runs cinder-backup: the volume is backed up and restored
    backup: bool = False
    # what the cloud's nodes must report, from the service catalog:
    # (api, name, host) with api "compute" (Nova services) or "network"
    # (Neutron agents); empty: whatever is registered must be up
    expected: tuple[tuple[str, str, str], ...] = ()


def wait_for(what: str, probe: Callable[[], Any], timeout: float, interval: float = 3.0) -> Any:
    """Call *probe* until it returns something truthy; StepFailed after *timeout*."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise StepFailed(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)


# verify's Heat stack: a server on the tenant network with a port, its own
# security group (ping) and a floating IP from the external network
STACK_TEMPLATE: dict[str, Any] = {
    "heat_template_version": "2021-04-16",
    "parameters": {p: {"type": "string"} for p in ("image", "flavor", "network", "external_network")},
    "resources": {
        "sg": {"type": "OS::Neutron::SecurityGroup",
               "properties": {"rules": [{"protocol": "icmp", "direction": "ingress"}]}},
        "port": {"type": "OS::Neutron::Port",
                 "properties": {"network": {"get_param": "network"},
                                "security_groups": [{"get_resource": "sg"}]}},
        "server": {"type": "OS::Nova::Server",
                   "properties": {"image": {"get_param": "image"}, "flavor": {"get_param": "flavor"},
                                  "networks": [{"port": {"get_resource": "port"}}]}},
        "fip": {"type": "OS::Neutron::FloatingIP",
                "properties": {"floating_network": {"get_param": "external_network"},
                               "port_id": {"get_resource": "port"}}},
    },
    "outputs": {"address": {"value": {"get_attr": ["fip", "floating_ip_address"]}}},
}


def _stack_failed(stack: Any) -> bool:
    """A stack whose last action failed (True ends a wait)."""
    return str(stack.status).endswith("_FAILED")


def ping(address: str, timeout: float) -> bool:
    if shutil.which("ping") is None:
        raise StepFailed("ping is not installed on this machine (Debian: apt-get install iputils-ping)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["ping", "-c", "1", "-W", "2", address], capture_output=True, check=False).returncode == 0:
            return True
        time.sleep(1)
    return False


@dataclass
class Verify:
    conn: Any
    opts: Options
    console: Console
    steps: list[Step] = field(default_factory=list)
    _cleanup: list[tuple[str, Callable[[], None]]] = field(default_factory=list)
    _server: Any = None
    _address: str = ""  # the server's floating IP, once it answers ping
    _console_log: str = ""
    _keys: Ssh | None = None  # the key pair the server was booted with
    _ssh: Ssh | None = None  # the same, once it let us in
    _volume: Any = None  # the attached volume, once the guest wrote it

    def step(self, name: str, fn: Callable[[], str]) -> bool:
        started = time.monotonic()
        with self.console.status(f"verify: {name} ..."):
            try:
                detail, result = fn(), "passed"
            except StepSkipped as exc:
                detail, result = str(exc), "skipped"
            except StepFailed as exc:
                detail, result = str(exc), "failed"
            except Exception as exc:  # an API error fails the step, with its message
                detail, result = f"{type(exc).__name__}: {exc}", "failed"
        took = time.monotonic() - started
        self.steps.append(Step(name, result, took, detail))
        style = {"passed": "green", "failed": "bold red", "skipped": "yellow"}[result]
        self.console.print(f"[{style}]{result:>7}[/] {name} ({took:.1f}s): {detail}", highlight=False)
        return result == "passed"

    # -- steps -------------------------------------------------------------
    def services(self) -> str:
        # right after a deploy (or on a loaded machine) an agent may miss a
        # heartbeat: wait for everything to report up before failing
        problems: list[str] = []
        dead: list[str] = []

        def all_up() -> bool:
            seen = {("compute", s.binary, s.host): s.state == "up" for s in self.conn.compute.services()}
            seen.update({("network", a.agent_type, a.host): bool(a.is_alive) for a in self.conn.network.agents()})
            # a node whose every service and agent is down is a dead node
            # (powered off, cut off): the cloud works on without it when
            # each of its kinds runs elsewhere too (several controllers,
            # network or compute nodes), so it is named, not a failure
            hosts = {host for _, _, host in seen}
            dead[:] = sorted(h for h in hosts if not any(up for (_, _, host), up in seen.items() if host == h))
            running = {(api, name) for (api, name, _), up in seen.items() if up}
            problems[:] = [f"{name}@{host} down" for (api, name, host), up in sorted(seen.items())
                           if not up and (host not in dead or (api, name) not in running)]
            problems.extend(f"{name}@{host} never reported" for api, name, host in self.opts.expected
                            if (api, name, host) not in seen and host not in dead)
            return not problems

        try:
            wait_for("services up", all_up, min(self.opts.timeout, 180), interval=5)
        except StepFailed:
            raise StepFailed(", ".join(problems)) from None
        computes = [s for s in self.conn.compute.services() if s.binary == "nova-compute" and s.state == "up"]
        if not computes:
            if self.opts.expected and not any(name == "nova-compute" for _, name, _ in self.opts.expected):
                raise StepSkipped("the inventory has no compute node: nothing can boot")
            raise StepFailed("no nova-compute service is up")
        for name, finder in (("image", self.conn.image.find_image), ("flavor", self.conn.compute.find_flavor),
                             ("network", self.conn.network.find_network)):
            wanted = {"image": self.opts.image, "flavor": self.opts.flavor, "network": self.opts.network}[name]
            if finder(wanted) is None:
                raise StepFailed(f"{name} {wanted!r} not found (created by the deploy's post-deploy phase)")
        agents = sum(1 for a in self.conn.network.agents() if a.is_alive)
        if dead:
            return (f"{len(computes)} compute service(s) up, {agents} network agent(s) alive; node(s) "
                    f"{', '.join(dead)} down (every service there down; each runs on another node too)")
        expected = f" (all {len(self.opts.expected)} the inventory expects)" if self.opts.expected else ""
        return f"{len(computes)} compute service(s) up, {agents} network agent(s) alive{expected}"

    def boot(self) -> str:
        tag = uuid.uuid4().hex[:8]
        sg = self.conn.network.create_security_group(name=f"stackwright-verify-{tag}",
                                                     description="stackwright verify")
        self._cleanup.append(("security group", lambda: self.conn.network.delete_security_group(sg)))
        for proto in ("icmp", "tcp"):
            self.conn.network.create_security_group_rule(
                security_group_id=sg.id, direction="ingress", ethertype="IPv4", protocol=proto,
                **({"port_range_min": 22, "port_range_max": 22} if proto == "tcp" else {}))
        workdir = tempfile.TemporaryDirectory(prefix="stackwright-verify-")
        self._cleanup.append(("SSH key", workdir.cleanup))
        ssh = Ssh(Path(workdir.name))
        keypair = self.conn.compute.create_keypair(name=f"stackwright-verify-{tag}", public_key=ssh.public_key)
        self._cleanup.append(("key pair", lambda: self.conn.compute.delete_keypair(keypair)))
        image = self.conn.image.find_image(self.opts.image)
        flavor = self.conn.compute.find_flavor(self.opts.flavor)
        net = self.conn.network.find_network(self.opts.network)
        server = self.conn.compute.create_server(
            name=f"stackwright-verify-{tag}", image_id=image.id, flavor_id=flavor.id, key_name=keypair.name,
            networks=[{"uuid": net.id}], security_groups=[{"name": sg.name}])
        self._keys = ssh

        def remove_server() -> None:
            self.conn.compute.delete_server(server)
            self.conn.compute.wait_for_delete(server, wait=self.opts.timeout)

        self._cleanup.append(("server", remove_server))

        def active() -> Any:
            s = self.conn.compute.get_server(server.id)
            if s.status == "ERROR":
                raise StepFailed(f"server went to ERROR: {(s.fault or {}).get('message', 'no fault message')}")
            return s if s.status == "ACTIVE" else None

        s = wait_for("server ACTIVE", active, self.opts.timeout)
        self._server = s
        return f"{s.name} ACTIVE on {s.compute_host or s.hypervisor_hostname or 'a compute node'}"

    def _not_up(self) -> str:
        raise StepSkipped("services are not up" if self.steps[-1].result == "failed" else self.steps[-1].detail)

    def _console(self) -> str:
        self._console_log = self.conn.compute.get_server_console_output(self._server)["output"] or ""
        return self._console_log

    def dhcp(self) -> str:
        if self._server is None:
            raise StepSkipped("no server")
        ports = list(self.conn.network.ports(device_id=self._server.id))
        fixed = {ip["ip_address"] for p in ports for ip in p.fixed_ips}
        try:
            found = wait_for("DHCP address in the console log", lambda: DHCP_MARK.search(self._console()),
                             self.opts.timeout, interval=5)
        except StepFailed as exc:
            raise StepFailed(f"{exc}; {self._dhcp_seen(ports)}") from None
        if found.group(1) == "none":
            raise StepFailed(f"the guest gave up asking for an address; {self._dhcp_seen(ports)}")
        addr = found.group(1).split("/")[0]
        if addr not in fixed:
            raise StepFailed(f"guest has {found.group(1)}, its port has {', '.join(sorted(fixed))}")
        return f"guest configured {found.group(1)} by DHCP (its port's address)"

    def _dhcp_seen(self, ports: list[Any]) -> str:
        """What Neutron says of the guest's port and of who serves DHCP on
        its network: where an operator starts when no address came."""
        seen = [f"its port {p.id} {p.status} (bound to {p.binding_host_id or 'no host'}, "
                f"vif {p.binding_vif_type})" for p in ports]
        for net_id in sorted({p.network_id for p in ports}):
            agents = list(self.conn.network.network_hosting_dhcp_agents(net_id))
            seen.append("DHCP agents of its network: " + (", ".join(
                f"{a.host} ({'alive' if a.is_alive else 'dead'})" for a in agents) or "none"))
            seen.extend(f"DHCP port on {p.binding_host_id or 'no host'} {p.status}"
                        for p in self.conn.network.ports(network_id=net_id, device_owner="network:dhcp"))
        return "; ".join(seen) or "the server has no port"

    def metadata(self) -> str:
        if self._server is None:
            raise StepSkipped("no server")
        found = wait_for("metadata answer in the console log", lambda: METADATA_MARK.search(self._console()),
                         self.opts.timeout, interval=5)
        if found.group(1) != self._server.id:
            raise StepFailed(f"metadata gave uuid {found.group(1)}, the server is {self._server.id}")
        return "guest read its own UUID from http://169.254.169.254/openstack/latest/meta_data.json"

    def floating_ip(self) -> str:
        if self._server is None:
            raise StepSkipped("no server")
        ext = self.conn.network.find_network(self.opts.external_network)
        if ext is None:
            raise StepSkipped(f"no external network {self.opts.external_network!r} "
                              "(no floating range in the inventory)")
        port = next(iter(self.conn.network.ports(device_id=self._server.id)))
        fip = self.conn.network.create_ip(floating_network_id=ext.id, port_id=port.id)
        self._cleanup.append(("floating IP", lambda: self.conn.network.delete_ip(fip)))
        started = time.monotonic()
        if not ping(fip.floating_ip_address, self.opts.timeout):
            raise StepFailed(f"{fip.floating_ip_address} did not answer ping within {self.opts.timeout}s")
        self._address = fip.floating_ip_address
        return f"{fip.floating_ip_address} answers ping from this machine after {time.monotonic() - started:.0f}s"

    def ssh(self) -> str:
        if self._server is None or self._keys is None:
            raise StepSkipped("no server")
        if not self._address:
            raise StepSkipped("no floating IP answers")
        address, keys = self._address, self._keys
        ssh_up = wait_for("dropbear started in the guest (console log)", lambda: SSH_MARK.search(self._console()),
                          self.opts.timeout, interval=3)
        if ssh_up.group(1) == "0":
            raise StepFailed("the guest got no SSH key from the metadata service")
        if not keys.pin(address, self._console_log):
            raise StepFailed("the guest printed no host key on its console")
        script = ("ip -4 -o addr show eth0 | awk '{print $4}'; hostname; "
                  "curl http://169.254.169.254/openstack/latest/meta_data.json "
                  "| sed -n 's/.*\"uuid\": *\"\\([0-9a-f-]*\\)\".*/\\1/p'")
        last: list[str] = []

        def login() -> list[str] | None:
            result = keys.run(address, script)
            last[:] = [(result.stderr or result.stdout).strip()]
            lines = result.stdout.split()
            return lines if result.returncode == 0 and len(lines) == 3 else None

        try:
            inside = wait_for(f"SSH to root@{address}", login, min(self.opts.timeout, 120), interval=5)
        except StepFailed as exc:
            raise StepFailed(f"{exc} ({last[0] if last else 'no answer'})") from None
        cidr, hostname, seen_uuid = inside
        fixed = {ip["ip_address"] for p in self.conn.network.ports(device_id=self._server.id) for ip in p.fixed_ips}
        if cidr.split("/")[0] not in fixed:
            raise StepFailed(f"inside, eth0 has {cidr}; the port has {', '.join(sorted(fixed))}")
        if seen_uuid != self._server.id:
            raise StepFailed(f"inside, the metadata service says uuid {seen_uuid}; the server is {self._server.id}")
        if hostname != self._server.name:
            raise StepFailed(f"inside, the host name is {hostname}; the server is {self._server.name}")
        self._ssh = keys
        return (f"root@{address} with the metadata service's key, host key pinned from the console: "
                f"eth0 {cidr}, host name {hostname}, its own UUID from the metadata service")

    def volume(self) -> str:
        if self._server is None:
            raise StepSkipped("no server")
        if not self.conn.has_service("block-storage") and not self.conn.has_service("volumev3"):
            raise StepSkipped("no Block Storage (Cinder) service in the catalog")
        vol = self.conn.block_storage.create_volume(name=f"{self._server.name}-vol", size=1)
        self._cleanup.append(("volume", lambda: self._delete_volume(vol)))
        self.conn.block_storage.wait_for_status(vol, "available", failures=["error"], wait=self.opts.timeout)
        self.conn.compute.create_volume_attachment(self._server, volume_id=vol.id)
        self.conn.block_storage.wait_for_status(vol, "in-use", failures=["error", "error_attaching"],
                                                wait=self.opts.timeout)
        if self._ssh is not None:
            # from inside: the new disk and its size; written, then read back
            address, ssh = self._address, self._ssh
            seen = wait_for("the volume as a disk inside the guest",
                            lambda: (r := ssh.run(address, GUEST_DISKS)).returncode == 0 and r.stdout.split(),
                            self.opts.timeout, interval=3)
            disk, sectors = seen[:2]
            if int(sectors) != 2 * 1024 * 1024:
                raise StepFailed(f"inside, the guest sees {disk} with {sectors} sectors, not 1 GiB")
            echo = ssh.run(address, f"echo stackwright-volume | dd of=/dev/{disk} bs=512 conv=sync,fsync 2>/dev/null"
                                    " && echo 3 > /proc/sys/vm/drop_caches"
                                    f" && dd if=/dev/{disk} bs=19 count=1 2>/dev/null")
            if echo.stdout.strip() != "stackwright-volume":
                raise StepFailed(f"inside, /dev/{disk} did not read back what was written ({echo.stderr.strip()})")
            self._volume = vol
            return f"1 GiB volume {vol.id} attached; inside, the guest writes and reads it back as /dev/{disk}"
        # the guest reports disks that appear after boot: the volume, 1 GiB
        found = wait_for("the volume as a disk in the guest's console log",
                         lambda: DISK_MARK.search(self._console()), self.opts.timeout, interval=3)
        if int(found.group(2)) != 2 * 1024 * 1024:
            raise StepFailed(f"guest sees {found.group(1)} with {found.group(2)} sectors, not 1 GiB")
        return f"1 GiB volume {vol.id} attached; the guest sees it as /dev/{found.group(1)} (console log)"

    def backup(self) -> str:
        """cinder-backup copies the attached volume (what the guest wrote on
        it) and restores the copy to a new volume; attached to the server,
        the new disk holds what the guest wrote."""
        if not self.opts.backup:
            raise StepSkipped("the cloud runs no cinder-backup (cloud.services.cinder_backup)")
        if self._volume is None or self._ssh is None:
            raise StepSkipped("no volume the guest wrote to")
        vol, storage = self._volume, self.conn.block_storage
        started = time.monotonic()
        made = self._backup_of(vol)
        took = time.monotonic() - started
        restored = storage.restore_backup(made, name=f"{vol.name}-restored")
        copy = storage.get_volume(restored.volume_id)
        self._cleanup.append(("restored volume", lambda: self._delete_volume(copy)))
        storage.wait_for_status(copy, "available", failures=["error", "error_restoring"], wait=self.opts.timeout)
        storage.wait_for_status(made, "available", failures=["error"], wait=self.opts.timeout)
        address, ssh = self._address, self._ssh
        disks = set(self._guest_disks())
        self.conn.compute.create_volume_attachment(self._server, volume_id=copy.id)
        storage.wait_for_status(copy, "in-use", failures=["error", "error_attaching"], wait=self.opts.timeout)
        # the guest names a new disk itself (Nova's device name is a hint)
        disk = wait_for("the restored volume as a new disk inside the guest",
                        lambda: next(iter(set(self._guest_disks()) - disks), None), self.opts.timeout, interval=3)
        read = ssh.run(address, f"dd if=/dev/{disk} bs=19 count=1 2>/dev/null")
        seen = read.stdout.strip() or read.stderr.strip()
        if seen != "stackwright-volume":
            raise StepFailed(f"inside, the restored volume /dev/{disk} holds {seen!r}, not what the guest wrote")
        return (f"backup {made.id} of the volume in {took:.0f}s, restored to volume {copy.id}: "
                f"attached as /dev/{disk}, it holds what the guest wrote")

    def _backup_of(self, vol: Any) -> Any:
        """A backup of *vol*, available.  The scheduler places a backup only
        on a cinder-backup that has reported its state to it: the deploy has
        the schedulers ask a new one at once, else its first report comes a
        minute or two after it starts (2 min on the lab).  Until then a
        backup ends in error with "Service not found for creating backup",
        and another is asked for every 30 s (an error backup counts in the
        project's quota of 10 until it is gone)."""
        storage = self.conn.block_storage
        deadline = time.monotonic() + max(self.opts.timeout, BACKUP_SERVICE_REPORT)
        def ended(backup_id: str) -> Any:
            b = storage.get_backup(backup_id)
            return b if b.status in ("available", "error") else None

        while True:
            # force: the volume is in use (Cinder copies a snapshot of it)
            asked = storage.create_backup(volume_id=vol.id, name=f"{vol.name}-backup", force=True)
            self._cleanup.append(("volume backup", partial(self._delete_backup, asked)))
            made = wait_for("the backup", partial(ended, asked.id), self.opts.timeout, interval=3)
            if made.status == "available":
                return made
            if NO_BACKUP_SERVICE not in (made.fail_reason or "") or time.monotonic() > deadline:
                raise StepFailed(f"backup {made.id} ended in error: {made.fail_reason}")
            time.sleep(30)

    def _guest_disks(self) -> list[str]:
        """The guest's disks besides its root disk, as it names them."""
        if self._ssh is None:
            raise StepSkipped("no SSH into the guest")
        listing = self._ssh.run(self._address, GUEST_DISKS)
        if listing.returncode != 0:
            raise StepFailed(f"inside, listing the disks failed: {listing.stderr.strip()}")
        return [line.split()[0] for line in listing.stdout.splitlines() if line.strip()]

    def _delete_backup(self, made: Any) -> None:
        self.conn.block_storage.delete_backup(made)
        wait_for("the backup deleted", lambda: self.conn.block_storage.find_backup(made.id) is None,
                 self.opts.timeout)

    def stack(self) -> str:
        """Heat builds a server with a port, a security group and a floating
        IP from a HOT template; the server answers ping on it."""
        if not self.opts.heat:
            raise StepSkipped("the cloud runs no Heat (cloud.services.heat)")
        name = f"stackwright-verify-{uuid.uuid4().hex[:8]}"
        made = self.conn.orchestration.create_stack(
            name=name, template=STACK_TEMPLATE, timeout_mins=max(1, self.opts.timeout // 60),
            parameters={"image": self.opts.image, "flavor": self.opts.flavor, "network": self.opts.network,
                        "external_network": self.opts.external_network})

        def remove_stack() -> None:
            self.conn.orchestration.delete_stack(made)
            wait_for("the stack deleted", lambda: (st := self.conn.orchestration.find_stack(made.id)) is None
                     or st.status == "DELETE_COMPLETE" or _stack_failed(st), self.opts.timeout)
            left = self.conn.orchestration.find_stack(made.id)
            if left is not None and left.status != "DELETE_COMPLETE":
                raise StepFailed(f"stack {name} is {left.status}: {left.status_reason}")

        self._cleanup.append(("stack", remove_stack))
        done = wait_for("the stack CREATE_COMPLETE",
                        lambda: _stack_failed(st := self.conn.orchestration.get_stack(made.id)) or
                        (st if st.status == "CREATE_COMPLETE" else None), self.opts.timeout)
        if done is True or done.status != "CREATE_COMPLETE":
            st = self.conn.orchestration.get_stack(made.id)
            raise StepFailed(f"stack {name} is {st.status}: {st.status_reason}")
        outputs = {o["output_key"]: o["output_value"] for o in done.outputs or []}
        address = outputs.get("address")
        if not address:
            raise StepFailed(f"stack {name} has no address output: {outputs}")
        if not ping(address, self.opts.timeout):
            raise StepFailed(f"the stack's server does not answer ping on {address}")
        return f"stack {name} CREATE_COMPLETE: its server answers ping on {address}"

    def objects(self) -> str:
        """Swift keeps an object of 1 MiB of random bytes and gives it back
        whole."""
        if not self.conn.has_service("object-store"):
            raise StepSkipped("no Object Storage (Swift) service in the catalog")
        store, name = self.conn.object_store, f"stackwright-verify-{uuid.uuid4().hex[:8]}"
        data = os.urandom(1 << 20)
        store.create_container(name=name)
        self._cleanup.append(("container", lambda: self._delete_container(name)))
        started = time.monotonic()
        store.create_object(name, "object", data=data)
        stored = time.monotonic() - started
        back = store.download_object("object", container=name)
        if hashlib.sha256(back).digest() != hashlib.sha256(data).digest():
            raise StepFailed(f"container {name}: the object came back with {len(back)} bytes that differ")
        return f"1 MiB object stored in container {name} in {stored:.1f}s and read back whole"

    def _delete_container(self, name: str) -> None:
        for obj in list(self.conn.object_store.objects(name)):
            self.conn.object_store.delete_object(obj, container=name)
        self.conn.object_store.delete_container(name)

    def _delete_volume(self, vol: Any) -> None:
        attachments = self.conn.compute.volume_attachments(self._server) if self._server else []
        for att in [a for a in attachments if a.volume_id == vol.id]:
            self.conn.compute.delete_volume_attachment(att, self._server)
            self.conn.block_storage.wait_for_status(vol, "available", wait=self.opts.timeout)
        self.conn.block_storage.delete_volume(vol)

    def cleanup(self) -> str:
        if self.opts.keep:
            raise StepSkipped("--keep: " + ", ".join(what for what, _ in self._cleanup) + " left in place")
        errors = []
        for what, undo in reversed(self._cleanup):
            try:
                undo()
            except Exception as exc:  # report every leftover, go on with the rest
                errors.append(f"{what}: {exc}")
        if errors:
            raise StepFailed("left behind: " + "; ".join(errors))
        return "removed " + ", ".join(what for what, _ in reversed(self._cleanup)) if self._cleanup else "nothing to do"

    def run(self) -> list[Step]:
        up = self.step("services up", self.services)
        self.step("boot a server", self.boot if up else self._not_up)
        # without a server these report "skipped", so every step is listed
        self.step("DHCP address", self.dhcp)
        self.step("metadata service", self.metadata)
        self.step("floating IP answers ping", self.floating_ip)
        self.step("SSH into the guest", self.ssh)
        self.step("volume attached", self.volume)
        self.step("volume backup and restore", self.backup)
        self.step("orchestration stack", self.stack)
        self.step("object storage", self.objects)
        for name, fn in self.more():
            self.step(name, fn)
        self.step("clean up", self.cleanup)
        return self.steps

    def more(self) -> list[tuple[str, Callable[[], str]]]:
        """Steps of a longer run, on the test server, before the clean-up."""
        return []


def table(steps: list[Step]) -> Table:
    t = Table(title="verify summary")
    for col in ("step", "result", "time"):
        t.add_column(col, justify="right" if col == "time" else "left")
    for s in steps:
        t.add_row(s.name, s.result, f"{s.seconds:.1f}s")
    return t
