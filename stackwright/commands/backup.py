"""`stackwright backup` and `stackwright restore`: one archive of what a
cloud cannot rebuild from its inventory, and putting it back."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import click

from .. import backup as backup_mod
from .. import main
from ..model import Inventory
from ..paths import secrets_file, work_dir


def _private_dir(work: Path, prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A 0700 folder beside the cloud's state (the same file system as the
    archive; not /tmp, which may be memory)."""
    work.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=prefix, dir=work)


def _playbook(app: main.App, inv: Inventory, inventory: Path, playbook: str, private_key: Path | None,
              vault_password_file: Path | None, **extravars: str) -> float:
    """Run *playbook* (an error unless it succeeded); its seconds."""
    started = time.monotonic()
    main.day2_checked(app, inv, inventory, playbook, private_key, vault_password_file, dict(extravars))
    return time.monotonic() - started


@click.command()
@main.inventory_argument
@click.option("--to", "to", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the archive [default: .stackwright/CLOUD/backups next to INVENTORY].")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@main.private_key_option
@main.vault_password_option
@click.pass_obj
def backup(app: main.App, inventory: Path, to: Path | None, fmt: str, private_key: Path | None,
           vault_password_file: Path | None) -> None:
    """Back up INVENTORY's cloud into one archive (mode 0600): every
    database (mariadb-backup, hot and consistent, the cloud keeps running),
    Keystone's fernet and credential keys, Ceph's keyrings, the secrets
    file, the inventory and the rendered inventory, with a manifest of
    checksums (playbooks/backup.yml fetches the nodes' parts)."""
    inv = main.load_or_exit(app, inventory, deploying=True)
    secrets = secrets_file(inventory)
    if not secrets.exists():
        raise main.StackwrightError(f"{secrets}: no secrets file: this cloud was never deployed from {inventory}")
    work = work_dir(inventory, inv.cloud.name)
    started = time.monotonic()
    with _private_dir(work, "backup-") as tmp:
        staging = Path(tmp)
        nodes_s = _playbook(app, inv, inventory, "backup.yml", private_key, vault_password_file,
                            stackwright_backup_dir=str(staging))
        shutil.copyfile(secrets, staging / "secrets.yml")
        shutil.copyfile(inventory, staging / "inventory.yml")
        shutil.copytree(work / "inventory", staging / "rendered")
        try:
            archive = backup_mod.write(to or work / "backups", inv, staging, {"nodes": nodes_s})
        except backup_mod.ArchiveError as exc:
            raise main.StackwrightError(str(exc)) from None
    seconds = time.monotonic() - started
    size = archive.stat().st_size
    if fmt == "json":
        click.echo(json.dumps({"archive": str(archive), "bytes": size, "seconds": round(seconds, 1),
                               "nodes_seconds": round(nodes_s, 1)}))
        return
    app.console.print(f"backup of cloud {inv.cloud.name!r}: {archive} ({size / 1e6:.1f} MB, mode 0600) in "
                      f"{seconds:.0f}s: the databases, Keystone's keys, "
                      f"{'Ceph keyrings, ' if inv.cloud.services.ceph else ''}the secrets file and the inventory. "
                      "It holds every secret of the cloud: keep it like the secrets file.", style="green")


@click.command()
@main.inventory_argument
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask before replacing the databases.")
@click.option("--no-verify", is_flag=True, help="Skip the verify run at the end.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: a summary on standard output, the progress (and verify's) on standard error.")
@main.private_key_option
@main.vault_password_option
@click.pass_context
def restore(ctx: click.Context, inventory: Path, archive: Path, yes: bool, no_verify: bool, fmt: str,
            private_key: Path | None, vault_password_file: Path | None) -> None:
    """Put the backup ARCHIVE back onto INVENTORY's cloud, the cloud it was
    taken from: refused for an archive of another cloud (or of this one with
    other nodes), or a damaged one.  The services that use a database stop,
    the databases become the backup's (the data folder they replace is kept
    beside it), Keystone's keys are the backup's again, the services start;
    then verify.  A secrets file that differs from the backup's is replaced
    by it (kept as .before-restore-TIME) and a deploy writes it out."""
    app: main.App = ctx.obj
    inv = main.load_or_exit(app, inventory, deploying=True)
    work = work_dir(inventory, inv.cloud.name)
    secrets = secrets_file(inventory)
    if fmt == "json":  # the progress goes to standard error
        app.console = app.err
    started = time.monotonic()
    with _private_dir(work, "restore-") as tmp:
        unpacked = Path(tmp)
        try:
            manifest = backup_mod.read(archive, unpacked)
            backup_mod.check_cloud(archive, manifest, inv, inventory)
        except backup_mod.ArchiveError as exc:
            raise main.StackwrightError(str(exc)) from None
        archived_secrets = (unpacked / "secrets.yml").read_bytes()
        new_secrets = not secrets.exists() or secrets.read_bytes() != archived_secrets
        app.console.print(f"restoring cloud {inv.cloud.name!r} from {archive}, taken {manifest['created']}: every "
                          "database and Keystone's keys" + (" and the secrets file" if new_secrets else ""))
        if not yes:
            click.confirm("Every change to the cloud since the backup is lost. Go on?", abort=True)
        if new_secrets:
            if secrets.exists():
                kept = secrets.with_name(f"{secrets.name}.before-restore-{time.strftime('%Y%m%dT%H%M%S')}")
                shutil.copy2(secrets, kept)
                app.console.print(f"the secrets file differs from the backup's: the current one is kept as {kept}")
            secrets.write_bytes(archived_secrets)
            secrets.chmod(0o600)
        seconds = _playbook(app, inv, inventory, "restore.yml", private_key, vault_password_file,
                            stackwright_restore_dir=str(unpacked))
    database = inv.nodes_with_role("controller")[0].name
    app.console.print(f"restored the databases and Keystone's keys of cloud {inv.cloud.name!r} in {seconds:.0f}s; "
                      f"the data folder they replaced is kept on {database} as /var/lib/mysql.before-restore-TIME "
                      "(delete it once the cloud is as you want it)", style="green")
    from .deploy import deploy
    from .verify import verify

    if new_secrets:
        app.console.print("writing the backup's secrets into the services' configuration (deploy)")
        ctx.invoke(deploy, inventory=inventory, private_key=private_key, vault_password_file=vault_password_file)
    if not no_verify:
        ctx.invoke(verify, inventory=inventory, vault_password_file=vault_password_file)  # exits 1 on failure
    if fmt == "json":
        click.echo(json.dumps({"cloud": inv.cloud.name, "result": "restored", "archive": str(archive),
                               "taken": manifest["created"], "secrets_replaced": new_secrets,
                               "verified": not no_verify, "restore_seconds": round(seconds, 1),
                               "seconds": round(time.monotonic() - started, 1)}))
