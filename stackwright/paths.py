"""Where the project's data (roles, playbooks, templates) and state live."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir() -> Path:
    """roles/, playbooks/, templates/: inside an installed wheel, or the source
    tree when run from a checkout (``STACKWRIGHT_DATA`` overrides both)."""
    override = os.environ.get("STACKWRIGHT_DATA")
    if override:
        return Path(override)
    packaged = _PACKAGE / "data"
    if (packaged / "playbooks").is_dir():
        return packaged
    return _PACKAGE.parent


def state_dir() -> Path:
    """Host-wide state of the lab (base image, nodes, keys)."""
    return Path(os.environ.get("STACKWRIGHT_STATE", "/var/lib/stackwright"))


def work_dir(inventory: Path, cloud: str) -> Path:
    """Per-cloud working directory next to the inventory (rendered inventory,
    run artifacts).  Never inside the user's own files."""
    return inventory.resolve().parent / ".stackwright" / cloud


def secrets_file(inventory: Path) -> Path:
    return inventory.resolve().parent / f"{inventory.stem}.secrets.yml"
