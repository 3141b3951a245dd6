"""Deploy benchmarks on the lab (figures, never pass/fail).

For each inventory (aio, multinode; copies renamed bench-* on their own
subnets so a demo lab is left alone):

1. lab up time (base image cached);
2. first `stackwright deploy` wall time, total and per phase (warm apt cache
   unless --cold);
3. no-change re-run time and its changed count: the default fast path
   (the nodes are probed, no phase runs), every task again (`--full`), and
   `--full --mitogen`; then the time of a re-run after one edited config
   file (only its phase runs);
4. the apt floor: the install alone, done the plainest way under the
   deploy's own conditions.  On fresh nodes of the same lab, each node gets
   what the deploy sets up before it installs (its name in /etc/hosts, dpkg
   without fsync as the lab sets it, common's policy-rc.d, every debconf
   answer the service catalog gives), untimed; then, timed, one `apt-get update &&
   apt-get install` of exactly the packages the node ended up with, with the
   deploy's dpkg options and its no-start policy (STACKWRIGHT_NO_START=1),
   all nodes in parallel; and the ratio deploy / floor.

The first deploy and the floor are each measured --runs (and --floors)
times, 3 by default (this machine is noisy: one run moves a ratio by more
than most changes), and reported as medians with every run kept; the
re-run figures are taken once, after the last deploy.

Results go to bench/results/deploy.json (and a PNG chart with --chart).
Run as root:  python bench/deploy.py [--only aio] [--runs 3] [--cold] [--chart]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from profile_run import profile

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
SITE = REPO / "playbooks" / "site.yml"
SUBNETS = {"aio": {"10.42.": "10.92.", "10.43.": "10.93.", "10.44.": "10.94.", "10.45.": "10.95."},
           "multinode": {"10.52.": "10.96.", "10.53.": "10.97.", "10.54.": "10.98.", "10.55.": "10.99."}}


def sw(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "stackwright", *args], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"stackwright {' '.join(args)} failed ({proc.returncode}):\n"
                 f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def step(inventory: str, what: str, seconds: float) -> None:
    """Each figure as soon as it is measured (a long run can be followed)."""
    print(f"[{time.strftime('%H:%M:%S')}] {inventory}: {what} {seconds:.1f}s", flush=True)


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.monotonic()
    result = fn(*args)
    return time.monotonic() - start, result


def bench_copy(name: str, workdir: Path) -> Path:
    text = (REPO / "inventories" / f"{name}.yml").read_text().replace(f"name: {name}\n", f"name: bench-{name}\n", 1)
    for old, new in SUBNETS[name].items():
        text = text.replace(old, new)
    path = workdir / f"bench-{name}.yml"
    path.write_text(text)
    return path


def manual_packages(ssh: list[str]) -> set[str]:
    out = subprocess.run([*ssh, "apt-mark", "showmanual"], check=True, capture_output=True, text=True).stdout
    return set(out.split())


def base_manual_packages() -> set[str]:
    from stackwright.paths import state_dir

    image = state_dir() / "images" / "bookworm-base"
    out = subprocess.run(["chroot", str(image), "apt-mark", "showmanual"], check=True, capture_output=True,
                         text=True).stdout
    return set(out.split())


def debconf_answers(inv: Any) -> list[str]:
    """Every debconf answer the deploy gives (the service catalog's, of every
    group), as debconf-set-selections lines.  The deploy gives a node the
    answers of its groups; answers of packages a node never installs change
    nothing, so the floor gives every node all of them."""
    from stackwright import catalog

    answers = {(a["name"], a["question"], a["vtype"], a["value"])
               for sets in catalog.packages(inv).values() for a in sets["debconf"]}
    return [" ".join(a) for a in sorted(answers)]


def floor_setup(ssh: list[str], answers: list[str]) -> None:
    """What the deploy does on a node before its first install, untimed:
    the node's own name resolves (nova-common's and cinder-common's scripts
    need it), dpkg unpacks without fsync (cloud.dpkg_unsafe_io, which the lab
    sets), common's policy-rc.d, the roles' debconf answers."""
    policy = (REPO / "roles" / "common" / "files" / "policy-rc.d").read_text()
    script = ("set -e\n"
              'grep -qw "$(hostname)" /etc/hosts || echo "127.0.1.1 $(hostname)" >> /etc/hosts\n'
              "echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/stackwright-unsafe-io\n"
              f"cat > /usr/sbin/policy-rc.d <<'POLICY'\n{policy}POLICY\n"
              "chmod 0755 /usr/sbin/policy-rc.d\n"
              "debconf-set-selections <<'ANSWERS'\n" + "\n".join(answers) + "\nANSWERS\n")
    subprocess.run([*ssh, "sh", "-s"], input=script, check=True, capture_output=True, text=True)


def apt_floor(ssh: list[str], packages: list[str], answers: list[str]) -> float:
    """Seconds one node's `apt-get update && apt-get install` of *packages*
    takes, with the deploy's dpkg options and no-start policy (the packages
    phase's installer, roles/packages/files/stackwright-install-packages).

    An update that stalls (the lab proxy can lose a race on an index file when
    nodes ask for it in the same second) is killed and tried again, as the
    deploy's own refresh does; the floor counts the try that worked, not the
    stall, and says so on stderr.  A package script that fails (the
    dashboard's postinst, now and then) is run again with `dpkg --configure
    --pending`, as the deploy does; that time counts, and it is said on stderr.
    """
    floor_setup(ssh, answers)
    cmd = ("set -e; export DEBIAN_FRONTEND=noninteractive STACKWRIGHT_NO_START=1; tries=1; start=$(date +%s.%N); "
           "until timeout --kill-after=10 180 apt-get update -q >/dev/null; do "
           "[ $tries -lt 4 ] || exit 1; tries=$((tries + 1)); start=$(date +%s.%N); done; "
           "install='apt-get install -y -q --no-install-recommends "
           "-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "
           f"{' '.join(packages)}'; reruns=0; "
           "$install >/dev/null || { until [ $reruns -ge 3 ] || dpkg --configure --pending >/dev/null; do "
           "reruns=$((reruns + 1)); sleep 2; done; reruns=$((reruns + 1)); $install >/dev/null; }; "
           "echo \"$tries $reruns $start $(date +%s.%N)\"")
    done = subprocess.run([*ssh, cmd], capture_output=True, text=True)
    if done.returncode != 0:  # say why (e.g. a package's own postinst failed), not just the command
        raise RuntimeError(f"apt floor on {ssh[-1]}: rc {done.returncode}\n" + done.stderr[-2000:])
    out = done.stdout.split()
    tries, reruns, start, end = int(out[-4]), int(out[-3]), float(out[-2]), float(out[-1])
    if reruns:
        print(f"apt floor on {ssh[-1]}: a package script failed; `dpkg --configure --pending` and the install "
              "ran again (their time counts)", file=sys.stderr, flush=True)
    if tries > 1:
        print(f"apt floor: `apt-get update` stalled and was tried {tries} times; the floor counts the last",
              file=sys.stderr, flush=True)
    return end - start


def last_artifact(workdir: Path, cloud: str) -> Path:
    runs = (workdir / ".stackwright" / cloud / "runner" / "artifacts").iterdir()
    return max(runs, key=lambda p: p.stat().st_mtime)


def last_deploy(workdir: Path, cloud: str) -> dict[str, Any]:
    """The summary `stackwright deploy` wrote for its last run."""
    return json.loads((workdir / ".stackwright" / cloud / "last-deploy.json").read_text())


def floors(inventory: Path, lab: Any, inv: Any, wanted: dict[str, list[str]]) -> dict[str, float]:
    """One floor: fresh nodes, every node's install at once; seconds per node."""
    sw("lab", "down", str(inventory))
    sw("lab", "up", str(inventory))
    answers = debconf_answers(inv)
    with ThreadPoolExecutor(max_workers=len(inv.nodes)) as pool:
        by_node = dict(zip(wanted, pool.map(lambda n: apt_floor(lab.ssh_args(n), wanted[n.name], answers),
                                            inv.nodes), strict=True))
    sw("lab", "down", str(inventory))
    return by_node


def run_one(name: str, workdir: Path, runs: int, reruns: bool, floor_runs_wanted: int) -> dict[str, Any]:
    from stackwright.fastpath import phase_order
    from stackwright.lab import Lab
    from stackwright.loader import load

    inventory = bench_copy(name, workdir)
    inv = load(inventory)
    lab = Lab(inv)
    deploys: list[dict[str, Any]] = []
    for i in range(runs):
        sw("lab", "down", str(inventory))
        lab_up, _ = timed(sw, "lab", "up", str(inventory))
        step(name, f"lab up (run {i + 1}/{runs})", lab_up)
        deploy_s, _ = timed(sw, "deploy", str(inventory))
        step(name, f"first deploy (run {i + 1}/{runs})", deploy_s)
        deploys.append({"lab_up_s": round(lab_up, 1), "deploy_s": round(deploy_s, 1),
                        "phases": last_deploy(workdir, inv.cloud.name)["phases"]})
    first = profile(last_artifact(workdir, inv.cloud.name))
    median_deploy = statistics.median(d["deploy_s"] for d in deploys)
    # the phases of the run nearest the median (a median of phase times would not add up)
    typical = min(deploys, key=lambda d: abs(d["deploy_s"] - median_deploy))
    result: dict[str, Any] = {
        "inventory": name,
        "nodes": len(inv.nodes),
        "runs": runs,
        "lab_up_s": statistics.median(d["lab_up_s"] for d in deploys),
        "deploy_s": median_deploy,
        "deploy_runs_s": [d["deploy_s"] for d in deploys],
        "phases": typical["phases"],
        "deploy_tasks": first["tasks"],
    }
    if reruns:
        result.update(rerun_figures(name, inventory, inv, lab, workdir, phase_order))
    if not floor_runs_wanted:
        sw("lab", "down", str(inventory))
        return result
    base = base_manual_packages()
    wanted = {n.name: sorted(manual_packages(lab.ssh_args(n)) - base) for n in inv.nodes}
    floor_runs = []
    for i in range(floor_runs_wanted):
        by_node = floors(inventory, lab, inv, wanted)
        floor_runs.append(by_node)
        step(name, f"apt floor (run {i + 1}/{floor_runs_wanted}; slowest node)", max(by_node.values()))
    median_floor = statistics.median(max(r.values()) for r in floor_runs)
    result.update({
        "apt_floor_s": round(median_floor, 1),
        "apt_floor_runs_s": [round(max(r.values()), 1) for r in floor_runs],
        "apt_floor_by_node_s": [{k: round(v, 1) for k, v in r.items()} for r in floor_runs],
        "packages_by_node": wanted,
        "deploy_over_floor": round(median_deploy / median_floor, 2),
    })
    return result


def rerun_figures(name: str, inventory: Path, inv: Any, lab: Any, workdir: Path,
                  phase_order: Any) -> dict[str, Any]:
    """Re-runs of the last deploy: the fast path, every task, through
    Mitogen, and after one edited file (once: they move little between runs)."""
    # no-change re-run: the fast path (probe the nodes, run no phase)
    rerun_s, _ = timed(sw, "deploy", str(inventory))
    rerun = last_deploy(workdir, inv.cloud.name)
    step(name, "no-change re-run (fast path)", rerun_s)
    # ... and every task again (`--full`), plain and through Mitogen
    rerun_full_s, _ = timed(sw, "deploy", "--full", str(inventory))
    rerun_full = last_deploy(workdir, inv.cloud.name)
    step(name, "no-change re-run --full", rerun_full_s)
    again = profile(last_artifact(workdir, inv.cloud.name), top=10)
    rerun_mitogen_s, _ = timed(sw, "deploy", "--full", "--mitogen", str(inventory))
    rerun_mitogen = last_deploy(workdir, inv.cloud.name)
    step(name, "no-change re-run --full --mitogen", rerun_mitogen_s)
    # drift on one node: an edited chrony.conf makes the time phase run
    node = inv.nodes[-1]
    # one string: ssh hands it to the node's shell as it is
    subprocess.run([*lab.ssh_args(node), "echo '# a local edit' >> /etc/chrony/chrony.conf"], check=True)
    drift_s, _ = timed(sw, "deploy", str(inventory))
    drift = last_deploy(workdir, inv.cloud.name)
    step(name, "re-run after one edit", drift_s)
    return {
        "rerun_s": round(rerun_s, 1),
        "rerun_changed": sum(rerun["changed_by_host"].values()),
        "rerun_skipped_phases": len(rerun["skipped_phases"]),
        "rerun_check_s": sum(p["seconds"] for p in rerun["phases"] if p["name"] == "check"),
        "rerun_full_s": round(rerun_full_s, 1),
        "rerun_full_changed": sum(rerun_full["changed_by_host"].values()),
        "rerun_drift_s": round(drift_s, 1),
        # the phases that ran (fact gathering, which every run does, is not one)
        "rerun_drift_ran": [p for p in phase_order(SITE) if p not in drift["skipped_phases"]],
        "rerun_drift_changed": sum(drift["changed_by_host"].values()),
        "rerun_mitogen_s": round(rerun_mitogen_s, 1),
        "rerun_mitogen_changed": sum(rerun_mitogen["changed_by_host"].values()),
        # where the time goes (bench/profile_run.py): the re-run's costliest roles and tasks
        "rerun_tasks": again["tasks"],
        "rerun_by_role_s": again["by_role_s"],
        "rerun_slowest": again["slowest"],
    }


def chart(results: list[dict[str, Any]], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 1.6 + 1.0 * len(results)))
    names = list(dict.fromkeys(p["name"] for r in results for p in r["phases"]))
    colours = {name: plt.get_cmap("tab20")(i % 20) for i, name in enumerate(names)}
    labelled: set[str] = set()
    for i, r in enumerate(results):
        left = 0.0
        for p in r["phases"]:
            ax.barh(i, p["seconds"], left=left, color=colours[p["name"]],
                    label=None if p["name"] in labelled else p["name"])
            labelled.add(p["name"])
            left += p["seconds"]
        if "apt_floor_s" not in r:
            continue
        ax.plot([r["apt_floor_s"]] * 2, [i - 0.4, i + 0.4], color="black", linewidth=2,
                label="apt floor" if i == 0 else None)
    labels = [f"{r['inventory']} ({r['nodes']} node{'s' if r['nodes'] > 1 else ''})\n{r.get('measured_on', '')}"
              for r in results]
    ax.set_yticks(range(len(results)), labels)
    ax.set_xlabel("seconds (first deploy, per phase; black: apt floor)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, ncol=1)
    fig.tight_layout()
    fig.savefig(target, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=sorted(SUBNETS), action="append")
    parser.add_argument("--runs", type=int, default=3,
                        help="first deploys and floors per inventory (medians reported; default 3)")
    parser.add_argument("--no-reruns", action="store_true", help="skip the re-run figures")
    parser.add_argument("--floors", type=int,
                        help="floors per inventory (default: --runs; 0 skips the floor, which depends on the "
                             "packages only, not on how the roles run)")
    parser.add_argument("--cold", action="store_true", help="empty the apt cache first (slow; needs the archive)")
    parser.add_argument("--chart", action="store_true", help="also write bench/results/deploy.png (matplotlib)")
    parser.add_argument("--chart-only", action="store_true", help="redraw the chart from bench/results/deploy.json")
    parser.add_argument("--workdir", type=Path,
                        help="keep the inventories and run logs here (default: a temporary directory)")
    args = parser.parse_args()
    if args.chart_only:
        chart(json.loads((RESULTS / "deploy.json").read_text())["deploy"], RESULTS / "deploy.png")
        return
    if os.geteuid() != 0:
        sys.exit("the lab needs root")
    if args.cold:
        shutil.rmtree("/var/cache/apt-cacher-ng", ignore_errors=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        floors_wanted = args.runs if args.floors is None else args.floors
        for name in args.only or ["aio", "multinode"]:
            results.append(run_one(name, workdir, args.runs, not args.no_reruns, floors_wanted))
            r = results[-1]
            r["measured_on"] = time.strftime("%Y-%m-%d")
            phases = ", ".join(f"{p['name']} {p['seconds']:.0f}s" for p in r["phases"])
            reruns = (f"; re-run {r['rerun_s']}s changed={r['rerun_changed']} (--full {r['rerun_full_s']}s "
                      f"changed={r['rerun_full_changed']}, --full --mitogen {r['rerun_mitogen_s']}s; "
                      f"after one edit {r['rerun_drift_s']}s)") if "rerun_s" in r else ""
            floor = (f"; apt floor median {r['apt_floor_s']}s of {r['apt_floor_runs_s']}; "
                     f"deploy/floor {r['deploy_over_floor']}") if "apt_floor_s" in r else ""
            print(f"{name}: lab up {r['lab_up_s']}s; deploy median {r['deploy_s']}s of {r['deploy_runs_s']} "
                  f"({phases}){reruns}{floor}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    # --only re-measures some inventories: keep the others' last figures
    previous = RESULTS / "deploy.json"
    measured = {r["inventory"] for r in results}
    kept = [r for r in json.loads(previous.read_text())["deploy"] if r["inventory"] not in measured] \
        if previous.exists() else []
    results = sorted(results + kept, key=lambda r: r["nodes"])
    doc = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "kernel": platform.release(), "apt_cache": "cold" if args.cold else "warm"},
           "deploy": results}
    (RESULTS / "deploy.json").write_text(json.dumps(doc, indent=2) + "\n")
    if args.chart:
        chart(results, RESULTS / "deploy.png")


if __name__ == "__main__":
    main()
