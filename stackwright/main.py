"""The `stackwright` command: a thin layer over the model, the renderer, the
lab and the Ansible runner."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from . import __version__
from . import secrets as secrets_mod
from .loader import load, load_problems
from .model import Inventory
from .paths import secrets_file
from .problems import InventoryError, Problem
from .render import render as render_inventory

EXIT_INVALID = 2


@dataclass
class App:
    console: Console
    err: Console
    debug: bool
    # --preview: what the service catalog cannot deploy yet is a warning,
    # so an inventory for work in progress (a role's cluster scenario) can
    # be rendered and its lab built; deploy and verify refuse it
    preview: bool = False


class StackwrightError(click.ClickException):
    """A failure the operator can act on; printed without a traceback."""


F = TypeVar("F", bound=Callable[..., Any])


def inventory_argument(f: F) -> F:
    """The INVENTORY argument shared by every command."""
    return click.argument(
        "inventory", type=click.Path(path_type=Path, dir_okay=True, exists=False), metavar="INVENTORY"
    )(f)


vault_password_option = click.option(
    "--vault-password-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
    envvar="STACKWRIGHT_VAULT_PASSWORD_FILE", help="Password file of a vault-encrypted secrets file.")


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.severity != "error", p.line or 0))


def report_problems(app: App, filename: str, problems: list[Problem]) -> None:
    for p in _sorted(problems):
        style = "red" if p.severity == "error" else "yellow"
        app.err.print(p.render(filename), style=style, markup=False, highlight=False)


def load_or_exit(app: App, path: Path, deploying: bool = False) -> Inventory:
    """The inventory, or every problem reported and exit 2.  *deploying*
    commands never preview."""
    if deploying and app.preview:
        raise StackwrightError("--preview is for render, plan and lab only: Stackwright does not deploy what its "
                               "service catalog cannot deploy yet")
    try:
        return load(path, preview=app.preview)
    except InventoryError as exc:
        report_problems(app, exc.filename, exc.problems)
        n = len(exc.errors)
        app.err.print(f"{exc.filename}: {n} error(s); nothing was changed on any host", style="bold red")
        sys.exit(EXIT_INVALID)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stackwright")
@click.option("--debug", is_flag=True, envvar="STACKWRIGHT_DEBUG", help="Show tracebacks of internal errors.")
@click.option("--preview", is_flag=True, envvar="STACKWRIGHT_PREVIEW",
              help="Accept what is not deployable yet, as a warning (render, plan and lab only; for role "
                   "development, such as molecule's cluster scenarios).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, preview: bool) -> None:
    """Deploy and operate OpenStack (Debian 12, Zed) from one node inventory."""
    ctx.obj = App(console=Console(soft_wrap=True), err=Console(stderr=True, soft_wrap=True), debug=debug,
                  preview=preview)


@cli.command()
@inventory_argument
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_obj
def validate(app: App, inventory: Path, fmt: str) -> None:
    """Check INVENTORY and report every problem at once (contacts no host)."""
    inv, problems = load_problems(inventory)
    if fmt == "json":
        import json

        click.echo(json.dumps(
            {
                "file": str(inventory),
                "valid": inv is not None,
                "problems": [
                    {"line": p.line, "path": list(p.path), "severity": p.severity, "message": p.message, "fix": p.fix}
                    for p in _sorted(problems)
                ],
            },
            indent=2,
        ))
    else:
        report_problems(app, str(inventory), problems)
    if inv is None:
        if fmt == "text":
            n = sum(p.severity == "error" for p in problems)
            app.err.print(f"{inventory}: {n} error(s)", style="bold red")
        sys.exit(EXIT_INVALID)
    if fmt == "text":
        warnings = len(problems)
        app.console.print(
            f"{inventory}: valid - cloud {inv.cloud.name!r}, {len(inv.nodes)} node(s), "
            f"{len(inv.networks)} network(s)" + (f", {warnings} warning(s)" if warnings else ""),
            style="green",
        )


@cli.command()
@inventory_argument
@click.option("-o", "--output", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Directory to write the Ansible inventory into.")
@click.option("--lab", is_flag=True,
              help="As the built-in lab builds it: userspace OVS datapath, bonds and VLANs through OVS, "
                   "no default route, dpkg without fsync.")
@click.pass_obj
def render(app: App, inventory: Path, output: Path, lab: bool) -> None:
    """Write INVENTORY as a standard Ansible inventory (hosts.yml, group_vars, host_vars)."""
    inv = load_or_exit(app, inventory)
    if lab:
        from .lab import adapt

        inv = adapt(inv)
    written = render_inventory(inv, output)
    app.console.print(f"rendered {inventory} into {output}/ ({len(written)} file(s) changed)")


private_key_option = click.option(
    "--private-key", type=click.Path(path_type=Path, dir_okay=False, exists=True), envvar="STACKWRIGHT_PRIVATE_KEY",
    help="SSH key Ansible uses (default: the lab's key when INVENTORY's lab is up, else your SSH setup).")


def node_access(inv: Inventory, private_key: Path | None) -> tuple[Path | None, Path | None]:
    """The SSH key and known-hosts file Ansible reaches the nodes with: the
    operator's key (and SSH setup), else the lab's when the lab is up."""
    from .lab import Lab

    lab = Lab(inv)
    if private_key is None and lab.is_up():
        return lab.key, lab.known_hosts
    return private_key, None


@contextlib.contextmanager
def cloud_locked(inventory: Path, inv: Inventory) -> Iterator[None]:
    """The cloud's run lock (stackwright/lock.py) for the block: another run
    that holds it is an error naming that run."""
    from . import lock
    from .paths import work_dir

    try:
        with lock.held(work_dir(inventory, inv.cloud.name), inv.cloud.name):
            yield
    except lock.Locked as exc:
        raise StackwrightError(str(exc)) from None


def day2_playbook(app: App, inv: Inventory, inventory: Path, playbook: str, private_key: Path | None,
                  console: Console | None = None, locked: bool = True, **kwargs: Any) -> Any:
    """Run a day-2 playbook against the inventory the last deploy rendered
    (refused before any deploy), as the deploy reaches the nodes; its
    runner files go to a folder named after the playbook.  Under the
    cloud's run lock unless *locked* is False (a playbook that only reads)."""
    from .paths import work_dir
    from .runner import run_playbook

    work = work_dir(inventory, inv.cloud.name)
    if not (work / "inventory" / "hosts.yml").exists():
        raise StackwrightError(f"{playbook}: no rendered inventory in {work}: deploy the cloud first")
    private_key, known_hosts = node_access(inv, private_key)
    with cloud_locked(inventory, inv) if locked else contextlib.nullcontext():
        return run_playbook(playbook, inventory_dir=work / "inventory", work=work / Path(playbook).stem,
                            console=console or app.console, private_key=private_key, known_hosts=known_hosts,
                            **kwargs)


