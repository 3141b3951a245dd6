"""The chassis power of a lab node, as its simulated BMC (:mod:`.bmc`)
asks for it: ``python -m stackwright.lab.chassis LAB_DIR NODE get power``
prints ``power:1`` or ``power:0``; ``... set power 0`` pulls the plug as
`stackwright lab power off` does, ``... set power 1`` boots the node.
Only the nodes of the lab in LAB_DIR are touched."""

from __future__ import annotations

import sys
from pathlib import Path

from ..model import Inventory
from . import Lab, LabError, alive


def chassis(lab_dir: Path, node_name: str, verb: str, what: str, value: str | None) -> str:
    """What the simulator asks: the power state ("power:1"), or to set it."""
    inv = Inventory.model_validate_json((lab_dir / "inventory.json").read_text())
    lab = Lab(inv, log=lambda _msg: None)
    if lab.dir.resolve() != lab_dir.resolve():
        raise LabError(f"{lab_dir} is not the lab of cloud {inv.cloud.name}")
    node = inv.node(node_name)
    if what != "power":
        return ""
    if verb == "get":
        return f"power:{1 if alive(lab.node_dir(node) / 'nspawn.pid') else 0}"
    if value == "0":
        lab.power_off(node)
    elif value == "1":
        lab.start_node(node)
    return ""


if __name__ == "__main__":
    args = sys.argv[1:]
    out = chassis(Path(args[0]), args[1], args[2], args[3], args[4] if len(args) > 4 else None)
    if out:
        print(out)
