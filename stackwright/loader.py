"""Reading an inventory file: YAML with line numbers, typed by the model,
then checked by the semantic rules.  Every problem is collected; nothing here
raises anything but :class:`InventoryError`."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path as FsPath
from typing import Any

import pydantic
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .checks import check
from .model import Inventory
from .problems import InventoryError, Path, Problem

MAX_BYTES = 16 * 1024 * 1024


def load(path: str | FsPath, preview: bool = False) -> Inventory:
    """Load and check an inventory; raise InventoryError with every error.

    Warnings alone do not stop loading; they are attached to the result of
    :func:`load_with_warnings`.  With *preview*, what the service catalog
    cannot deploy yet is a warning instead of an error (render and lab for
    role development; deploy never previews).
    """
    inventory, _ = load_with_warnings(path, preview)
    return inventory


def load_with_warnings(path: str | FsPath, preview: bool = False) -> tuple[Inventory, list[Problem]]:
    """Fast path: YAML through the C parser, no line bookkeeping.  Only when
    something is wrong is the file parsed again, round-trip, to find the
    line of each problem."""
    filename = str(path)
    data = _read_yaml(filename, fast=True)
    try:
        inventory = Inventory.model_validate(data, context={"base": FsPath(filename).resolve().parent})
    except pydantic.ValidationError as exc:
        raw = _read_yaml(filename)
        raise InventoryError(filename, _from_pydantic(exc, raw)) from None
    problems = check(inventory)
    if preview:
        problems = [dataclasses.replace(p, severity="warning") if p.not_yet else p for p in problems]
    if problems:
        raw = _read_yaml(filename)
        problems = [_with_line(p, raw) for p in problems]
    if any(p.severity == "error" for p in problems):
        raise InventoryError(filename, problems)
    return inventory, problems


# -- YAML -------------------------------------------------------------------


def _fail(filename: str, message: str, fix: str = "", line: int | None = None) -> InventoryError:
    return InventoryError(filename, [Problem((), message, fix, line=line)])


def _read_text(filename: str) -> str:
    fs = FsPath(filename)
    if not fs.exists():
        raise _fail(filename, "file not found", "check the path; `stackwright init` writes a starting inventory")
    if fs.is_dir():
        raise _fail(filename, "is a directory, not an inventory file", "name the YAML file inside it")
    try:
        size = fs.stat().st_size
        if size > MAX_BYTES:
            raise _fail(filename, f"file is {size} bytes; inventories are limited to {MAX_BYTES}")
        return fs.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(filename, f"not UTF-8 text ({exc.reason} at byte {exc.start})", "save the file as UTF-8") from None
    except OSError as exc:
        raise _fail(filename, f"cannot read: {exc.strerror}") from None


def _read_yaml(filename: str, fast: bool = False) -> Any:
    text = _read_text(filename)
    yaml = YAML(typ="safe") if fast else YAML(typ="rt")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = (exc.problem or exc.context or "invalid YAML").strip()
        if "duplicate key" in what or "found duplicate key" in str(exc):
            what = f"duplicate key: {what}"
        raise _fail(filename, f"YAML syntax error: {what}", "fix the YAML at this line",
                    mark.line + 1 if mark else None) from None
    except YAMLError as exc:
        raise _fail(filename, f"YAML syntax error: {exc}") from None
    except RecursionError:
        raise _fail(filename, "YAML nested too deeply") from None
    if not isinstance(data, dict):
        raise _fail(filename, "the file is empty" if data is None else
                    f"the top level must be a mapping, not a {type(data).__name__}",
                    "an inventory needs `cloud:`, `networks:` and `nodes:`")
    return data


def _line_of(raw: Any, path: Path) -> int | None:
    """1-based line of the deepest part of *path* present in the YAML."""
    line = None
    node = raw
    for part in path:
        try:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        except (KeyError, IndexError, TypeError, AttributeError):
            break
    return line


def _with_line(problem: Problem, raw: Any) -> Problem:
    return dataclasses.replace(problem, line=_line_of(raw, problem.path))


# -- pydantic errors to problems --------------------------------------------


def _unwrap(tp: Any) -> Any:
    """Strip Annotated/Optional/list/dict down to the element type."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0]
        elif origin in (list, tuple):
            tp = typing.get_args(tp)[0]
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        else:
            return tp


