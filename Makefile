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

.PHONY: all setup demo test unit lint docs sanity molecule newest bench clean

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

# One pytest run for every Python-driven suite (one summary line), then the ecosystem checks.
# Two workers, each test file on one worker (module-scoped simulators and KMS servers): most of
# the time is spent waiting on ansible-playbook and server subprocesses.
test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests/unit tests/integration tests/aws tests/awx tests/ee
	$(MAKE) --no-print-directory lint sanity docs
	$(if $(wildcard molecule/default/molecule.yml),$(MAKE) --no-print-directory molecule)
	$(MAKE) --no-print-directory newest

unit: setup
	$(BIN)/python -m pytest -q tests/unit

# awx.awx (for playbooks/awx_configure.yml) comes from the PyPI `ansible` wheel: no Galaxy here.
lint: setup
	tests/awx/fetch_awx_collection.sh $(VENV)
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.collections:$(CURDIR)/.cache/collections $(BIN)/ansible-lint --profile production

docs: setup
	tests/docs/run_docs_lint.sh $(VENV)

sanity: setup
	tests/sanity/run.sh $(VENV) 3.11

molecule: setup
	cd $(CURDIR) && $(BIN)/molecule test

# The newest ansible-core on the newest Python this machine has (skipped with a message
# when there is none newer than the default one).
newest: setup
	tests/newest/run.sh

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .venv-newest .collections .cache artifacts tests/output benchmarks/results