def day2_checked(app: App, inv: Inventory, inventory: Path, playbook: str, private_key: Path | None,
                 vault_password_file: Path | None, extravars: dict[str, Any], what: str = "",
                 dead_ok: bool = False) -> Any:
    """day2_playbook with the secrets file, as an error unless it succeeded
    (or, with *dead_ok*, failed only on nodes that did not answer); *what*
    prefixes the error (the command)."""
    result = day2_playbook(app, inv, inventory, playbook, private_key, secrets_file=secrets_file(inventory),
                           vault_password_file=vault_password_file, extravars=extravars)
    if result.rc != 0 and not (dead_ok and any(p.unreachable for p in result.phases)):
        where = "; ".join(f"{f.host}: {f.task}: {f.message}" for f in result.failures) or " ".join(result.errors)
        raise StackwrightError(f"{what}{playbook} failed ({where or result.status}); log in {result.artifacts}")
    return result


def read_secrets(inventory: Path, vault_password_file: Path | None) -> dict[str, Any]:
    """The inventory's secrets, or the problems with its secrets file as an error."""
    try:
        return secrets_mod.read(secrets_file(inventory), vault_password_file)
    except InventoryError as exc:
        raise StackwrightError("; ".join(f"{exc.filename}: {p.message} ({p.fix})" for p in exc.problems)) from None


@cli.command()
@inventory_argument
@click.option("--force", is_flag=True, help="Replace an existing secrets file (the old one is kept as .bak).")
@click.pass_obj
def secrets(app: App, inventory: Path, force: bool) -> None:
    """Generate every password and key of the cloud into a 0600 file next to INVENTORY.

    An existing file is kept: only the secrets it lacks (ones a newer
    Stackwright needs) are added to it, every line already there stays."""
    load_or_exit(app, inventory)
    target = secrets_file(inventory)
    if target.exists() and not force:
        added = secrets_mod.complete(target)
        if added:
            app.console.print(f"added {len(added)} new secret(s) to {target}: {', '.join(added)}; "
                              "no value was printed")
        else:
            app.console.print(f"{target} already has every secret; it was left unchanged "
                              "(--force replaces it, the old file is kept as .bak)")
        return
    secrets_mod.write(target, force=force)
    app.console.print(f"wrote {target} (mode 0600); no secret was printed")


def _register_commands() -> None:
    from .commands import backup as backup_cmd
    from .commands import check as check_cmd
    from .commands import deploy as deploy_cmd
    from .commands import fernet as fernet_cmd
    from .commands import lab as lab_cmd
    from .commands import node as node_cmd
    from .commands import plan as plan_cmd
    from .commands import recover as recover_cmd
    from .commands import server as server_cmd
    from .commands import verify as verify_cmd

    cli.add_command(lab_cmd.lab)
    cli.add_command(plan_cmd.plan)
    cli.add_command(plan_cmd.init)
    cli.add_command(plan_cmd.schema)
    cli.add_command(deploy_cmd.deploy)
    cli.add_command(verify_cmd.verify)
    cli.add_command(server_cmd.server)
    cli.add_command(node_cmd.node)
    cli.add_command(check_cmd.check)
    cli.add_command(fernet_cmd.fernet_rotate)
    cli.add_command(backup_cmd.backup)
    cli.add_command(backup_cmd.restore)
    cli.add_command(recover_cmd.recover)


_register_commands()


def main() -> None:
    debug = "--debug" in sys.argv
    try:
        cli.main(prog_name="stackwright", standalone_mode=True)
    except Exception as exc:  # last resort: never a traceback for the user
        if debug:
            raise
        Console(stderr=True).print(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
                                   style="bold red", markup=False)
        sys.exit(1)
