"""Every validation error class: the message names the field and the fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from stackwright.loader import load_problems
from stackwright.problems import format_path

VALID = """\
cloud:
  name: test
networks:
  - name: mgmt
    role: management
    cidr: 10.10.0.0/24
  - name: api
    role: api
    cidr: 10.11.0.0/24
  - name: tenant
    role: tenant
    cidr: 10.12.0.0/24
  - name: ext
    role: external
    cidr: 10.13.0.0/24
    gateway: 10.13.0.1
nodes:
  - name: ctl1
    roles: [controller, network]
    nics: [{name: eth0}, {name: eth1}, {name: eth2}]
    networks:
      mgmt: {interface: eth0, address: 10.10.0.11}
      api: {interface: eth0, address: 10.11.0.11}
      tenant: {interface: eth1, address: 10.12.0.11}
      ext: {interface: eth2, address: 10.13.0.11}
  - name: cmp1
    roles: [compute]
    nics: [{name: eth0}, {name: eth1}]
    networks:
      mgmt: {interface: eth0, address: 10.10.0.21}
      tenant: {interface: eth1, address: 10.12.0.21}
"""


def problems_for(tmp_path: Path, text: str):
    path = tmp_path / "inv.yml"
    path.write_text(textwrap.dedent(text))
    inv, problems = load_problems(path)
    return inv, problems


# VALID is the seeds' first layout (seed 003): a controller that also runs
# the Neutron agents and a compute node, no storage node.
NO_STORAGE = ("inv.yml:17: warning: nodes: cinder is left out: no node has the storage role, so there is no volume "
              "backend (Ceph or LVM) for Cinder: the cloud has no block storage (no volume endpoint, no volume "
              "panels in Horizon)\n    fix: add the storage role to a node (with services.ceph, or an LVM volume "
              "group) for block storage")


NO_FLOATING = ("inv.yml:13: warning: networks[3]: no external network with a floating_range: the cloud gets no "
               "external (provider) network, so routers have no gateway and instances no floating IPs (verify skips "
               "that step)\n    fix: add `floating_range: {start: ..., end: ...}` to the network with `role: "
               "external`")


def others(problems) -> list:
    """The problems besides VALID's own warnings: no storage, no floating IPs."""
    return [p for p in problems if not p.message.startswith(("cinder is left out", "no external network with"))]


def errors(tmp_path: Path, text: str) -> list[str]:
    inv, problems = problems_for(tmp_path, text)
    assert inv is None, "expected the inventory to be rejected"
    return [p.render("inv.yml") for p in problems if p.severity == "error"]


def test_valid_inventory_without_storage_is_warned_of_its_missing_block_storage(tmp_path):
    inv, problems = problems_for(tmp_path, VALID)
    assert inv is not None
    assert [p.render("inv.yml") for p in problems] == [NO_FLOATING, NO_STORAGE]


def test_a_storage_node_gives_the_cloud_block_storage(tmp_path):
    inv, problems = problems_for(tmp_path, VALID.replace("roles: [compute]", "roles: [compute, storage]")
                                 .replace("  name: test\n", "  name: test\n  services: {ceph: true}\n")
                                 .replace("    gateway: 10.13.0.1\n", "    gateway: 10.13.0.1\n"
                                          "    floating_range: {start: 10.13.0.100, end: 10.13.0.199}\n"))
    assert inv is not None
    assert problems == []


@pytest.mark.parametrize("name", ["aio.yml", "multinode.yml"])
def test_example_inventories_are_valid(name):
    inv, problems = load_problems(Path(__file__).parents[2] / "inventories" / name)
    assert inv is not None, [p.render(name) for p in problems]
    assert [p for p in problems if p.severity == "error"] == []


