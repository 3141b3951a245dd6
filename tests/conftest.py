from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
INVENTORIES = REPO / "inventories"


@pytest.fixture
def write_inventory(tmp_path: Path):
    """Write YAML text (dedented) into a file and return its path."""

    def _write(text: str, name: str = "inventory.yml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return _write
