"""Problems found in an inventory, and how they are shown to the operator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(top level)"


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str
    fix: str = ""
    severity: Literal["error", "warning"] = "error"
    line: int | None = field(default=None, compare=False)
    # what the inventory asks for is valid but not deployable yet (the
    # service catalog says so): an error, except for `--preview` renders
    not_yet: bool = field(default=False, compare=False)

    def render(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        text = f"{where}: {self.severity}: {format_path(self.path)}: {self.message}"
        if self.fix:
            text += f"\n    fix: {self.fix}"
        return text


class InventoryError(Exception):
    """Raised when an inventory cannot be used; carries every problem found."""

    def __init__(self, filename: str, problems: list[Problem]):
        self.filename = filename
        self.problems = problems
        super().__init__(f"{filename}: {len(problems)} problem(s)")

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]
