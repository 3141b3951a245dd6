"""End to end on the built-in lab: lab up, deploy the aio inventory, use
the cloud from this host (Keystone, catalog, an image round trip), run
`stackwright verify` (a server boots, gets DHCP and metadata, answers ping
on a floating IP, gets a Ceph RBD volume attached, backed up and restored;
Heat builds a stack whose server answers on its floating IP), log into
Horizon with headless Chromium (screenshot kept), deploy again (no
change), lab down.

Uses its own copy of the aio inventory (cloud `e2e`, other subnets) so a
demo lab of the real aio inventory is left alone.  Timings are printed, not
asserted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from stackwright_cli import (
    assert_https_only,
    lab_copy,
    last_deploy,
    network_report,
    on_every_address,
    secret_values,
    secrets_leaked,
    sw,
)

from stackwright import catalog, credentials
from stackwright.fastpath import phase_order
from stackwright.lab import Lab, alive, proxy_dir, segments
from stackwright.loader import load
from stackwright.secrets import read as read_secrets

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]

INVENTORY = Path(__file__).resolve().parents[2] / "inventories" / "aio.yml"
# Screenshots and other artifacts of the test run (CI keeps this folder).
PHASES = phase_order(INVENTORY.parents[1] / "playbooks" / "site.yml")
ARTIFACTS = Path(os.environ.get("STACKWRIGHT_TEST_ARTIFACTS", "test-artifacts")).resolve()


def spki_pin(host: str, port: int, cacert: str) -> str:
    """The public key of the certificate *host* serves, as Chromium pins it
    (base64 of the SHA-256 of its SubjectPublicKeyInfo), once the
    certificate has been checked against the cloud's CA."""
    import base64
    import hashlib
    import socket
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    context = ssl.create_default_context(cafile=cacert)
    with socket.create_connection((host, port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=host) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der, "no certificate"
    spki = x509.load_der_x509_certificate(der).public_key().public_bytes(Encoding.DER,
                                                                        PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


def horizon_login(url: str, user: str, password: str, screenshot: Path, pages: dict[str, str] | None = None,
                  pin: str | None = None) -> Path:
    """Log into Horizon with headless Chromium (Debian's chromium and
    chromium-driver); wait for the project overview; keep a screenshot.
    Then open each of *pages* (path: a word its page header must hold),
    keeping a screenshot of each beside the first.  *pin*: the one public
    key Chromium accepts besides its own CAs' (the cloud's CA is not one of
    them; see spki_pin)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,900", "--no-proxy-server"):
        options.add_argument(arg)
    if pin:
        options.add_argument(f"--ignore-certificate-errors-spki-list={pin}")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 60)
        wait.until(ec.presence_of_element_located((By.ID, "id_username")))
        assert "/auth/login/" in driver.current_url, driver.current_url
        driver.find_element(By.ID, "id_username").send_keys(user)
        driver.find_element(By.ID, "id_password").send_keys(password)
        driver.find_element(By.ID, "loginBtn").click()
        try:
            wait.until(ec.url_contains("/project/"))
            wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".page-header")))
        finally:
            driver.save_screenshot(str(screenshot))
        assert "Overview" in driver.find_element(By.CSS_SELECTOR, ".page-header").text
        assert user in driver.page_source
        for path, header in (pages or {}).items():
            driver.get(url + path)
            try:
                wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".page-header"), header))
            finally:
                driver.save_screenshot(str(screenshot.with_name(f"horizon-{path.strip('/').replace('/', '-')}.png")))
    finally:
        driver.quit()
    return screenshot


def lab_run(lab: Lab, node: Any, *args: str, check: bool = True) -> str:
    """A command's output on a lab node (ssh joins the words into one shell
    command line)."""
    return subprocess.run([*lab.ssh_args(node), *args], capture_output=True, text=True, check=check).stdout


# A TCP connect scan of every port of one address, run inside a namespace:
# a closed port answers with a reset at once, so 65,535 ports take seconds.
SCAN = """
import asyncio, sys

async def probe(host, port, gate, found):
    async with gate:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 3)
        except (OSError, asyncio.TimeoutError):
            return
        found.append(port)
        writer.close()