# (description, old text, new text, expected line, expected substrings)
CASES = [
    ("unknown key with did-you-mean", "  name: test\n", "  name: test\n  regoin: x\n", 3,
     ["cloud.regoin: unknown key 'regoin'", "did you mean 'region'?"]),
    ("missing required field", "  - name: mgmt\n    role: management\n    cidr: 10.10.0.0/24\n",
     "  - name: mgmt\n    role: management\n", 4, ["networks[0].cidr: required field is missing", "add `cidr:`"]),
    ("malformed CIDR", "cidr: 10.12.0.0/24", "cidr: 10.12.0.0/33", 12,
     ["networks[2].cidr: '10.12.0.0/33' is not a valid IPv4 network"]),
    ("CIDR with host bits", "cidr: 10.12.0.0/24", "cidr: 10.12.0.5/24", 12, ["no host bits set"]),
    ("malformed address", "address: 10.10.0.21}", "address: 10.10.0.321}", 30,
     ["nodes[1].networks.mgmt.address: '10.10.0.321' is not a valid IPv4 address"]),
    ("address outside its network", "address: 10.10.0.21}", "address: 10.99.0.21}", 30,
     ["10.99.0.21 is outside network 'mgmt' (10.10.0.0/24)", "use an address inside 10.10.0.0/24"]),
    ("duplicate node name", "  - name: cmp1\n", "  - name: ctl1\n", 26,
     ["nodes[1].name: node name 'ctl1' is already used by nodes[0]"]),
    ("duplicate address", "address: 10.10.0.21}", "address: 10.10.0.11}", 30,
     ["address 10.10.0.11 is already used by node 'ctl1'", "give every node its own address"]),
    ("overlapping networks", "cidr: 10.13.0.0/24", "cidr: 10.12.0.0/23", 15,
     ["networks[3].cidr: 10.12.0.0/23 overlaps network 'tenant' (10.12.0.0/24)"]),
    ("NIC used twice (bond member and direct)",
     "    nics: [{name: eth0}, {name: eth1}]\n",
     "    nics: [{name: eth0}, {name: eth1}, {name: eth2}]\n    bonds: [{name: bond0, members: [eth1, eth2]}]\n",
     32, ["NIC 'eth1' is used twice", "attach 'tenant' to 'bond0' instead"]),
    ("bond with one member",
     "    nics: [{name: eth0}, {name: eth1}]\n",
     "    nics: [{name: eth0}, {name: eth1}, {name: eth2}]\n    bonds: [{name: bond0, members: [eth2]}]\n",
     29, ["bond 'bond0' has 1 member(s); a bond needs at least two"]),
    ("compute without tenant", "      tenant: {interface: eth1, address: 10.12.0.21}\n", "", 29,
     ["node 'cmp1' has role compute but no tenant network"]),
    ("network node without external", "      ext: {interface: eth2, address: 10.13.0.11}\n", "", 21,
     ["node 'ctl1' has role network but no external network"]),
    ("node without management", "      mgmt: {interface: eth0, address: 10.10.0.21}\n", "", 29,
     ["node 'cmp1' is not on the management network"]),
    ("no controller", "roles: [controller, network]", "roles: [network]", 17,
     ["nodes: no node has the controller role"]),
    ("unknown role with did-you-mean", "roles: [compute]", "roles: [compte]", 27,
     ["'compte' is not allowed", "did you mean 'compute'?"]),
    ("interface that is not a NIC", "tenant: {interface: eth1, address: 10.12.0.21}",
     "tenant: {interface: eth7, address: 10.12.0.21}", 31, ["'eth7' is neither a NIC nor a bond of node 'cmp1'"]),
    ("unknown network on a node", "      tenant: {interface: eth1, address: 10.12.0.21}\n",
     "      tenant: {interface: eth1, address: 10.12.0.21}\n      tenat: {interface: eth1, address: 10.12.0.22}\n",
     32, ["unknown network 'tenat'", "did you mean 'tenant'?"]),
    ("gateway outside its network", "gateway: 10.13.0.1", "gateway: 10.14.0.1", 16,
     ["gateway 10.14.0.1 is outside the network 10.13.0.0/24"]),
    ("several controllers without a VIP", "roles: [compute]", "roles: [compute, controller]", 1,
     ["2 controllers need a virtual IP"]),
    ("invalid node name", "  - name: cmp1\n", "  - name: Cmp_1\n", 26, ["'Cmp_1' is not a valid name here"]),
]


