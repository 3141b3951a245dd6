# Stackwright developer and demo entry points.  Run as root on Debian 12.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SW := $(VENV)/bin/stackwright
INVENTORY ?= inventories/aio.yml
# fence-agents and ipmitool fence nodes through their BMCs (node evacuate,
# node power); openipmi simulates the lab nodes' BMCs
HOST_PACKAGES := python3-venv python3-pip systemd-container debootstrap apt-cacher-ng iptables openssh-client iproute2 graphviz openvswitch-switch ethtool iputils-ping fence-agents ipmitool openipmi
# for the tests only: Horizon is logged into with a headless browser; the
# Tempest workspace set-up runs the real `tempest init`
TEST_HOST_PACKAGES := chromium chromium-driver tempest

.PHONY: demo test check interrupt-test ha-test multinode-test install host-packages test-host-packages lint unit e2e molecule bench tempest clean lab-down

# Install the tool, bring up the aio lab and deploy it.
demo: install
	$(SW) validate $(INVENTORY)
	$(SW) lab up $(INVENTORY)
	$(SW) deploy $(INVENTORY)
	$(SW) verify $(INVENTORY)
	@echo
	@echo "The cloud is up.  Use it from this machine:"
	@echo "  export OS_CLIENT_CONFIG_FILE=$(CURDIR)/inventories/clouds.yaml OS_CLOUD=aio"
	@echo "  $(VENV)/bin/openstack server list; $(VENV)/bin/openstack network list"
	@echo "  $(SW) lab ssh $(INVENTORY) aio1      # a shell on the node"
	@echo "  $(SW) lab down $(INVENTORY)          # remove the lab"

# Lint, unit tests, the end-to-end lab tests (aio: lab up, deploy, verify,
# Horizon in Chromium, fernet rotation, idempotent re-run, backup, a
# damaged database, restore, lab down; HA: three controllers behind VIPs
# with TLS, verify, a power cut of the public VIP's holder, verify with a
# controller down, its return to every cluster, live and cold migration,
# evacuation through a compute node's BMC, changed=0, recover database; the
# Fuel-style host networking; fencing on a lab node) and the roles'
# molecule scenarios.  To stay well inside CI's 80 minutes, the scenarios
# of the roles the end-to-end tests deploy and exercise in the same run are
# left to `make molecule`: Keystone (tokens, catalog), Heat (a stack with a
# server and a floating IP), Placement and Nova (a server boots, moves, is
# evacuated), Glance (an image round trip), Neutron (DHCP, metadata,
# floating IP), Ceph and Cinder (a volume seen by the guest), Horizon (a
# login in Chromium), memcached and RabbitMQ (a broker and a cluster of
# three), the Galera cluster (mariadb/cluster) and the pacemaker cluster
# (VIPs, HAProxy, fencing), HAProxy alone with TLS (haproxy/default: the
# aio cloud runs it so), host networking and Open vSwitch (the
# Fuel-style host networking e2e: bonds, VLANs, LACP failover, reboot,
# rollback) and the packages phase (every deploy of the e2e tests).  What
# the e2e tests do not check runs here: chrony's lone time server,
# MariaDB's account clean-up, the certificates' renewal, apt behind a hung
# proxy, Swift (no e2e deploys it yet: an object stored and read back, the
# rings, the listeners).  The multinode end-to-end test (drain, node add
# and remove on a one-controller cloud) is `make multinode-test`.
CI_MOLECULE_SKIP ?= keystone/default placement/default glance/default nova/default neutron/default \
  cinder/default ceph/default horizon/default memcached/default rabbitmq/default host_network/default \
  openvswitch/default packages/default rabbitmq/cluster heat/default pacemaker/default mariadb/cluster \
  haproxy/default
test: install test-host-packages
	$(MAKE) lint
	$(PY) -m pytest -q -ra --instafail --durations=15 tests
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH MOLECULE_SKIP="$(CI_MOLECULE_SKIP)" scripts/molecule-all

