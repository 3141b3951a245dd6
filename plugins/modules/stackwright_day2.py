#!/usr/bin/python
"""The day-2 moves of `stackwright server migrate` and `stackwright node
drain|evacuate|enable` (and what `node remove` deletes from the APIs) as an
Ansible module, for playbooks/server-migrate.yml
and playbooks/node-*.yml (an operator's AWX or cron runs those).  It runs
on the deploying machine with the Python that has Stackwright (the
playbooks set ansible_python_interpreter to ansible_playbook_python) and
calls the very functions the CLI calls (stackwright.migrate, its pre-checks
and refusals), with the inventory and secrets file the CLI reads."""

from __future__ import annotations

DOCUMENTATION = r"""
module: stackwright_day2
short_description: Migrate a server; drain, evacuate, enable or forget a compute node
description:
  - The same pre-checks, moves and refusals as the stackwright CLI commands.
  - Progress lines are returned in C(progress) (a module cannot print while it runs).
options:
  inventory:
    description: The Stackwright inventory file of the cloud (its secrets file lies beside it).
    type: path
    required: true
  vault_password_file:
    description: Password file of an ansible-vault encrypted secrets file.
    type: path
  action:
    description: What to do.
    type: str
    required: true
    choices: [migrate, drain, evacuate, enable, forget]
  server:
    description: The server to migrate (name or ID), with action=migrate.
    type: str
  node:
    description: The compute node to drain, evacuate, enable, or forget (node remove - its agents and compute
      service deleted from the APIs).
    type: str
  live:
    description: With action=migrate, live migration (the guest keeps running).
    type: bool
    default: false
  to:
    description: With action=migrate, the target node (default - Nova's scheduler picks).
    type: str
  fence:
    description: With action=evacuate, power the node off through its BMC first when it is on.
    type: bool
    default: false
  confirm_powered_off:
    description: With action=evacuate, the operator made sure the node is off (no fence device asked).
    type: bool
    default: false
  timeout:
    description: Seconds a move (or all rebuilds of an evacuation) may take.
    type: int
    default: 900
"""

RETURN = r"""
result:
  description: What the CLI's --format json prints - the move, or one row per server.
  type: raw
  returned: success
progress:
  description: The progress lines, with the time of each.
  type: list
  elements: str
  returned: always
"""

import time
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule

SPEC: dict[str, Any] = {
    "inventory": {"type": "path", "required": True},
    "vault_password_file": {"type": "path", "no_log": False},
    "action": {"type": "str", "required": True, "choices": ["migrate", "drain", "evacuate", "enable", "forget"]},
    "server": {"type": "str"},
    "node": {"type": "str"},
    "live": {"type": "bool", "default": False},
    "to": {"type": "str"},
    "fence": {"type": "bool", "default": False},
    "confirm_powered_off": {"type": "bool", "default": False},
    "timeout": {"type": "int", "default": 900},
}


def _act(p: dict[str, Any], conn: Any, inv: Any, secrets: dict[str, Any], say: Any) -> tuple[bool, Any, str]:
    """(changed, result, failure message or "")."""
    from stackwright import fence, migrate

    if p["action"] == "migrate":
        moved = migrate.run(conn, migrate.check(conn, inv, p["server"], p["live"], p["to"]), say, p["timeout"])
        return True, moved, ""
    node = p["node"]
    if p["action"] == "forget":
        from stackwright import membership

        done = membership.forget(conn, node, say)
        return bool(done), done, ""
    if p["action"] == "drain":
        rows = migrate.drain(conn, inv, node, say, p["timeout"])
        left = [r["server"] for r in rows if r["result"] != "moved"]
        return True, rows, f"{node}: {', '.join(left)} stayed" if left else ""
    fenced = any(n.name == node and n.fence is not None for n in inv.nodes)
    device = fence.control(inv, node, secrets) if fenced and not p["confirm_powered_off"] else None
    if p["action"] == "evacuate":
        if device is None and not p["confirm_powered_off"]:
            return False, None, (f"{node} has no fence device in the inventory: power it off yourself and set "
                                 "confirm_powered_off")
        rows = migrate.evacuate(conn, inv, node, device, p["fence"], say, p["timeout"])
        left = [r["server"] for r in rows if r["result"] != "evacuated"]
        return True, rows, f"{node}: {', '.join(left)} not evacuated" if left else ""
    done = migrate.enable(conn, inv, node, device, say, p["timeout"])
    return bool(done), done, ""


def main() -> None:
    module = AnsibleModule(argument_spec=SPEC, required_if=[("action", "migrate", ["server"]),
                                                            ("action", "drain", ["node"]),
                                                            ("action", "evacuate", ["node"]),
                                                            ("action", "enable", ["node"]),
                                                            ("action", "forget", ["node"])])
    p = module.params
    progress: list[str] = []
    if p["fence"] and p["confirm_powered_off"]:
        module.fail_json(msg="fence and confirm_powered_off exclude each other", progress=progress)
    try:
        from stackwright import credentials, migrate
        from stackwright import secrets as secrets_mod
        from stackwright.loader import load
        from stackwright.paths import secrets_file
        from stackwright.problems import InventoryError
    except ImportError:
        module.fail_json(msg="stackwright is not importable: run the playbook with the ansible-playbook of "
                             "Stackwright's virtualenv", progress=progress)
    try:
        inv = load(Path(p["inventory"]))
        secrets = secrets_mod.read(secrets_file(Path(p["inventory"])),
                                   Path(p["vault_password_file"]) if p["vault_password_file"] else None)
    except InventoryError as exc:
        module.fail_json(msg="; ".join(f"{exc.filename}: {q.message}" for q in exc.problems), progress=progress)
    _cloud, conn = credentials.connect(inv, secrets["keystone_admin_password"], Path(p["inventory"]))
    conn.compute.default_microversion = migrate.MICROVERSION

    def say(msg: str) -> None:
        progress.append(f"[{time.strftime('%H:%M:%S')}] {msg}")

    try:
        changed, result, failure = _act(p, conn, inv, secrets, say)
    except migrate.Refused as exc:
        module.fail_json(msg=str(exc), progress=progress)
    if failure:
        module.fail_json(msg=failure, result=result, progress=progress, changed=changed)
    module.exit_json(changed=changed, result=result, progress=progress)


if __name__ == "__main__":
    main()
