# alfred.tee_kms — two commands on a fresh machine with Python 3:
#   make demo   a full key rotation against simulated enclaves
#   make test   every check (unit, integration, AWS KMS API server, lint, sanity, molecule)
# Both create .venv from the pinned requirement files and make the collection resolve from
# this checkout (.collections/ansible_collections/alfred/tee_kms -> .), no ansible-galaxy step.

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
COLLECTION_LINK := .collections/ansible_collections/alfred/tee_kms
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(BIN):$(PATH)

.PHONY: all setup demo build test pytest leg-venvs unit lint docs sanity molecule oldest newest bench clean

all: test

$(VENV)/.installed: requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn $(CURDIR) $@

setup: $(VENV)/.installed $(COLLECTION_LINK)

demo: setup
	$(BIN)/python tools/demo/run_demo.py $(if $(ARGS),--ansible-args "$(ARGS)")

# The collection tarball as released (build_ignore applied, changelog generated) in dist/;
# install it with: ansible-galaxy collection install dist/alfred-tee_kms-<version>.tar.gz
build: setup
	tools/build_collection.sh dist $(VENV)

# First a guard: the suites are collected twice and must give the same test ids (xdist workers
# refuse to run otherwise). Then one pytest run for every Python-driven suite (one summary
# line) while the venvs of the ansible-core legs are built beside it; then the ecosystem checks
# and the oldest/newest ansible-core legs, three at a time, each reported even when another
# fails (-k; each works on its own copy, venv or ports). pytest uses two workers, each test file on one worker (module-scoped simulators
# and KMS servers): most of its time is spent waiting on ansible-playbook and server
# subprocesses. Each phase prints its wall time; -O keeps each job's output together.
PYTEST_SUITES := tests/meta tests/unit tests/integration tests/aws tests/vault tests/awx tests/ee tests/docs
PHASE = start=$$(date +%s); $(1); rc=$$?; echo "make test: $(2) took $$(( $$(date +%s) - start )) s (exit $$rc)"; exit $$rc
CHECKS := lint sanity docs oldest newest $(if $(wildcard molecule/default/molecule.yml),molecule)

test: setup
	@$(call PHASE,$(BIN)/python tests/meta/check_collection.py $(PYTEST_SUITES),collection check)
	@$(call PHASE,$(MAKE) --no-print-directory -j2 -O pytest leg-venvs,pytest)
	@$(call PHASE,$(MAKE) --no-print-directory -k -j3 -O $(CHECKS),$(CHECKS))

pytest: setup
	@$(call PHASE,$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=20 $(PYTEST_SUITES),pytest suites)

leg-venvs:
	tests/legs/run.sh oldest setup
	tests/legs/run.sh newest setup

unit: setup
	$(BIN)/python -m pytest -q tests/unit

# awx.awx (for playbooks/awx_configure.yml) comes from the PyPI `ansible` wheel: no Galaxy here.
# ANSIBLE_HOME keeps ansible-lint's cache (its installed copy of this collection) in .cache/
# instead of ~/.ansible, where another checkout's copy would be shared or stale.
lint: setup
	tests/awx/fetch_awx_collection.sh $(VENV)
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.collections:$(CURDIR)/.cache/collections ANSIBLE_HOME=$(CURDIR)/.cache/ansible-lint \
	  $(BIN)/ansible-lint --profile production

docs: setup
	tests/docs/run_docs_lint.sh $(VENV)

sanity: setup
	tests/sanity/run.sh $(VENV) 3.11

# A free loopback port for the scenario's simulator and molecule's state inside this checkout
# (by default it is keyed by the checkout's folder name, shared by every clone called "main").
molecule: setup
	cd $(CURDIR) && TEE_KMS_MOLECULE_PORT=$$($(BIN)/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') \
	  MOLECULE_EPHEMERAL_DIRECTORY=$(CURDIR)/.cache/molecule $(BIN)/molecule test

# The oldest ansible-core the collection claims (requires_ansible) on python3, and the newest
# ansible-core on the newest Python this machine has (skipped with a message when there is none
# newer than the default one): unit tests and real playbook runs on each.
oldest newest: setup
	tests/legs/run.sh $@

# BENCH_SEQUENTIAL: how many rotations bench_workflow runs one after the other (issue 15's table: 50).
BENCH_SEQUENTIAL ?= 50
bench: setup
	BENCH_SEQUENTIAL=$(BENCH_SEQUENTIAL) $(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .venv-oldest .venv-newest .collections .cache artifacts dist tests/output benchmarks/results
