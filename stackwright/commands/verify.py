"""`stackwright verify`: smoke-test a deployed cloud end to end."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from .. import catalog, credentials, tempest
from ..lifecycle import Lifecycle
from ..main import App, StackwrightError, inventory_argument, load_or_exit, read_secrets, vault_password_option
from ..paths import work_dir
from ..verify import Options, Verify, table


@click.command()
@inventory_argument
@vault_password_option
@click.option("--image", default=Options.image, show_default=True, help="Image of the test server.")
@click.option("--flavor", default=Options.flavor, show_default=True, help="Flavor of the test server.")
@click.option("--network", default=Options.network, show_default=True, help="Tenant network of the test server.")
@click.option("--external-network", default=Options.external_network, show_default=True,
              help="Network the floating IP comes from.")
@click.option("--timeout", default=Options.timeout, show_default=True, type=click.IntRange(10, 3600),
              help="Seconds each step may take.")
@click.option("--lifecycle", is_flag=True,
              help="Also snapshot (and boot from it), stop/start, reboot, pause, suspend, lock, rescue, resize, "
                   "shelve and rebuild the test server, each checked and timed.")
@click.option("--keep", is_flag=True, help="Leave the test server and what it uses in place (for debugging).")
@click.option("--tempest", "tempest_", is_flag=True,
              help="Run OpenStack's Tempest smoke tests (Debian package tempest) instead.")
@click.option("--tempest-regex", help="With --tempest: these tests instead of the smoke set.")
@click.pass_obj
def verify(app: App, inventory: Path, vault_password_file: Path | None, image: str, flavor: str, network: str,
           external_network: str, timeout: int, lifecycle: bool, keep: bool, tempest_: bool,
           tempest_regex: str | None) -> None:
    """Smoke-test the cloud of INVENTORY: boot a server, DHCP, metadata,
    floating IP ping from this machine, volume; then clean up.  Exits 1 when
    a step fails.  With --tempest: Tempest's smoke tests, reported as
    passed/failed/skipped with the reasons."""
    inv = load_or_exit(app, inventory, deploying=True)
    cloud, conn = credentials.connect(inv, read_secrets(inventory, vault_password_file)["keystone_admin_password"])
    if tempest_:
        _tempest(app, inventory, inv.cloud.name, conn, cloud, image, flavor, external_network, timeout, tempest_regex)
        return
    opts = Options(image=image, flavor=flavor, network=network, external_network=external_network,
                   timeout=timeout, keep=keep, expected=tuple(catalog.reports(inv)))
    app.console.print(f"verifying cloud {inv.cloud.name!r} through {cloud['auth']['auth_url']}")
    steps = (Lifecycle if lifecycle else Verify)(conn, opts, app.console).run()
    app.console.print(table(steps))
    failed = [s.name for s in steps if s.result == "failed"]
    if failed:
        app.err.print(f"verify failed: {', '.join(failed)}", style="bold red")
        sys.exit(1)
    app.console.print(f"cloud {inv.cloud.name!r} verified", style="green")


def _tempest(app: App, inventory: Path, name: str, conn: Any, cloud: dict[str, Any], image: str, flavor: str,
             external: str, timeout: int, regex: str | None) -> None:
    work = work_dir(inventory, name)
    try:
        values = tempest.conf_values(conn, cloud, image, flavor, "m1.tiny", external, timeout)
        log = work / "tempest.log.txt"
        app.console.print(f"running Tempest {'--regex ' + regex if regex else 'smoke tests'} against {name!r} "
                          f"(workspace {work / 'tempest'}, output {log}); this takes a while")
        started = time.monotonic()
        with app.console.status("tempest run ..."):
            rc, outcome = tempest.run(work / "tempest", tempest.render_conf(values), regex, log)
    except tempest.TempestError as exc:
        raise StackwrightError(str(exc)) from None
    took = time.monotonic() - started
    for test in outcome.failed:
        app.console.print(f"[bold red]FAILED[/] {test}", highlight=False)
    reasons: dict[str, list[str]] = {}
    for test, reason in outcome.skipped.items():
        reasons.setdefault(reason or "no reason given", []).append(test)
    for reason, tests in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
        app.console.print(f"[yellow]skipped[/] {len(tests)}: {reason}", highlight=False)
    summary = {"passed": len(outcome.passed), "failed": len(outcome.failed), "skipped": len(outcome.skipped),
               "seconds": round(took), "failed_tests": outcome.failed, "skipped_tests": outcome.skipped}
    (work / "tempest-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    app.console.print(f"tempest: {summary['passed']} passed, {summary['failed']} failed, "
                      f"{summary['skipped']} skipped in {took:.0f}s (details: {work / 'tempest-summary.json'})")
    if rc != 0 or outcome.failed:
        sys.exit(1)
