#!/usr/bin/python
"""Report the state of what a deploy left on a node, cheaply, in one call:
each path's type, mode, owner and content digest, each unit's active and
enabled state, and a digest of the installed packages with their versions.

``stackwright deploy`` compares two such reports to tell which phases have
nothing to do (see stackwright/fastpath.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: stackwright_probe
short_description: Digest of files, systemd units and installed packages
description:
  - Reads only; never changes the node.
options:
  paths:
    description: Paths to report (files, directories, symlinks; absent ones too).
    type: list
    elements: str
    default: []
  units:
    description: systemd units to report.
    type: list
    elements: str
    default: []
"""

import hashlib
import os
import stat
import subprocess

from ansible.module_utils.basic import AnsibleModule


def path_state(path: str) -> str:
    """One line that changes whenever the path's type, mode, owner or
    content (a symlink's target) changes; a directory's entries are not
    part of it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        return f"error {exc.errno}"
    if stat.S_ISREG(st.st_mode):
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                digest.update(block)
        content = digest.hexdigest()
    elif stat.S_ISLNK(st.st_mode):
        content = "-> " + os.readlink(path)
    else:
        content = ""
    return f"{stat.filemode(st.st_mode)} {st.st_uid}:{st.st_gid} {content}".rstrip()


def _lines(cmd: list[str], count: int) -> list[str]:
    # systemctl exits non-zero when any unit is not active/enabled, but
    # still prints one line per unit
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.splitlines()
    return out if len(out) == count else ["unknown"] * count


def unit_states(units: list[str]) -> dict[str, str]:
    if not units:
        return {}
    active = _lines(["systemctl", "is-active", "--", *units], len(units))
    enabled = _lines(["systemctl", "is-enabled", "--", *units], len(units))
    return {u: f"{a} {e}" for u, a, e in zip(units, active, enabled, strict=True)}


def packages_digest() -> str:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${binary:Package} ${Version} ${db:Status-Abbrev}\n"],
        capture_output=True, text=True, check=True,
    ).stdout
    return hashlib.sha256("\n".join(sorted(out.splitlines())).encode()).hexdigest()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "str", "default": []},
            "units": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    paths = sorted(set(module.params["paths"]))
    units = sorted(set(module.params["units"]))
    module.exit_json(
        changed=False,
        paths={p: path_state(p) for p in paths},
        units=unit_states(units),
        packages=packages_digest(),
    )


if __name__ == "__main__":
    main()