def _model_at(path: Path) -> type[pydantic.BaseModel] | None:
    model: Any = Inventory
    for part in path:
        if isinstance(part, int) or model is None:
            continue
        if isinstance(model, type) and issubclass(model, pydantic.BaseModel):
            field = model.model_fields.get(str(part))
            if field is None:
                # a dict key (e.g. a network name under node.networks)
                continue
            model = _unwrap(field.annotation)
    return model if isinstance(model, type) and issubclass(model, pydantic.BaseModel) else None


def _describe(value: Any) -> str:
    text = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _from_pydantic(exc: pydantic.ValidationError, raw: Any) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[Path] = set()
    for err in exc.errors(include_url=False):
        path: Path = tuple(err["loc"])
        if path in seen:
            continue
        seen.add(path)
        message, fix = _explain(err, path)
        problems.append(Problem(path, message, fix, line=_line_of(raw, path)))
    return problems


_SHAPE_ERRORS = ("too_short", "list_type", "dict_type", "model_type", "model_attributes_type")
_NUMBER_ERRORS = ("greater_than_equal", "less_than_equal", "int_parsing", "int_type", "int_from_float")
_FIXED = {  # error type -> (message, fix) for the value shown
    "ip_v4_address": ("{value} is not a valid IPv4 address", "write a dotted address such as 192.0.2.10"),
    "ip_v4_network": ("{value} is not a valid IPv4 network",
                      "write the network address with its prefix length, such as 192.0.2.0/24 (no host bits set)"),
}


def _explain(err: Any, path: Path) -> tuple[str, str]:
    """(message, fix) of one pydantic error, in the operator's words."""
    kind, value = err["type"], err.get("input")
    if kind == "missing":
        return "required field is missing", f"add `{path[-1]}:`"
    if kind == "extra_forbidden":
        return _unknown_key(path)
    if kind == "literal_error":
        return _not_allowed(value, str(err.get("ctx", {}).get("expected", "")))
    if kind == "grammar":  # the model's grammar of free-text fields says what is wrong
        return f"{_describe(value)} {err['msg']}", str(err.get("ctx", {}).get("fix", ""))
    if kind in _FIXED:
        message, fix = _FIXED[kind]
        return message.format(value=_describe(value)), fix
    if kind == "string_pattern_mismatch":
        return f"{_describe(value)} is not a valid name here", _pattern_hint(str(err.get("ctx", {}).get("pattern", "")))
    if kind in _SHAPE_ERRORS:
        fix = "list at least one entry" if kind == "too_short" else "check the indentation and the type of this value"
        return err["msg"].replace("Input", "value"), fix
    if kind in _NUMBER_ERRORS:
        return f"{_describe(value)}: {err['msg'].lower()}", ""
    return f"{_describe(value)}: {err['msg']}", ""


def _unknown_key(path: Path) -> tuple[str, str]:
    model = _model_at(path[:-1])
    allowed = sorted(model.model_fields) if model else []
    close = difflib.get_close_matches(str(path[-1]), allowed, n=1, cutoff=0.6)
    fix = f"did you mean {close[0]!r}?" if close else ("allowed keys here: " + ", ".join(allowed) if allowed else "")
    return f"unknown key {str(path[-1])!r}", fix


def _not_allowed(value: Any, expected: str) -> tuple[str, str]:
    choices = [e.strip(" '") for e in expected.replace(" or ", ",").split(",")]
    close = difflib.get_close_matches(str(value), choices, n=1)
    fix = f"did you mean {close[0]!r}? (allowed: {expected})" if close else f"use one of {expected}"
    return f"{_describe(value)} is not allowed", fix


def _pattern_hint(pattern: str) -> str:
    if "61" in pattern:
        return "use lower-case letters, digits and '-' (a DNS host name label, at most 63 characters)"
    if "{0,14}" in pattern:
        return "use a Linux interface name: a letter, then letters, digits, '.', '_' or '-' (at most 15 characters)"
    if "[0-9a-fA-F]{2}" in pattern:
        return "write a MAC address as six hex pairs, such as 52:54:00:12:34:56"
    return "start with a lower-case letter; use lower-case letters, digits, '_' and '-' (at most 31 characters)"


def load_problems(path: str | FsPath) -> tuple[Inventory | None, list[Problem]]:
    """Like load_with_warnings, but returns problems instead of raising."""
    try:
        inventory, warnings = load_with_warnings(path)
        return inventory, warnings
    except InventoryError as exc:
        return None, exc.problems