# Lint and unit tests only: no root, no apt, no lab (a contributor's laptop
# with Python 3.11 will do; the tests that need Debian's tempest skip).
check: $(VENV)/.installed
	$(MAKE) lint
	STACKWRIGHT_CHECK=1 $(PY) -m pytest -q -m "not lab" tests/unit

# Deploys killed at five points (mid-install, the Ceph OSD, Keystone's
# schema migration, a power cut in Nova's, the test guest's build), then
# a deploy to the end, verify and deploy --full with changed=0; about 30
# min on one aio lab, outside CI's budget.
interrupt-test: install test-host-packages
	STACKWRIGHT_INTERRUPT_TEST=1 $(PY) -m pytest -q -ra -s tests/e2e/test_interrupted_deploy.py

# The HA lab end to end alone (tests/e2e/test_ha_lab.py, which CI runs
# among the others).
ha-test: install test-host-packages
	$(PY) -m pytest -q -ra -s tests/e2e/test_ha_lab.py

# The multinode lab end to end (one controller, a network node, two compute
# nodes, a storage node): deploy, verify --lifecycle, live and cold
# migration, drain, enable through its playbook, evacuation, check, node add
# and node remove; half an hour, outside CI's budget (the HA test there
# covers the migrations and the evacuation).
multinode-test: install test-host-packages
	STACKWRIGHT_MULTINODE_TEST=1 $(PY) -m pytest -q -ra -s tests/e2e/test_multinode_lab.py

# Every molecule scenario (converge, idempotence, verify) on lab nodes.
molecule: install
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH scripts/molecule-all

install: host-packages $(VENV)/.installed

test-host-packages:
	@if ! dpkg -s $(TEST_HOST_PACKAGES) >/dev/null 2>&1; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(TEST_HOST_PACKAGES); \
	fi

host-packages:
	@if ! dpkg -s $(HOST_PACKAGES) >/dev/null 2>&1; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(HOST_PACKAGES); \
	fi

$(VENV)/.installed: pyproject.toml $(shell git ls-files stackwright roles playbooks templates plugins inventories ansible.cfg 2>/dev/null)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q '.[test]'
	touch $@

# Figures, not tests: inventory scale, then lab deploys (aio, multinode)
# with per-phase times, re-run and the apt floor.  Results in bench/results/.
bench: install
	$(PY) -m pip install -q '.[bench]'
	mkdir -p bench/results
	$(PY) bench/inventory_scale.py --json bench/results/inventory.json
	$(PY) bench/deploy.py --chart

# Tempest beyond CI's time: the built-in lab (INVENTORY, aio by default)
# up and deployed, then TEMPEST_SET (full: every API test and the scenario
# tests, hours under qemu emulation; or smoke, scenario, nova,neutron...).
# The table per service is printed; the summary is kept beside the lab's
# work folder (tempest-summary.json).
TEMPEST_SET ?= full
tempest: install test-host-packages
	$(SW) lab up $(INVENTORY)
	$(SW) deploy $(INVENTORY)
	$(SW) verify --tempest --tempest-set $(TEMPEST_SET) $(INVENTORY)

lint:
	$(VENV)/bin/ruff check stackwright tests plugins bench
	$(VENV)/bin/mypy stackwright
	# the filter plugin's module is also named stackwright: checked on its own
	$(VENV)/bin/mypy plugins/filter
	$(VENV)/bin/mypy plugins/modules
	$(VENV)/bin/yamllint -s roles playbooks inventories molecule .config
	ANSIBLE_CONFIG=$(CURDIR)/ansible.cfg $(VENV)/bin/ansible-lint -q playbooks roles molecule

unit: install
	$(PY) -m pytest -q -m "not lab" tests

e2e: install
	$(PY) -m pytest -q -m lab tests

lab-down:
	$(SW) lab down $(INVENTORY)

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
