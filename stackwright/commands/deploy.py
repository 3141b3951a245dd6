"""`stackwright deploy`: render the inventory, run the site playbook, write
the operator's credentials."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .. import catalog, credentials, fastpath
from .. import secrets as secrets_mod
from ..lab import Lab, adapt
from ..main import App, StackwrightError, inventory_argument, load_or_exit
from ..model import Inventory
from ..paths import data_dir, secrets_file, work_dir
from ..problems import InventoryError
from ..render import render
from ..runner import RunResult, run_playbook, summary_table


@click.command()
@inventory_argument
@click.option("--private-key", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              envvar="STACKWRIGHT_PRIVATE_KEY",
              help="SSH key Ansible uses (default: the lab's key when INVENTORY's lab is up, else your SSH setup).")
@click.option("--vault-password-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              envvar="STACKWRIGHT_VAULT_PASSWORD_FILE", help="Password file of a vault-encrypted secrets file.")
@click.option("--limit", help="Only these hosts or groups (Ansible --limit pattern).")
@click.option("--tags", help=f"Only these phases, comma-separated ({', '.join(catalog.phases())}).")
@click.option("--mitogen", is_flag=True, envvar="STACKWRIGHT_MITOGEN",
              help="Run the tasks through Mitogen: about 5x less overhead per task (see docs/benchmarks.md), "
                   "but a third-party Ansible strategy plugin that ansible-core deprecates, so opt-in only.")
@click.option("--full", is_flag=True,
              help="Run every phase, also those whose nodes show no change since the last complete deploy "
                   "(the check sees files, services and packages, not database rows, users or API objects).")
@click.pass_obj
def deploy(app: App, inventory: Path, private_key: Path | None, vault_password_file: Path | None,
           limit: str | None, tags: str | None, mitogen: bool, full: bool) -> None:
    """Deploy the cloud described by INVENTORY (shared services and Keystone)."""
    inv = load_or_exit(app, inventory, deploying=True)
    secrets_path = secrets_file(inventory)
    if not secrets_path.exists():
        secrets_mod.write(secrets_path)
        app.console.print(f"generated the secrets file {secrets_path} (mode 0600)")
    try:
        values = secrets_mod.read(secrets_path, vault_password_file)
    except InventoryError as exc:
        raise StackwrightError("; ".join(f"{exc.filename}: {p.message} ({p.fix})" for p in exc.problems)) from None
    work = work_dir(inventory, inv.cloud.name)
    known_hosts = None
    lab = Lab(inv)
    if private_key is None and lab.is_up():
        private_key, known_hosts = lab.key, lab.known_hosts
        inv = adapt(inv)
        app.console.print(f"using the lab's SSH key for cloud {inv.cloud.name!r}; lab kernel: userspace OVS "
                          "datapath, bonds and VLANs built by OVS, no default route, dpkg without fsync")
    render(inv, work / "inventory")
    extravars = {"stackwright_local_cache": str(work / "cache")}
    run = functools.partial(run_playbook, inventory_dir=work / "inventory", work=work, console=app.console,
                            vault_password_file=vault_password_file, private_key=private_key,
                            known_hosts=known_hosts, mitogen=mitogen)
    hosts = sorted(n.name for n in inv.nodes)
    data = data_dir()
    site = data / "playbooks" / "site.yml"
    complete = not (tags or limit)
    digest = fastpath.inputs_digest(work / "inventory", secrets_path, data, extravars)
    baseline = fastpath.load(work) if complete else None
    skip: list[str] = []
    check_phase: list[dict[str, Any]] = []
    if baseline and not full:
        if baseline.inputs != digest:
            app.console.print("the inventory, secrets or Stackwright changed since the last complete deploy: "
                              "every phase runs")
        else:
            probes, check_s = _probe(run, work / "probe", baseline.managed, hosts)
            differ = baseline.differences(probes)
            skip = [phase for phase in baseline.phases if phase not in differ]
            counts = baseline.counts()
            check_phase = [{"name": "check", "seconds": round(check_s, 1), "ok": len(probes), "changed": 0,
                            "failed": len(hosts) - len(probes)}]
            app.console.print(f"checked {counts['files']} files, {counts['units']} services and the installed "
                              f"packages on {len(probes)} node(s) against the last complete deploy "
                              f"in {check_s:.0f}s")
            for phase, reasons in differ.items():
                more = f" (and {len(reasons) - 3} more)" if len(reasons) > 3 else ""
                app.console.print(f"  {phase} runs: {'; '.join(reasons[:3])}{more}", markup=False)
            if not differ:
                _write_summary(work, inv.cloud.name, hosts, 0, "successful", check_s, check_phase, {}, skip)
                app.console.print(f"nothing to do: every phase of cloud {inv.cloud.name!r} matches the last "
                                  "complete deploy (deploy --full runs them all anyway).")
                _credentials(app, inv, inventory, values["keystone_admin_password"])
                return
            app.console.print(f"unchanged, skipped: {', '.join(skip) or 'none'}")
    app.console.print(f"deploying cloud {inv.cloud.name!r} ({len(inv.nodes)} node(s))")
    collector = fastpath.Collector(fastpath.play_phases(site))
    result = run(
        "site.yml", secrets_file=secrets_path, limit=limit, tags=tags, skip_tags=",".join(skip) or None,
        extravars=extravars, on_event=collector.handle,
    )
    if skip:  # the skipped phases' plays start and run nothing: leave them out
        result.phases = [p for p in result.phases if p.ok or p.changed or p.failed or p.unreachable or p.skipped]
    app.console.print(summary_table(result))
    app.console.print("changed per host: " + ", ".join(f"{h}={result.changed_by_host.get(h, 0)}" for h in hosts))
    phases = check_phase + [{"name": p.name, "seconds": round(p.seconds, 1), "ok": p.ok, "changed": p.changed,
                             "failed": p.failed + p.unreachable} for p in result.phases]
    _write_summary(work, inv.cloud.name, hosts, result.rc, result.status, result.seconds, phases,
                   result.changed_by_host, skip)
    if result.rc == 0 and complete:
        order = fastpath.phase_order(site)
        managed = fastpath.merge(baseline.managed if baseline else {}, collector.managed_plain(),
                                 [p for p in order if p not in skip])
        probes, _ = _probe(run, work / "probe", managed, hosts)
        if set(probes) == set(hosts):
            fastpath.save(work, fastpath.Baseline(digest, order, managed, probes))
        else:
            fastpath.forget(work)
    if result.rc != 0:
        fastpath.forget(work)
        where = "; ".join(f"{f.host}: {f.task}" for f in result.failures) or " ".join(result.errors) or result.status
        raise StackwrightError(f"deploy failed ({where}); full log in {result.artifacts}")
    if tags:
        app.console.print(f"phases {tags} of cloud {inv.cloud.name!r} done in {result.seconds:.0f}s.")
        return
    _credentials(app, inv, inventory, values["keystone_admin_password"], result.seconds)


def _probe(run: Callable[..., RunResult], work: Path, managed: fastpath.Managed,
           hosts: list[str]) -> tuple[dict[str, dict[str, Any]], float]:
    """Probe every node for what the phases manage there; only the nodes that
    answered are in the result."""
    collector = fastpath.Collector({})
    started = time.monotonic()
    # its own runner directory: the deploy's artifacts stay the newest there
    run("probe.yml", work=work, extravars={"stackwright_probe": fastpath.probe_request(managed, hosts)},
        on_event=collector.handle)
    return collector.probes, time.monotonic() - started


def _write_summary(work: Path, cloud: str, hosts: list[str], rc: int, status: str, seconds: float,
                   phases: list[dict[str, Any]], changed_by_host: dict[str, int], skipped: list[str]) -> None:
    summary = {
        "cloud": cloud, "rc": rc, "status": status, "seconds": round(seconds, 1), "phases": phases,
        "changed_by_host": {h: changed_by_host.get(h, 0) for h in hosts},
        "skipped_phases": skipped,
    }
    (work / "last-deploy.json").write_text(json.dumps(summary, indent=2) + "\n")


def _credentials(app: App, inv: Inventory, inventory: Path, admin_password: str, seconds: float | None = None) -> None:
    clouds, rc = credentials.write(inv, inventory, admin_password)
    done = f"cloud {inv.cloud.name!r} deployed in {seconds:.0f}s.\n" if seconds is not None else ""
    app.console.print(f"{done}credentials: {clouds} (cloud {inv.cloud.name!r}) and {rc}, both mode 0600\n"
                      f"try: OS_CLIENT_CONFIG_FILE={clouds} OS_CLOUD={inv.cloud.name} openstack token issue")