@pytest.mark.parametrize(("old", "new", "line", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_error_classes(tmp_path, old, new, line, expected):
    assert old in VALID
    found = errors(tmp_path, VALID.replace(old, new, 1))
    joined = "\n".join(found)
    for text in expected:
        assert text in joined, joined
    assert any(f.startswith(f"inv.yml:{line}: error:") for f in found if expected[0].split(":")[0] in f), joined


def test_every_problem_is_reported_at_once(tmp_path):
    text = VALID.replace("address: 10.10.0.21}", "address: 10.99.0.21}").replace(
        "roles: [controller, network]", "roles: [network]"
    ).replace("gateway: 10.13.0.1", "gateway: 10.14.0.1")
    found = errors(tmp_path, text)
    assert len(found) == 3, found


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", "the file is empty"),
        ("cloud: [\n", "YAML syntax error"),
        ("- a\n- b\n", "the top level must be a mapping, not a list"),
        ("cloud: {name: a}\ncloud: {name: b}\n", "duplicate key"),
        ("cloud: {name: x}\nnetworks: []\nnodes: []\n", "List should have at least 1 item"),
        ("cloud: {name: x, ssh: {port: 99999999999999999999}}\nnetworks: []\nnodes: []\n",
         "less than or equal to 65535"),
        ("cloud: {name: \u00e9t\u00e9}\n", "'\u00e9t\u00e9' is not a valid name here"),
        ("cloud: 5\nnetworks: 3\nnodes: x\n", "value should be a valid"),
    ],
)
def test_bad_files_never_traceback(tmp_path, content, expected):
    path = tmp_path / "bad.yml"
    path.write_text(content)
    inv, problems = load_problems(path)
    assert inv is None
    assert any(expected in p.render("bad.yml") for p in problems), [p.render("bad.yml") for p in problems]


def test_missing_file_and_directory(tmp_path):
    _, problems = load_problems(tmp_path / "nope.yml")
    assert problems[0].message == "file not found"
    _, problems = load_problems(tmp_path)
    assert problems[0].message == "is a directory, not an inventory file"


def test_binary_file(tmp_path):
    path = tmp_path / "bin.yml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    _, problems = load_problems(path)
    assert "not UTF-8 text" in problems[0].message


def test_unused_network_is_a_warning_only(tmp_path):
    text = VALID.replace("nodes:\n", "  - name: spare\n    role: storage\n    cidr: 10.20.0.0/24\nnodes:\n", 1)
    inv, problems = problems_for(tmp_path, text)
    assert inv is not None
    assert [p.severity for p in others(problems)] == ["warning"]
    assert "network 'spare' is not attached to any node" in others(problems)[0].message


def test_format_path():
    assert format_path(("nodes", 0, "networks", "mgmt", "address")) == "nodes[0].networks.mgmt.address"
    assert format_path(()) == "(top level)"


