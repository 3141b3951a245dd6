"""Run a Stackwright playbook through ansible-runner with live progress and a
per-phase summary.  Secrets reach Ansible as ``-e @FILE`` only: they are never
in the runner's extravars/env files nor in what this module prints."""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .paths import data_dir


@dataclass
class Phase:
    name: str
    started: float
    ended: float | None = None
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started


@dataclass
class Failure:
    host: str
    task: str
    message: str


@dataclass
class RunResult:
    rc: int
    status: str
    phases: list[Phase]
    failures: list[Failure]
    changed_by_host: dict[str, int]
    seconds: float
    artifacts: Path
    # Ansible's own errors (not a host's task): first line and origin only,
    # never the snippet it quotes (that could be a line of the secrets file).
    errors: list[str] = field(default_factory=list)


@dataclass
class _Progress:
    console: Console
    started: float = field(default_factory=time.monotonic)
    phases: list[Phase] = field(default_factory=list)
    task: str = ""
    hosts_done: set[str] = field(default_factory=set)
    hosts_in_play: int = 0
    failures: list[Failure] = field(default_factory=list)
    changed_by_host: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def phase(self, play: str) -> None:
        name = (play.split(":", 1)[0].strip() or play).lower()
        now = time.monotonic()
        if self.phases and self.phases[-1].name == name:
            return
        if self.phases:
            self.phases[-1].ended = now
        self.phases.append(Phase(name, now))

    def line(self) -> Text:
        phase = self.phases[-1].name if self.phases else "starting"
        elapsed = time.monotonic() - self.started
        return Text.assemble(
            (f"[{elapsed:6.0f}s] ", "dim"), (f"{phase:<10} ", "bold cyan"),
            (self.task[:70], ""), (f"  hosts done {len(self.hosts_done)}", "dim"),
        )

    def handle(self, event: dict[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        if kind == "playbook_on_play_start":
            self.phase(data.get("play", ""))
            self.hosts_done = set()
        elif kind == "playbook_on_task_start":
            self.task = data.get("task", "")
        elif kind.startswith("runner_on_") and self.phases:
            current = self.phases[-1]
            host = data.get("host", "?")
            res = data.get("res", {}) or {}
            if kind == "runner_on_ok":
                current.ok += 1
                if res.get("changed"):
                    current.changed += 1
                    self.changed_by_host[host] += 1
                self.hosts_done.add(host)
            elif kind == "runner_on_failed" and not data.get("ignore_errors"):
                current.failed += 1
                self.failures.append(Failure(host, data.get("task", ""), _message(res)))
                self.console.print(f"FAILED on {host}: {data.get('task', '')}: {_message(res)}",
                                   style="bold red", markup=False, highlight=False)
            elif kind == "runner_on_unreachable":
                current.unreachable += 1
                self.failures.append(Failure(host, data.get("task", ""), "unreachable: " + _message(res)))
                self.console.print(f"UNREACHABLE {host}: {_message(res)}", style="bold red", markup=False)
            elif kind == "runner_on_skipped":
                current.skipped += 1
        return True


def _message(res: dict[str, Any]) -> str:
    if res.get("censored"):
        return str(res["censored"])
    for key in ("msg", "stderr", "reason"):
        value = res.get(key)
        if value:
            return str(value).strip().splitlines()[-1][:400]
    return "(no message)"


def mitogen_env() -> dict[str, str]:
    """Ansible settings that run tasks through Mitogen: one Python
    interpreter per host kept for the whole run instead of a module upload
    and a new Python per task.  Opt-in only: it is a third-party strategy
    plugin, and ansible-core deprecates those."""
    import ansible_mitogen

    strategy = Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"
    return {"ANSIBLE_STRATEGY_PLUGINS": str(strategy), "ANSIBLE_STRATEGY": "mitogen_linear"}


def run_playbook(
    playbook: str,
    inventory_dir: Path,
    work: Path,
    console: Console,
    secrets_file: Path | None = None,
    vault_password_file: Path | None = None,
    private_key: Path | None = None,
    known_hosts: Path | None = None,
    extravars: dict[str, Any] | None = None,
    limit: str | None = None,
    tags: str | None = None,
    skip_tags: str | None = None,
    mitogen: bool = False,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    data = data_dir()
    runner_dir = work / "runner"
    runner_dir.mkdir(parents=True, exist_ok=True)
    # Ansible's programs live beside this Python (a venv need not be activated)
    bindir = str(Path(sys.executable).parent)
    envvars = {
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
        "ANSIBLE_CONFIG": str(data / "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": str(data / "roles"),
        "ANSIBLE_FILTER_PLUGINS": str(data / "plugins" / "filter"),
        "ANSIBLE_LIBRARY": str(data / "plugins" / "modules"),
        "ANSIBLE_MODULE_UTILS": str(data / "plugins" / "module_utils"),
        "ANSIBLE_DOC_FRAGMENT_PLUGINS": str(data / "plugins" / "doc_fragments"),
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(work / "facts"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
    }
    if mitogen:
        envvars.update(mitogen_env())
    if private_key:
        envvars["ANSIBLE_PRIVATE_KEY_FILE"] = str(private_key)
    if known_hosts:
        envvars["ANSIBLE_SSH_COMMON_ARGS"] = f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes"
    cmdline = []
    if secrets_file:
        cmdline.append(f"-e @{secrets_file}")
    if vault_password_file:
        cmdline.append(f"--vault-password-file {vault_password_file}")
    progress = _Progress(console)
    with Live(progress.line(), console=console, refresh_per_second=4, transient=True) as live:

        def handle_event(event: dict[str, Any]) -> bool:
            progress.handle(event)
            if on_event:
                on_event(event)
            live.update(progress.line())
            return True

        result = ansible_runner.run(
            private_data_dir=str(runner_dir),
            project_dir=str(data / "playbooks"),
            playbook=str(data / "playbooks" / playbook),
            inventory=str(inventory_dir),
            envvars=envvars,
            extravars=extravars or {},
            cmdline=" ".join(cmdline) or None,
            limit=limit,
            tags=tags,
            skip_tags=skip_tags,
            event_handler=handle_event,
            quiet=True,
            suppress_env_files=True,
            rotate_artifacts=5,
        )
    if progress.phases:
        progress.phases[-1].ended = time.monotonic()
    artifacts = Path(result.config.artifact_dir) if getattr(result, "config", None) else runner_dir
    return RunResult(
        rc=result.rc, status=result.status, phases=progress.phases, failures=progress.failures,
        changed_by_host=dict(progress.changed_by_host), seconds=time.monotonic() - progress.started,
        artifacts=artifacts, errors=_ansible_errors(artifacts / "stdout") if result.rc else [],
    )


def _ansible_errors(stdout: Path) -> list[str]:
    try:
        lines = stdout.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [ln.strip() for ln in lines if ln.startswith(("[ERROR]", "ERROR!", "Origin:"))][:6]


def summary_table(result: RunResult) -> Table:
    table = Table(title="deploy summary")
    for col in ("phase", "ok", "changed", "failed", "time"):
        table.add_column(col, justify="left" if col == "phase" else "right")
    for p in result.phases:
        table.add_row(p.name, str(p.ok), str(p.changed), str(p.failed + p.unreachable), f"{p.seconds:.0f}s")
    total_changed = sum(p.changed for p in result.phases)
    table.add_row("total", str(sum(p.ok for p in result.phases)), str(total_changed),
                  str(sum(p.failed + p.unreachable for p in result.phases)), f"{result.seconds:.0f}s",
                  style="bold")
    return table