async def main():
    gate, found = asyncio.Semaphore(400), []
    await asyncio.gather(*(probe(sys.argv[1], port, gate, found) for port in range(1, 65536)))
    print(*sorted(found))

asyncio.run(main())
"""


def open_ports_from(lab: Lab, network: str, targets: list[str]) -> dict[str, set[int]]:
    """What answers on *targets* seen from a namespace of our own with an
    address on *network* only (the second-to-last one; the host has the
    last), plugged into that network's lab bridge: an outsider's view."""
    net = lab.inv.network(network)
    ns, outside = f"sw-{lab.inv.cloud.name}-probe", f"sw{lab.inv.cloud.name}probe"[:15]
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "link", "add", outside, "type", "veth", "peer", "name", "probe0", "netns", ns],
                       check=True)
        subprocess.run(["ip", "link", "set", outside, "master", lab.wiring.segment_of(network).bridge, "up"],
                       check=True)
        inside = ["ip", "netns", "exec", ns]
        subprocess.run([*inside, "ip", "addr", "add", f"{net.cidr.broadcast_address - 2}/{net.cidr.prefixlen}",
                        "dev", "probe0"], check=True)
        subprocess.run([*inside, "ip", "link", "set", "probe0", "up"], check=True)
        return {target: {int(p) for p in subprocess.run([*inside, sys.executable, "-c", SCAN, target],
                                                         capture_output=True, text=True, check=True,
                                                         timeout=600).stdout.split()}
                for target in targets}
    finally:
        subprocess.run(["ip", "link", "del", outside], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", ns], check=True)


def playbook(inventory: Path, lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    """Plain ansible-playbook on the rendered inventory, as an operator runs
    the day-2 actions of the role contract (docs/architecture.md)."""
    repo = INVENTORY.parents[1]
    cloud = load(inventory).cloud.name
    env = dict(os.environ, ANSIBLE_CONFIG=str(repo / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_PRIVATE_KEY_FILE=str(lab.key),
               ANSIBLE_SSH_COMMON_ARGS=f"-o UserKnownHostsFile={lab.known_hosts} -o StrictHostKeyChecking=yes")
    return subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i",
         str(inventory.parent / ".stackwright" / cloud / "inventory"), str(repo / "playbooks" / "site.yml"),
         "-e", f"@{inventory.with_name(cloud + '.secrets.yml')}", *args],
        cwd=repo, env=env, capture_output=True, text=True, check=False, timeout=1800)


def recap_changed(out: str) -> int:
    return sum(int(n) for n in re.findall(r"changed=(\d+)", out.split("PLAY RECAP")[-1]))


def openstack(clouds: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(clouds), OS_CLOUD="e2e")
    exe = Path(sys.executable).with_name("openstack")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, check=False, timeout=120)


@pytest.fixture(scope="module")
def lab_inventory(tmp_path_factory: pytest.TempPathFactory):
    yield from lab_copy(INVENTORY, "aio", "e2e", tmp_path_factory.mktemp("e2e"),
                        {"10.42.": "10.62.", "10.43.": "10.63.", "10.44.": "10.64.", "10.45.": "10.65."})


def test_lab_deploy_verify_and_idempotence(lab_inventory: Path):
    timings: dict[str, float] = {}

    start = time.monotonic()
    sw("lab", "up", str(lab_inventory))
    timings["lab up"] = time.monotonic() - start
    again = sw("lab", "up", str(lab_inventory))  # twice is harmless
    assert "is up" in again.stdout

    start = time.monotonic()
    first = sw("deploy", str(lab_inventory))
    timings["first deploy"] = time.monotonic() - start
    assert "deployed" in first.stdout

    secrets = lab_inventory.with_name("e2e.secrets.yml")
    clouds = lab_inventory.with_name("clouds.yaml")
    for path in (secrets, clouds, lab_inventory.with_name("e2e-openrc.sh")):
        assert path.stat().st_mode & 0o777 == 0o600, path
    # no secret reaches the terminal, nor the run's logs and artifacts: no
    # password, no line of the cloud CA's key (the file's UUIDs are
    # identifiers that Ceph and virsh print, not secrets)
    cloud_secrets = read_secrets(secrets)
    values = secret_values(cloud_secrets)
    artifacts = lab_inventory.parent / ".stackwright" / "e2e" / "runner"
    logged = "\n".join(p.read_text(errors="replace") for p in artifacts.rglob("*") if p.is_file())
    assert len(logged) > 10000, "the run left its event log"
    for value in values:
        assert value not in first.stdout + first.stderr
        assert value not in logged

    token = openstack(clouds, "token", "issue", "-f", "json")
    assert token.returncode == 0, token.stderr
    assert json.loads(token.stdout)["id"]

    endpoints = openstack(clouds, "endpoint", "list", "-f", "json")
    assert endpoints.returncode == 0, endpoints.stderr
    urls = {(e["Service Name"], e["Interface"]): e["URL"] for e in json.loads(endpoints.stdout)}
    for service, port, path in (("keystone", 5000, "/v3"), ("placement", 8778, ""), ("glance", 9292, ""),
                                ("nova", 8774, "/v2.1"), ("neutron", 9696, ""),
                                ("cinder", 8776, "/v3/%(project_id)s")):
        assert urls[(service, "public")] == f"https://10.63.0.11:{port}{path}"  # API network, TLS
        assert urls[(service, "internal")] == f"http://10.62.0.11:{port}{path}"  # management network
        assert urls[(service, "admin")] == f"http://10.62.0.11:{port}{path}"

    # an image goes in and comes back out
    data = lab_inventory.with_name("image.raw")
    data.write_bytes(b"stackwright e2e image\n" * 100)
    created = openstack(clouds, "image", "create", "--disk-format", "raw", "--container-format", "bare",
                        "--file", str(data), "-f", "json", "e2e-image")
    assert created.returncode == 0, created.stderr
    image = json.loads(created.stdout)
    back = lab_inventory.with_name("image.back")
    saved = openstack(clouds, "image", "save", "--file", str(back), image["id"])
    assert saved.returncode == 0, saved.stderr
    assert back.read_bytes() == data.read_bytes()
    # the cloud runs Ceph: the image is kept in its images pool, and deleting
    # the image removes it there
    inv = load(lab_inventory)
    lab = Lab(inv)
    node = inv.nodes[0]

    def rbd_images() -> list[str]:
        return lab_run(lab, node, "rbd", "-p", "images", "ls").split()

    assert image["id"] in rbd_images()
    assert openstack(clouds, "image", "delete", image["id"]).returncode == 0
    assert image["id"] not in rbd_images()
    projects = openstack(clouds, "project", "list", "-f", "value", "-c", "Name")
    assert set(projects.stdout.split()) == {"admin", "service"}

    # the cloud works end to end: a server boots, gets DHCP and metadata,
    # answers on a floating IP from this host, gets a volume; everything is
    # cleaned up
    start = time.monotonic()
    verify = sw("verify", str(lab_inventory), check=False)
    timings["verify"] = time.monotonic() - start
    assert verify.returncode == 0, verify.stdout + verify.stderr + network_report(lab)
    steps = {name: result for result, name in re.findall(r"^\s*(passed|failed|skipped) (.+?) \(", verify.stdout, re.M)}
    assert steps == {
        "services up": "passed", "boot a server": "passed", "DHCP address": "passed", "metadata service": "passed",
        "floating IP answers ping": "passed", "SSH into the guest": "passed", "volume attached": "passed",
        "volume backup and restore": "passed", "orchestration stack": "passed",
        "object storage": "skipped", "clean up": "passed",
    }, verify.stdout
    assert "inside, the guest writes and reads it back as /dev/vdb" in verify.stdout
    assert "attached as /dev/vdc, it holds what the guest wrote" in verify.stdout
    backups = openstack(clouds, "volume", "backup", "list", "--all-projects", "-f", "value", "-c", "ID")
    assert backups.returncode == 0 and backups.stdout.strip() == "", "verify left backups behind"
    assert lab_run(lab, node, "rbd", "-p", "backups", "ls").strip() == "", "a deleted backup left its RBD image"
    keypairs = openstack(clouds, "keypair", "list", "-f", "value", "-c", "Name")
    assert keypairs.returncode == 0 and keypairs.stdout.strip() == "", "verify left its key pair behind"
    volumes = openstack(clouds, "volume", "list", "--all-projects", "-f", "value", "-c", "ID")
    assert volumes.returncode == 0 and volumes.stdout.strip() == "", "verify left volumes behind"
    servers = openstack(clouds, "server", "list", "--all-projects", "-f", "value", "-c", "Name")
    assert servers.stdout.strip() == "", "verify left servers behind"
    flavors = openstack(clouds, "flavor", "list", "-f", "value", "-c", "Name")
    assert {"m1.nano", "m1.tiny", "m1.small"} <= set(flavors.stdout.split())

    # shared services listen on the management address only
    listening = lab_run(lab, node, "ss", "-Hltn")
    local = {line.split()[3] for line in listening.splitlines()}
    for port in ("3306", "5672", "11211", "25672"):
        bound = {a for a in local if a.endswith(f":{port}")}
        assert bound == {f"10.62.0.11:{port}"}, (port, bound)
    # nothing listens on every address but the lab node's own sshd (which
    # Stackwright does not manage); over UDP only chrony's time service, on
    # management
    wildcard = sorted(a for a in on_every_address(local) if not a.endswith(":22"))
    assert wildcard == [], wildcard
    udp = {line.split()[3] for line in lab_run(lab, node, "ss", "-Hlun").splitlines()}
    assert udp == {"10.62.0.11:123"}, udp
    # TLS: on the API address only HAProxy answers (the dashboard on 443,
    # its port 80 redirecting, every API over HTTPS); Apache and the APIs
    # listen on management behind it
    public = set(catalog.public_ports(load(lab_inventory)).values())
    assert {a for a in local if a.startswith("10.63.0.11:")} == {f"10.63.0.11:{p}" for p in public}
    assert {a for a in local if a.endswith(":80")} == {"10.62.0.11:80", "10.63.0.11:80"}
    assert {a for a in local if a.endswith(":443")} == {"10.63.0.11:443"}
    assert {a for a in local if a.endswith(":5000")} == {"10.62.0.11:5000", "10.63.0.11:5000"}
    cacert = credentials.ca_file(load(lab_inventory), lab_inventory)
    assert_https_only("10.63.0.11", cacert)
    # libvirt: TLS on management for live migration, no TCP listener; the
    # noVNC proxy on management behind HAProxy
    assert {a for a in local if a.endswith((":16514", ":16509"))} == {"10.62.0.11:16514"}
    assert {a for a in local if a.endswith(":6080")} == {"10.62.0.11:6080", "10.63.0.11:6080"}
    assert lab_run(lab, node, "virsh", "-c", "qemu+tls://10.62.0.11/system", "hostname").startswith("aio1")
    # From outside, on the API network: only the catalog's public endpoints
    # (and the lab node's own sshd, which Stackwright does not manage) answer
    # on the node's API address; the management address is out of reach
    seen = open_ports_from(lab, "api", ["10.63.0.11", "10.62.0.11"])
    assert seen["10.63.0.11"] == public | {22}, sorted(seen["10.63.0.11"])
    assert seen["10.62.0.11"] == set(), "the management address answers from the API network"
    # ... and on the external network nothing answers on the router's gateway
    router = openstack(clouds, "router", "show", "demo-router", "-f", "json", "-c", "external_gateway_info")
    gateway = json.loads(router.stdout)["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    assert open_ports_from(lab, "external", [gateway]) == {gateway: set()}
    # Ceph: healthy enough to serve (one OSD in the lab: no redundancy warning)
    health = lab_run(lab, node, "ceph", "status", "-f", "json")
    status = json.loads(health)
    assert status["osdmap"]["num_up_osds"] == status["osdmap"]["num_osds"] == 1
    assert {s["state_name"] for s in status["pgmap"]["pgs_by_state"]} == {"active+clean"}, status["pgmap"]

    # Horizon in a real browser: log in, land on the overview page
    start = time.monotonic()
    # Heat's panels (heat-dashboard) and the volume backups panel answer
    shot = horizon_login("https://10.63.0.11/", "admin", cloud_secrets["keystone_admin_password"],
                         ARTIFACTS / "horizon-overview.png", pin=spki_pin("10.63.0.11", 443, cacert),
                         pages={"project/stacks/": "Stacks", "project/backups/": "Backups"})
    timings["horizon login"] = time.monotonic() - start
    assert shot.stat().st_size > 10000
    # RabbitMQ: the guest user is gone, the OpenStack user exists
    users = lab_run(lab, node, "rabbitmqctl", "-q", "list_users")
    assert "openstack" in users and "guest" not in users

    # the fernet keys rotate (a new primary key; tokens from before and
    # after validate), and the deploy below leaves the rotated keys alone
    keys = [int(k) for k in lab_run(lab, node, "ls", "/etc/keystone/fernet-keys").split()]
    rotated = sw("fernet-rotate", str(lab_inventory))
    assert "tokens issued before and after validate" in rotated.stdout, rotated.stdout
    after = [int(k) for k in lab_run(lab, node, "ls", "/etc/keystone/fernet-keys").split()]
    assert max(after) == max(keys) + 1 and 0 in after, (keys, after)

    # every task again: the roles are idempotent; a second deploy started
    # meanwhile is refused, naming the first (the cloud's run lock)
    start = time.monotonic()
    log = lab_inventory.with_name("deploy-full.log")
    with open(log, "w") as out:  # a file, not a pipe: a full pipe would stall the deploy
        running = subprocess.Popen([sys.executable, "-m", "stackwright", "deploy", "--full", str(lab_inventory)],
                                   stdout=out, stderr=subprocess.STDOUT, text=True)
    run_lock = lab_inventory.parent / ".stackwright" / "e2e" / "run.lock"
    deadline = time.monotonic() + 120
    while f"pid {running.pid}:" not in (run_lock.read_text() if run_lock.exists() else ""):
        assert running.poll() is None and time.monotonic() < deadline, "the deploy never took the run lock"
        time.sleep(0.2)
    second = sw("deploy", str(lab_inventory), check=False)
    assert second.returncode != 0
    assert (f"another run is changing cloud 'e2e' from this machine (pid {running.pid}: stackwright deploy --full"
            in " ".join(second.stderr.split())), second.stdout + second.stderr
    assert running.wait(timeout=3600) == 0, log.read_text()[-4000:]
    timings["re-run --full"] = time.monotonic() - start
    summary = last_deploy(lab_inventory)
    assert summary["changed_by_host"] == {"aio1": 0}, summary
    assert summary["skipped_phases"] == [], summary

    # the fast path: the nodes match the last complete deploy, no phase runs
    start = time.monotonic()
    fast = sw("deploy", str(lab_inventory))
    timings["re-run"] = time.monotonic() - start
    summary = last_deploy(lab_inventory)
    assert summary["changed_by_host"] == {"aio1": 0}, summary
    assert "nothing to do" in fast.stdout, fast.stdout
    assert summary["skipped_phases"] == PHASES, summary
    assert [p["name"] for p in summary["phases"]] == ["check"], summary

    # the role contract's actions, through plain ansible-playbook: reconfigure
    # rewrites a service's configuration and restarts it, and runs none of
    # its install, bootstrap or register steps
    def glance_started() -> str:
        return lab_run(lab, node, "systemctl", "show", "-p", "ActiveEnterTimestampMonotonic", "glance-api")

    started = glance_started()
    debug = playbook(lab_inventory, lab, "--tags", "glance", "-e", "stackwright_action=reconfigure",
                     "-e", '{"glance_api_conf_overrides": {"DEFAULT": {"debug": true}}}')
    assert debug.returncode == 0, debug.stdout[-3000:]
    assert "debug = true" in lab_run(lab, node, "grep", "^debug", "/etc/glance/glance-api.conf")
    assert glance_started() != started, "glance-api was not restarted"
    assert "Migrate the glance schema" not in debug.stdout and "Install Glance" not in debug.stdout
    assert "Keystone user, catalog entry" not in debug.stdout, debug.stdout[-3000:]
    back = playbook(lab_inventory, lab, "--tags", "glance", "-e", "stackwright_action=reconfigure")
    assert back.returncode == 0 and recap_changed(back.stdout) > 0, back.stdout[-3000:]
    again = playbook(lab_inventory, lab, "--tags", "glance", "-e", "stackwright_action=reconfigure")
    assert again.returncode == 0 and recap_changed(again.stdout) == 0, again.stdout[-3000:]
    assert lab_run(lab, node, "systemctl", "is-active", "glance-api").strip() == "active"
    # ... and stop stops the role's units (those the catalog gives its groups)
    stop = playbook(lab_inventory, lab, "--tags", "memcached", "-e", "stackwright_action=stop")
    assert stop.returncode == 0 and recap_changed(stop.stdout) == 1, stop.stdout[-3000:]
    assert lab_run(lab, node, "systemctl", "is-active", "memcached", check=False).strip() == "inactive"

    # ... but it sees drift: an edited config file and the stopped service
    # make their phase (and only it) run, which puts both back
    conf = "/etc/chrony/chrony.conf"
    before = lab_run(lab, node, "sha256sum", conf)
    lab_run(lab, node, f"echo '# a local edit' >> {conf}")  # one string: ssh hands it to a shell
    drift = sw("deploy", str(lab_inventory))
    summary = last_deploy(lab_inventory)
    assert "time runs: aio1: /etc/chrony/chrony.conf changed" in drift.stdout, drift.stdout
    assert re.search(r"memcached runs: aio1: memcached(\.service)? was active \S+, is inactive", drift.stdout), \
        drift.stdout
    assert set(PHASES) - set(summary["skipped_phases"]) == {"time", "memcached"}, summary
    assert summary["changed_by_host"]["aio1"] > 0, summary
    assert lab_run(lab, node, "sha256sum", conf) == before
    assert lab_run(lab, node, "systemctl", "is-active", "memcached").strip() == "active"

    # backup, a damaged database, restore: the cloud works again
    start = time.monotonic()
    made = sw("backup", "--format", "json", str(lab_inventory))
    timings["backup"] = time.monotonic() - start
    archive = Path(json.loads(made.stdout)["archive"])
    assert archive.stat().st_mode & 0o777 == 0o600
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"manifest.json", "mariadb.tar.gz", "keystone-keys.tar.gz", "ceph-keys.tar.gz", "secrets.yml",
            "inventory.yml", "rendered/hosts.yml"} <= names, names
    lab_run(lab, node, "mariadb -e 'SET FOREIGN_KEY_CHECKS=0; DROP TABLE glance.images'")
    broken = openstack(clouds, "image", "list")
    assert broken.returncode != 0 and "500" in broken.stdout + broken.stderr, broken
    start = time.monotonic()
    restored = sw("restore", "--yes", str(lab_inventory), str(archive), check=False)
    timings["restore and verify"] = time.monotonic() - start
    assert restored.returncode == 0, restored.stdout[-3000:] + restored.stderr + network_report(lab)
    assert "restored the databases and Keystone's keys" in restored.stdout
    assert "cloud 'e2e' verified" in restored.stdout, restored.stdout[-3000:]
    images = openstack(clouds, "image", "list", "-f", "value", "-c", "Name")
    assert "stackwright-testguest" in images.stdout.split(), images
    kept = lab_run(lab, node, "ls", "-d", "/var/lib/mysql.before-restore-*")
    assert kept.strip(), "the replaced data folder was not kept"

    # after the fernet rotation, the --full re-run, the role actions, a
    # backup and a restore, no secret is anywhere it must not be: in an
    # output, this machine's work folder, a node's logs or journal, or a
    # file every user reads
    start = time.monotonic()
    leaks = secrets_leaked(lab, lab_inventory.parent / ".stackwright" / "e2e", values)
    timings["secret scan"] = time.monotonic() - start
    assert leaks == [], leaks

    print("\nlab e2e timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))


def test_lab_down_removes_what_it_made(lab_inventory: Path):
    inv = load(lab_inventory)
    sw("lab", "up", str(lab_inventory))
    sw("lab", "down", str(lab_inventory))
    lab = Lab(inv)
    assert not lab.dir.exists()
    for seg in segments(inv):
        assert not Path(f"/sys/class/net/{seg.bridge}").exists()
    assert not Path(f"/run/netns/{lab.netns(inv.nodes[0])}").exists()
    devices = {seg.bridge for seg in segments(inv)}
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout.splitlines()
    left = [r for r in rules if "stackwright-lab" in r and any(f" {d} " in r for d in devices)]
    assert not left, f"iptables rules left behind: {left}"
    if not any(d.is_dir() for d in lab.dir.parent.iterdir()):
        assert not alive(proxy_dir() / "pid"), "the shared apt proxy outlives the last lab"
    assert lab.image.exists(), "the base image is kept for the next lab"
