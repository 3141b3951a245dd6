"""Lab planning that needs no root: segments, names, apt sources."""

from __future__ import annotations

from pathlib import Path

from stackwright import lab
from stackwright.loader import load

REPO = Path(__file__).resolve().parents[2]


def test_networks_sharing_a_nic_share_a_bridge():
    inv = load(REPO / "inventories" / "aio.yml")
    segs = {s.networks: s.bridge for s in lab.segments(inv)}
    assert set(segs) == {("mgmt", "api"), ("tenant",), ("external",)}
    assert all(len(b) <= 15 for b in segs.values())


def test_host_takes_the_last_address():
    inv = load(REPO / "inventories" / "multinode.yml")
    assert lab.host_address(inv, "mgmt") == "10.52.0.254"


def test_interface_names_fit_linux_limits():
    inv = load(REPO / "inventories" / "multinode.yml")
    the_lab = lab.Lab(inv)
    names = {the_lab.veth(i, j) for i, n in enumerate(inv.nodes) for j, _ in enumerate(n.nics)}
    assert len(names) == sum(len(n.nics) for n in inv.nodes)
    assert all(len(n) <= 15 for n in names)


def test_node_sources_follow_the_host(monkeypatch, tmp_path):
    entries = [
        {"URIs": "https://mirror.invalid/debian", "Suites": "bookworm bookworm-updates", "Components": "main"},
        {"URIs": "http://mirror.invalid/debian-security", "Suites": "bookworm-security", "Components": "main"},
    ]
    monkeypatch.setattr(lab.sources, "host_sources", lambda: entries)
    assert lab.debian_archive_uri() == "https://mirror.invalid/debian/"
    text = lab.node_sources()
    assert "URIs: http://mirror.invalid/debian\n" in text  # plain HTTP through the proxy
    assert "Suites: bookworm-security" in text


def test_apt_sources_are_read_in_both_formats():
    """The host's archive is read from its apt configuration (never written
    into the repository): deb822 stanzas with URIs, and `deb` lines with
    their options in brackets dropped; comments and deb-src ignored."""
    from stackwright.lab.sources import deb822_entries, one_line_entries

    deb822 = ("# a comment: here\nTypes: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
              "Components: main\n\nTypes: deb-src\nSuites: bookworm\n")
    assert deb822_entries(deb822) == [{"Types": "deb", "URIs": "http://mirror.example/debian",
                                        "Suites": "bookworm bookworm-updates", "Components": "main"}]
    lines = ("deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib # x\n"
             "deb-src http://mirror.example/debian bookworm main\n# deb http://old.example/debian buster main\n")
    assert one_line_entries(lines) == [{"URIs": "http://mirror.example/debian", "Suites": "bookworm",
                                         "Components": "main contrib"}]


def test_a_subnet_another_interface_holds_is_refused():
    """Two labs on one subnet (a test's copy of an inventory, a lab left
    over) give the host two routes: refused up front, naming the network,
    the interface and the way out; the lab's own devices do not count."""
    inv = load(REPO / "inventories" / "multinode.yml")
    own = lab.Lab(inv).wiring.host_devices()
    mgmt = next(n for n in inv.networks if n.name == "mgmt")
    mine = (sorted(own)[0], f"{lab.host_address(inv, 'mgmt')}/{mgmt.cidr.prefixlen}")
    assert lab.address_clashes(inv, own, [("lo", "127.0.0.1/8"), mine]) == []
    clashes = lab.address_clashes(inv, own, [("swother0", "10.52.0.254/24")])
    assert len(clashes) == 1
    assert clashes[0].startswith("network mgmt: 10.52.0.0/24 is in use on this host already "
                                 "(10.52.0.254/24 on swother0")
    assert "lab down" in clashes[0]
    # a wider subnet overlaps too; the tenant network (no host address) is not the host's business
    assert len(lab.address_clashes(inv, own, [("eth9", "10.52.0.0/16")])) >= 1
    tenant = next(n for n in inv.networks if n.role == "tenant")
    assert not any(c.startswith(f"network {tenant.name}:") for c in
                   lab.address_clashes(inv, own, [("eth9", f"{tenant.cidr}")]))


def test_labs_brought_up_together_build_the_base_image_once(tmp_path, monkeypatch):
    """Two clones' tests on one machine: the second `lab up` waits for the
    first's debootstrap and uses its image (it used to remove the first's
    half-built tree and fail)."""
    import threading
    import time

    from stackwright.lab import image as image_mod

    built: list[str] = []

    def debootstrap(*args: str) -> None:
        target = Path(args[-1])
        built.append(target.name)
        time.sleep(0.3)  # long enough for the other thread to arrive
        (target / "etc").mkdir(parents=True)

    monkeypatch.setattr(image_mod, "run", debootstrap)
    base = tmp_path / "images" / "bookworm-base"
    threads = [threading.Thread(target=image_mod.ensure_image, args=(base, lambda msg: None)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert built == ["bookworm-base.tmp"]
    assert (base / ".stackwright-image").read_text().strip() == image_mod.BASE_PACKAGES


def test_processes_are_stopped_together_and_the_stubborn_killed(tmp_path):
    """stop_all asks every process at once and kills what outlives the
    shared timeout (lab down stops every node so)."""
    import subprocess
    import time

    from stackwright.lab.host import alive, stop_all

    polite = subprocess.Popen(["sleep", "100"])
    stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"])
    files = []
    for name, proc in (("polite", polite), ("stubborn", stubborn)):
        (tmp_path / name).write_text(f"{proc.pid}\n")
        files.append(tmp_path / name)
    time.sleep(0.3)  # the trap is set
    start = time.monotonic()
    stop_all(files, timeout=2)
    took = time.monotonic() - start
    assert not any(alive(f) for f in files)
    # the stubborn one waited out the timeout, once for both
    assert 2 <= took < 4, took
    for proc in (polite, stubborn):
        proc.wait(timeout=5)  # (stop_all reaped its own children already)
