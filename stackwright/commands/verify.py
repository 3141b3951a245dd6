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
              help="Run OpenStack's Tempest (Debian package tempest) instead.")
@click.option("--tempest-set", default="smoke", show_default=True, metavar="SET",
              help="With --tempest: smoke, full (every API test and the scenario tests), or comma-separated "
                   f"{', '.join(tempest.SETS[2:])}.")
@click.option("--tempest-regex", help="With --tempest: the tests matching this regex instead of a set.")
@click.pass_obj
def verify(app: App, inventory: Path, vault_password_file: Path | None, image: str, flavor: str, network: str,
           external_network: str, timeout: int, lifecycle: bool, keep: bool, tempest_: bool, tempest_set: str,
           tempest_regex: str | None) -> None:
    """Smoke-test the cloud of INVENTORY: boot a server, DHCP, metadata,
    floating IP ping from this machine, volume; then clean up.  Exits 1 when
    a step fails.  With --tempest: Tempest's tests, with SSH into their
    servers, reported per service (passed, failed, skipped) with each
    skip's reason; exits 1 on a failure that is not a known one."""
    inv = load_or_exit(app, inventory, deploying=True)
    cloud, conn = credentials.connect(inv, read_secrets(inventory, vault_password_file)["keystone_admin_password"],
                                      inventory)
    if tempest_:
        try:
            chosen = ["--regex", tempest_regex] if tempest_regex else tempest.selection(tempest_set)
        except tempest.TempestError as exc:
            raise StackwrightError(str(exc)) from None
        _tempest(app, inventory, inv.cloud.name, conn, cloud, image, flavor, external_network, timeout, chosen)
        return
    opts = Options(image=image, flavor=flavor, network=network, external_network=external_network,
                   timeout=timeout, keep=keep, expected=tuple(catalog.reports(inv)),
                   heat=bool(catalog.service("heat").hosts(inv)),
                   backup=bool(catalog.service("cinder_backup").hosts(inv)))
    app.console.print(f"verifying cloud {inv.cloud.name!r} through {cloud['auth']['auth_url']}")
    steps = (Lifecycle if lifecycle else Verify)(conn, opts, app.console).run()
    app.console.print(table(steps))
    failed = [s.name for s in steps if s.result == "failed"]
    if failed:
        app.err.print(f"verify failed: {', '.join(failed)}", style="bold red")
        sys.exit(1)
    app.console.print(f"cloud {inv.cloud.name!r} verified", style="green")


def _tempest(app: App, inventory: Path, name: str, conn: Any, cloud: dict[str, Any], image: str, flavor: str,
             external: str, timeout: int, chosen: list[str]) -> None:
    work = work_dir(inventory, name)
    try:
        work.mkdir(parents=True, exist_ok=True)
        values = tempest.conf_values(conn, cloud, image, flavor, "m1.tiny", external, timeout, work)
        log = work / "tempest.log.txt"
        app.console.print(f"running Tempest ({' '.join(chosen)}) against {name!r} "
                          f"(workspace {work / 'tempest'}, output {log}); this takes a while")
        started = time.monotonic()
        with app.console.status("tempest run ..."):
            rc, outcome = tempest.run(work / "tempest", tempest.render_conf(values), chosen, log)
    except tempest.TempestError as exc:
        raise StackwrightError(str(exc)) from None
    took = time.monotonic() - started
    known = {t: r for t in outcome.failed if (r := tempest.KNOWN_FAILURES.get(t))}
    unexplained = [t for t in outcome.failed if t not in known]
    for test in unexplained:
        app.console.print(f"[bold red]FAILED[/] {test}", highlight=False)
    for test, reason in known.items():
        app.console.print(f"[red]failed[/] {test} (known: {reason})", highlight=False)
    for test in sorted(set(tempest.KNOWN_FAILURES) & set(outcome.passed)):
        app.console.print(f"[green]passed[/] {test}, a known failure: drop it from tempest.KNOWN_FAILURES",
                          highlight=False)
    reasons: dict[str, list[str]] = {}
    for test, reason in outcome.skipped.items():
        reasons.setdefault(reason or "no reason given", []).append(test)
    for reason, tests in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
        app.console.print(f"[yellow]skipped[/] {len(tests)}: {reason}", highlight=False)
    rows = tempest.by_service(outcome)
    app.console.print(tempest.table(rows))
    summary = {"passed": len(outcome.passed), "failed": len(outcome.failed), "skipped": len(outcome.skipped),
               "seconds": round(took), "selection": chosen, "by_service": rows,
               "failed_tests": outcome.failed, "known_failures": known, "skipped_tests": outcome.skipped}
    (work / "tempest-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    app.console.print(f"tempest: {summary['passed']} passed, {summary['failed']} failed ({len(known)} known), "
                      f"{summary['skipped']} skipped in {took:.0f}s (details: {work / 'tempest-summary.json'})")
    if unexplained or (rc != 0 and not outcome.failed):
        sys.exit(1)