# More error classes on the same base: (id, old, new, expected substrings)
MORE = [
    ("duplicate network name", "  - name: api\n", "  - name: mgmt\n",
     ["network name 'mgmt' is already used by networks[0]"]),
    ("no management network", "    role: management\n", "    role: storage\n",
     ["no network has role `management`", "node 'ctl1' is not on the management network"]),
    ("two management networks", "    role: api\n", "    role: management\n",
     ["only one management network is supported"]),
    ("network too small", "cidr: 10.11.0.0/24", "cidr: 10.11.0.0/31", ["10.11.0.0/31 is too small to hold nodes"]),
    ("duplicate MAC", "nics: [{name: eth0}, {name: eth1}]\n", "nics: [{name: eth0, mac: '52:54:00:00:00:01'}, "
     "{name: eth1, mac: '52:54:00:00:00:01'}]\n", ["MAC 52:54:00:00:00:01 is already used by nodes[1].nics[0]"]),
    ("invalid MAC", "nics: [{name: eth0}, {name: eth1}]\n", "nics: [{name: eth0, mac: '52:54:00'}, {name: eth1}]\n",
     ["'52:54:00' is not a valid name here", "six hex pairs"]),
    ("NIC listed twice", "nics: [{name: eth0}, {name: eth1}]\n", "nics: [{name: eth0}, {name: eth1}, {name: eth1}]\n",
     ["NIC 'eth1' is listed twice"]),
    ("bond named like a NIC", "nics: [{name: eth0}, {name: eth1}]\n",
     "nics: [{name: eth0}, {name: eth1}, {name: eth2}, {name: eth3}]\n"
     "    bonds: [{name: eth1, members: [eth2, eth3]}]\n", ["bond 'eth1' has the name of a NIC"]),
    ("bond member that is not a NIC", "nics: [{name: eth0}, {name: eth1}]\n",
     "nics: [{name: eth0}, {name: eth1}, {name: eth2}]\n    bonds: [{name: bond0, members: [eth2, eth9]}]\n",
     ["'eth9' is not a NIC of node 'cmp1'"]),
    ("NIC in two bonds", "nics: [{name: eth0}, {name: eth1}]\n",
     "nics: [{name: eth0}, {name: eth1}, {name: eth2}, {name: eth3}]\n"
     "    bonds: [{name: bond0, members: [eth2, eth3]}, {name: bond1, members: [eth3, eth2]}]\n",
     ["NIC 'eth3' is used twice: already a member of bond 'bond0'"]),
    ("two networks of one role on a node", "      mgmt: {interface: eth0, address: 10.10.0.21}\n",
     "      mgmt: {interface: eth0, address: 10.10.0.21}\n      api: {interface: eth0, address: 10.11.0.21}\n"
     "      spare: {interface: eth0, address: 10.20.0.21}\n",
     ["node is on two management networks ('mgmt' and 'spare')"]),
    ("network address", "address: 10.10.0.21}", "address: 10.10.0.0}",
     ["10.10.0.0 is the network or broadcast address of 10.10.0.0/24"]),
    ("address equal to the gateway", "    cidr: 10.13.0.0/24\n    gateway: 10.13.0.1\n",
     "    cidr: 10.13.0.0/24\n    gateway: 10.13.0.11\n", ["10.13.0.11 is the gateway of network 'ext'"]),
    ("controller without api", "      api: {interface: eth0, address: 10.11.0.11}\n", "",
     ["controller 'ctl1' is not on the api network"]),
    ("internal VIP outside management", "  name: test\n", "  name: test\n  internal_vip: 10.11.0.5\n",
     ["10.11.0.5 is outside the management network 'mgmt' (10.10.0.0/24)"]),
    ("swift without storage nodes", "  name: test\n", "  name: test\n  services: {swift: true}\n",
     ["swift needs nodes with the storage role"]),
    ("cinder-backup without storage nodes", "  name: test\n", "  name: test\n  services: {cinder_backup: true}\n",
     ["cloud.services.cinder_backup: cinder_backup cannot be deployed here: no node has the storage role"]),
    ("wrong type", "    roles: [compute]\n", "    roles: compute\n", ["value should be a valid list"]),
    ("fence agent not supported", "    roles: [compute]\n",
     "    roles: [compute]\n    fence: {agent: redfish, address: 10.99.0.5, username: admin}\n",
     ["nodes[1].fence.agent", "'ipmilan'"]),
    ("fence user name too long for IPMI", "    roles: [compute]\n",
     "    roles: [compute]\n    fence: {agent: ipmilan, address: 10.99.0.5, username: a-very-long-user-name}\n",
     ["nodes[1].fence.username"]),
    ("fence address not a host", "    roles: [compute]\n",
     "    roles: [compute]\n    fence: {agent: ipmilan, address: 'bmc;reboot', username: admin}\n",
     ["nodes[1].fence.address", "neither an IPv4 address nor a DNS name"]),
]


def test_two_nodes_on_one_bmc_would_fence_each_other(tmp_path):
    fence = "    fence: {agent: ipmilan, address: 10.99.0.5, username: admin}\n"
    text = VALID.replace("    roles: [controller, network]\n", "    roles: [controller, network]\n" + fence)
    text = text.replace("    roles: [compute]\n", "    roles: [compute]\n" + fence)
    assert "nodes[1].fence: fence device 10.99.0.5:623 is already nodes[0]'s" in "\n".join(errors(tmp_path, text))
    other_port = text.replace("username: admin}\n", "username: admin, port: 624}\n", 1)
    assert others(problems_for(tmp_path, other_port)[1]) == []


@pytest.mark.parametrize(("old", "new", "expected"), [c[1:] for c in MORE], ids=[c[0] for c in MORE])
def test_more_error_classes(tmp_path, old, new, expected):
    base = VALID.replace("nodes:\n", "  - name: spare\n    role: management\n    cidr: 10.20.0.0/24\nnodes:\n", 1) \
        if "spare" in new else VALID
    assert old in base
    found = "\n".join(errors(tmp_path, base.replace(old, new, 1)))
    for text in expected:
        assert text in found, found


def test_duplicate_role_is_a_warning(tmp_path):
    inv, problems = problems_for(tmp_path, VALID.replace("roles: [compute]", "roles: [compute, compute]"))
    assert inv is not None
    assert [p.render("inv.yml") for p in others(problems)] == [
        "inv.yml:27: warning: nodes[1].roles: role 'compute' is listed more than once\n    fix: list each role once"
    ]


def test_file_too_large(tmp_path, monkeypatch):
    from stackwright import loader

    monkeypatch.setattr(loader, "MAX_BYTES", 100)
    path = tmp_path / "big.yml"
    path.write_text(VALID)
    _, problems = load_problems(path)
    assert problems[0].message == f"file is {len(VALID)} bytes; inventories are limited to 100"
