"""The lab's BMCs: a lab node whose inventory entry has a fence device gets
one, so that fencing in the lab runs the same agent (fence_ipmilan), the
same protocol and the same password check as on real servers.

Each is an OpenIPMI simulator (``ipmi_sim``, Debian's openipmi) answering
IPMI 2.0 on the lab host's address on the management network, at the
node's fence port, for the node's fence user only.  Its chassis power is the
node itself: "off" kills the node's init as `stackwright lab power off`
does, "on" boots it; the simulator asks this module (``python -m
stackwright.lab.chassis LAB_DIR NODE get|set power [0|1]``) and it touches
this lab's own node processes only.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..model import Inventory, Node
from .host import LabError, alive, stop
from .wiring import host_address

if TYPE_CHECKING:
    from . import Lab

# One management controller at the BMC address 0x20, no sensors: what a
# chassis power control needs (ipmi_sim_cmd(5)).
EMU = """\
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
"""


def fenced(inv: Inventory) -> list[Node]:
    return [n for n in inv.nodes if n.fence is not None]


def problems(inv: Inventory) -> list[str]:
    """Why the lab cannot serve the inventory's fence devices."""
    mgmt = inv.networks_with_role("management")[0].name
    here = host_address(inv, mgmt)
    return [f"node {n.name}: fence address {n.fence.address} is not the lab host's management address {here}, "
            f"where the lab's BMCs answer" for n in fenced(inv) if n.fence and n.fence.address != here]


def _lan_conf(lab: Lab, node: Node, password: str) -> str:
    fence = node.fence
    if fence is None:
        raise LabError(f"node {node.name} has no fence device")
    control = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "stackwright.lab.chassis", str(lab.dir),
                                                 node.name))
    # user 1 (anonymous) is left out: nobody gets in without the password;
    # md5 challenge for IPMI 1.5, RMCP+ (cipher suite 3) for IPMI 2.0
    return f"""\
name "{node.name}"
set_working_mc 0x20
  startlan 1
    addr {fence.address} {fence.port}
    priv_limit admin
    allowed_auths_callback none
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid {node.name.encode().hex()[:32].ljust(32, "0")}
  endlan
  chassis_control "{control}"
  user 2 true "{fence.username}" "{password}" admin 10 md5
"""


def _dir(lab: Lab, node: Node) -> Path:
    return lab.node_dir(node) / "bmc"


def start(lab: Lab, passwords: dict[str, str]) -> None:
    """Start (or restart, when its settings changed) each fenced node's BMC."""
    (lab.dir / "inventory.json").write_text(lab.inv.model_dump_json())
    for node in fenced(lab.inv):
        where = _dir(lab, node)
        (where / "state").mkdir(parents=True, exist_ok=True)
        conf, pidfile = where / "lan.conf", where / "pid"
        text = _lan_conf(lab, node, passwords[node.name])
        if alive(pidfile) and conf.exists() and conf.read_text() == text:
            continue
        stop(pidfile, timeout=5)
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the password
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        (where / "sim.emu").write_text(EMU)
        # the simulator runs the chassis control through this Python, with
        # this copy of Stackwright importable
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        with open(where / "ipmi_sim.log", "ab") as log:
            proc = subprocess.Popen(["ipmi_sim", "-n", "-c", str(conf), "-f", str(where / "sim.emu"),
                                     "-s", str(where / "state")], cwd=where, env=env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        pidfile.write_text(f"{proc.pid}\n")
        lab.log(f"node {node.name}: BMC (IPMI) on {node.fence.address}:{node.fence.port}")  # type: ignore[union-attr]


def stop_all(lab: Lab) -> None:
    for node in lab.inv.nodes:
        stop(_dir(lab, node) / "pid", timeout=5)
