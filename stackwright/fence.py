"""A node's power, through the fence device the inventory gives it.

Fencing makes sure a node is off before anything is done that would be
unsafe while it runs - evacuating its servers starts them elsewhere from the
same disks.  The agents are ClusterLabs' own (Debian's fence-agents), run on
the deploying machine, the same ones pacemaker uses: fence_ipmilan speaks
IPMI 2.0 (lanplus) to the node's BMC.  The BMC password goes to the agent
on its standard input, so that no process listing shows it.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from .model import Inventory, Node
from .secrets import fence_key

Action = Literal["status", "on", "off"]
PACKAGES = "fence-agents ipmitool"


class FenceError(Exception):
    """The node's power could not be read or set: the message says why."""


def device(inv: Inventory, name: str) -> Node:
    """The node, or FenceError when the inventory gives it no fence device."""
    node = next((n for n in inv.nodes if n.name == name), None)
    if node is None:
        raise FenceError(f"no node {name!r} in cloud {inv.cloud.name}")
    if node.fence is None:
        i = inv.nodes.index(node)
        raise FenceError(f"{name} has no fence device (nodes[{i}].fence in the inventory): Stackwright cannot make "
                         f"sure it is off")
    return node


def _agent(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if path is None:
        raise FenceError(f"{name} is not installed on this machine (apt-get install {PACKAGES})")
    return path


def power(inv: Inventory, name: str, secrets: dict[str, Any], action: Action, timeout: float = 120) -> str:
    """Run *action* on the node's power; return its state afterwards, "on"
    or "off".  "off" returns once the BMC reports the power off."""
    fence = device(inv, name).fence
    if fence is None:  # device() refused that already; for the type checker
        raise FenceError(f"{name} has no fence device")
    password = secrets.get(fence_key(name))
    if not password:
        raise FenceError(f"the secrets file has no {fence_key(name)} (the password of {name}'s BMC)")
    options = {"ip": fence.address, "ipport": fence.port, "username": fence.username, "password": password,
               "lanplus": 1, "cipher": fence.cipher, "action": action}
    try:
        done = subprocess.run([_agent(f"fence_{fence.agent}")], input="".join(f"{k}={v}\n" for k, v in options.items()),
                              capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise FenceError(f"{name}'s BMC at {fence.address}:{fence.port} did not answer within {timeout:.0f} s") \
            from None
    if action == "status" and done.returncode in (0, 2):  # the agents' convention: 0 on, 2 off
        return "on" if done.returncode == 0 else "off"
    if done.returncode == 0:
        return action
    lines = [ln for ln in (done.stderr + done.stdout).replace(str(password), "***").splitlines()
             if ln.strip() and "DeprecationWarning" not in ln and "from pipes import" not in ln]
    raise FenceError(f"{name}'s BMC at {fence.address}:{fence.port}: {action} failed: "
                     f"{lines[-1] if lines else f'exit {done.returncode}'}")


def control(inv: Inventory, name: str, secrets: dict[str, Any]) -> Callable[[str], str]:
    """The node's fence device as the day-2 logic (migrate.evacuate and
    enable) calls it: an agent's error becomes a refusal."""
    from .migrate import Refused

    def power_of(action: str) -> str:
        try:
            return power(inv, name, secrets, action)  # type: ignore[arg-type]
        except FenceError as exc:
            raise Refused(str(exc)) from None
    return power_of
