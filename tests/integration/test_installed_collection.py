# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection installs and runs like any other: the released tarball (tools/build_collection.sh:
ansible-galaxy collection build, changelog generated) is installed with `ansible-galaxy collection
install -p` into an empty path, and `ansible-playbook alfred.tee_kms.rotate` runs from that copy,
rehearsal then live, with evidence, in a directory without the repository's ansible.cfg, against
a real enclave simulator fleet and the local KMS.

Run: .venv/bin/python -m pytest tests/integration/test_installed_collection.py
"""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "tools" / "enclave_sim"))

from fleet import SimulatorFleet  # noqa: E402  (helper outside the collection)

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider  # noqa: E402

KEY_ID = "tokens/installed"
CURRENT = "d4" * 48
NEW = "e5" * 48
NEVER = "f6" * 48
VERSION = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
# What only a checkout can run or needs: tests and molecule use tools/, the demo inventory
# points at the demo simulator, and these files configure the checkout.
NOT_SHIPPED = ("tests/", "molecule/", "tools/", "benchmarks/", "inventories/", "changelogs/fragments/", ".collections",
               ".venv", ".cache", "artifacts/")
NOT_SHIPPED_FILES = ("ansible.cfg", "pytest.ini", "Makefile", ".ansible-lint", "execution-environment.yml",
                     "requirements.txt", "requirements-test.txt")


def clean_env(home: Path, **extra) -> dict:
    """No Ansible, rotation or cloud setting of the caller, no PYTHONPATH, an empty home."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANSIBLE_", "ALFRED_", "KMS_", "NEXT_KMS_", "AWS_")) and k != "PYTHONPATH"}
    env.update(HOME=str(home), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", ANSIBLE_NOCOLOR="1")
    env.update(extra)
    return env


def run(cmd, env, cwd, timeout=300):
    return subprocess.run([str(c) for c in cmd], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = run([REPO / "tools" / "build_collection.sh", out, BIN.parent], env=dict(os.environ), cwd=REPO)
    assert built.returncode == 0, built.stdout + built.stderr
    path = Path(built.stdout.strip().splitlines()[-1])
    assert path == out / f"alfred-tee_kms-{VERSION}.tar.gz" and path.is_file()
    return path


@pytest.fixture(scope="module")
def installed(tarball, tmp_path_factory):
    """The tarball installed into an empty path; (collections path, empty home, run dir without ansible.cfg)."""
    base = tmp_path_factory.mktemp("installed")
    collections, home, workdir = base / "collections", base / "home", base / "run"
    home.mkdir()
    workdir.mkdir()
    # No Galaxy server is reachable: the tarball has no dependencies to fetch.
    env = clean_env(home, ANSIBLE_GALAXY_SERVER="http://127.0.0.1:9/")
    result = run([BIN / "ansible-galaxy", "collection", "install", "-p", collections, tarball], env, workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"alfred.tee_kms:{VERSION} was installed successfully" in result.stdout
    return collections, home, workdir


def test_the_tarball_ships_what_runs_and_a_generated_changelog(tarball):
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
        manifest = json.load(archive.extractfile("MANIFEST.json"))
        changelog = archive.extractfile("CHANGELOG.rst").read().decode()
        texts = {n: archive.extractfile(n).read() for n in names if archive.getmember(n).isfile()}
    for prefix in NOT_SHIPPED:
        assert not [n for n in names if n.startswith(prefix)], prefix
    for name in NOT_SHIPPED_FILES:
        assert name not in names
    for name in ("COPYING", "README.md", "meta/runtime.yml", "playbooks/rotate.yml", "playbooks/verify_evidence.yml",
                 "plugins/callback/evidence.py", "roles/rotation/meta/argument_specs.yml", "changelogs/changelog.yaml"):
        assert name in names, name
    assert "GNU GENERAL PUBLIC LICENSE" in texts["COPYING"].decode() and "Version 3" in texts["COPYING"].decode()
    # The changelog is generated from the fragments for this version (antsibull-changelog).
    assert f"\nv{VERSION}\n" in changelog and "Release Summary" in changelog
    assert VERSION in yaml.safe_load(texts["changelogs/changelog.yaml"])["releases"]
    # No placeholder address anywhere: what does not exist is omitted.
    info = manifest["collection_info"]
    assert info["repository"] is None and info["documentation"] is None and info["issues"] is None
    assert not [n for n, data in texts.items() if b"example.invalid" in data]


def test_the_repository_config_keeps_the_default_collection_paths(tmp_path):
    """A checkout's ansible.cfg must still find a collection installed the usual way."""
    parser = configparser.ConfigParser()
    parser.read(REPO / "ansible.cfg")
    paths = parser["defaults"]["collections_path"].split(":")
    assert paths == ["./.collections", "~/.ansible/collections", "/usr/share/ansible/collections"]
    dumped = run([BIN / "ansible-config", "dump", "--only-changed"],
                 clean_env(tmp_path, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")), tmp_path)
    assert dumped.returncode == 0, dumped.stderr
    line = next(x for x in dumped.stdout.splitlines() if x.startswith("COLLECTIONS_PATHS"))
    assert str(tmp_path / ".ansible" / "collections") in line and "/usr/share/ansible/collections" in line


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    enclaves = [{"name": "enclave-1", "measurement": CURRENT}, {"name": "enclave-2", "measurement": NEW},
                {"name": "probe-1", "measurement": NEVER}]
    with SimulatorFleet(tmp_path_factory.mktemp("sim"), enclaves=enclaves) as running:
        yield running


def test_rotate_runs_from_the_installed_copy_rehearsal_then_live(installed, fleet):
    collections, home, workdir = installed
    assert not (workdir / "ansible.cfg").exists() and not (home / ".ansible.cfg").exists()
    env = clean_env(home, ANSIBLE_COLLECTIONS_PATH=str(collections),
                    # Enabled explicitly: an installed collection cannot rely on the repository's ansible.cfg.
                    ANSIBLE_CALLBACKS_ENABLED="alfred.tee_kms.evidence")

    # The plugins are the installed copy's, not the checkout's.
    doc = run([BIN / "ansible-doc", "--json", "alfred.tee_kms.kms_key"], env, workdir)
    assert doc.returncode == 0, doc.stderr
    filename = json.loads(doc.stdout)["alfred.tee_kms.kms_key"]["doc"]["filename"]
    assert filename.startswith(str(collections / "ansible_collections" / "alfred" / "tee_kms")), filename

    urls = fleet.urls
    inventory = workdir / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
        "children": {"enclaves": {"hosts": {n: {"enclave_url": urls[n]} for n in ("enclave-1", "enclave-2")}},
                     "probe_enclaves": {"hosts": {"probe-1": {"enclave_url": urls["probe-1"]}}}}}}))
    trust = {"public_keys": fleet.trust["alfred_public_keys"]}
    store = workdir / "kms" / "store.json"
    store.parent.mkdir(mode=0o700)
    LocalKmsProvider(str(store)).create_key(KEY_ID, [CURRENT], "sha384", trust)
    env.update(ALFRED_TEE_KMS_STORE=str(store), KMS_KEY_ID=KEY_ID, KMS_KEY_VERSION="1", NEXT_KMS_KEY_VERSION="2",
               KMS_ALLOWED_MEASUREMENTS=f"{CURRENT},{NEW}")
    rotate = [BIN / "ansible-playbook", "-i", inventory, "alfred.tee_kms.rotate", "-e", "env=staging",
              "-e", json.dumps({"attestation_trust": trust}), "-e", "health_retries=0"]

    before = store.read_bytes()
    rehearsal = run(rotate + ["-e", "evidence_dir=evidence/rehearsal", "--check", "--diff"], env, workdir)
    assert rehearsal.returncode == 0, rehearsal.stdout[-4000:] + rehearsal.stderr[-4000:]
    assert store.read_bytes() == before
    live = run(rotate + ["-e", "evidence_dir=evidence/live"], env, workdir)
    assert live.returncode == 0, live.stdout[-4000:] + live.stderr[-4000:]
    key = LocalKmsProvider(str(store)).describe_key(KEY_ID)
    assert key["primary_version"] == 2 and sorted(key["allowed_measurements"]) == sorted([CURRENT, NEW])

    # The runbook wrapper of the installed copy: no ansible.cfg beside it, the installed path first.
    wrapper = collections / "ansible_collections" / "alfred" / "tee_kms" / "scripts" / "security" / "tee-kms-rotation.sh"
    rerun = run([wrapper, "all", "--env", "staging", "--dry-run", "--evidence-dir", "evidence/wrapper", "--", "-i", inventory,
                 "-e", "health_retries=0"], env, workdir)
    assert rerun.returncode == 0, rerun.stdout[-4000:] + rerun.stderr[-4000:]
    assert "reserved name" not in rerun.stdout + rerun.stderr and "already has version 2 as primary" in rerun.stdout
    assert len([p for p in (workdir / "evidence" / "wrapper").iterdir() if p.is_dir()]) == 1

    for name, check_mode, primary_after in (("rehearsal", True, 1), ("live", False, 2)):
        bundles = [p for p in (workdir / "evidence" / name).iterdir() if p.is_dir()]
        assert len(bundles) == 1, bundles
        summary = json.loads((bundles[0] / "summary.json").read_text(encoding="utf-8"))
        assert summary["check_mode"] is check_mode and summary["outcome"] == "success", summary
        assert summary["versions"]["primary_before"] == 1 and summary["versions"]["primary_after"] == primary_after
        verified = run([BIN / "ansible-playbook", "alfred.tee_kms.verify_evidence", "-e",
                        json.dumps({"bundle": str(bundles[0])})], env, workdir)
        assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]
        assert '"verified": true' in verified.stdout
