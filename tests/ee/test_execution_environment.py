# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The execution environment definition: `ansible-builder create` offline, then the two stages
of the image build that need no container engine are replayed on this machine:

* the galaxy stage (`ansible-galaxy collection install -r requirements.yml` from /build), which
  must install alfred.tee_kms from the tarball without any Galaxy server;
* the builder stage's introspection (`introspect.py`), which must find the collection's Python
  dependencies through its meta/execution-environment.yml.

Building the image itself needs podman or docker and is not done here (docs/awx.md).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from ansible_collections.alfred.tee_kms.plugins.module_utils._common import deps

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SCRIPT = REPO / "tools" / "ee" / "build_context.sh"
# The libraries the collection checks (_common/deps.py): a new provider's comes with its Requirement there.
DEPENDENCIES = {value.name for value in vars(deps).values() if isinstance(value, deps.Requirement)}


def pins(path: Path) -> dict[str, str]:
    """name -> version of the `name==version` lines of a requirements file."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and not line.startswith("-"):
            req = Requirement(line)
            found[req.name.lower()] = str(next(iter(req.specifier)).version)
    return found


def requirements(path: Path) -> dict[str, Requirement]:
    reqs = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            reqs[req.name.lower()] = req
    return reqs


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    ctx = tmp_path_factory.mktemp("ee") / "context"
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run([str(SCRIPT), str(BIN.parent), str(ctx)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Complete! The build context can be found at" in proc.stdout
    return ctx


def test_definitions_are_consistent_with_the_pinned_requirements():
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    deps = ee["dependencies"]
    assert deps["python"] == "meta/ee-requirements.txt"
    assert deps["galaxy"]["collections"] == [{"name": "collections/alfred-tee_kms.tar.gz", "type": "file"}]
    meta = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    assert meta["dependencies"]["python"] == "meta/ee-requirements.txt"

    # The collection's EE requirements are ranges (no pins), and the versions the tests pin
    # satisfy them: the EE can never be built with something the tests never saw as allowed.
    ranges = requirements(REPO / "meta" / "ee-requirements.txt")
    assert set(ranges) == DEPENDENCIES
    pinned = pins(REPO / "requirements.txt")
    for name, req in ranges.items():
        assert req.specifier, f"{name} has no version range"
        assert not any(spec.operator in ("==", "===") for spec in req.specifier), f"{name} is pinned: {req}"
        assert req.specifier.contains(pinned[name]), f"requirements.txt pins {name}=={pinned[name]}, outside {req}"
    # ansible-core and ansible-runner in the EE are the ones the tests run.
    test_pins = pins(REPO / "requirements-test.txt")
    assert deps["ansible_core"]["package_pip"] == f"ansible-core=={pinned['ansible-core']}"
    assert deps["ansible_runner"]["package_pip"] == f"ansible-runner=={test_pins['ansible-runner']}"


def test_builder_context(context):
    containerfile = (context / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in containerfile
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="(.*)"$', containerfile, re.M).group(1).split()
    assert refs == ["ansible-core==2.19.14", "ansible-runner==2.4.3"]
    # galaxy stage installs from /build (where _build, with the tarball, is copied) ...
    assert "COPY _build /build\nWORKDIR /build" in containerfile
    assert re.search(r"^RUN .*ansible-galaxy collection install .*-r requirements\.yml "
                     r'--collections-path "/usr/share/ansible/collections"$', containerfile, re.M)
    # ... and the builder stage introspects the installed collections with the user requirements.
    assert "COPY _build/requirements.txt requirements.txt" in containerfile
    assert "introspect.py introspect --user-pip=requirements.txt" in containerfile
    assert containerfile.rstrip().endswith('CMD ["bash"]')

    build = context / "_build"
    assert (build / "requirements.txt").read_text() == (REPO / "meta" / "ee-requirements.txt").read_text()
    assert yaml.safe_load((build / "requirements.yml").read_text()) == {
        "collections": [{"name": "collections/alfred-tee_kms.tar.gz", "type": "file"}]}
    tarball = build / "collections" / "alfred-tee_kms.tar.gz"
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
        manifest = json.load(archive.extractfile("MANIFEST.json"))
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert manifest["collection_info"]["namespace"] == "alfred" and manifest["collection_info"]["name"] == "tee_kms"
    assert manifest["collection_info"]["version"] == galaxy["version"]
    assert {"meta/execution-environment.yml", "meta/ee-requirements.txt", "meta/runtime.yml",
            "plugins/callback/evidence.py", "roles/rotation/tasks/stage.yml", "playbooks/rotate.yml"} <= set(names)
    # Helper programs and local caches stay out of the collection.
    for prefix in (".ansible/", ".venv", ".collections", ".cache", "artifacts/", "tools/", "benchmarks/"):
        assert not [n for n in names if n.startswith(prefix)], prefix


def test_galaxy_stage_and_introspection_replayed_offline(context, tmp_path):
    build = context / "_build"
    collections = tmp_path / "usr-share-ansible" / "collections"
    # A clean image: no ansible.cfg, an empty home, the target as the only collections path (a
    # copy of the collection in ~/.ansible/collections, e.g. from ansible-lint, would make
    # ansible-galaxy report "already installed"); no Galaxy server is reachable.
    (tmp_path / "home").mkdir()
    env = dict(os.environ, HOME=str(tmp_path / "home"), ANSIBLE_COLLECTIONS_PATH=str(collections),
               ANSIBLE_GALAXY_DISABLE_GPG_VERIFY="1", ANSIBLE_GALAXY_SERVER="http://127.0.0.1:9/")
    env.pop("ANSIBLE_CONFIG", None)
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "-r", "requirements.yml",
                           "--collections-path", str(collections)], cwd=build, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = collections / "ansible_collections" / "alfred" / "tee_kms"
    version = yaml.safe_load((REPO / "galaxy.yml").read_text())["version"]
    assert f"alfred.tee_kms:{version} was installed successfully" in proc.stdout, proc.stdout
    assert (installed / "MANIFEST.json").is_file() and (installed / "meta" / "ee-requirements.txt").is_file()

    out_pip, out_bindep = tmp_path / "requirements.txt", tmp_path / "bindep.txt"
    proc = subprocess.run([sys.executable, str(build / "scripts" / "introspect.py"), "introspect",
                           "--user-pip", str(build / "requirements.txt"), "--write-pip", str(out_pip),
                           "--write-bindep", str(out_bindep), str(collections)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in out_pip.read_text().splitlines() if line.strip()]
    from_collection = {Requirement(line.split("#")[0]).name for line in lines if line.endswith("# from collection alfred.tee_kms")}
    assert from_collection == DEPENDENCIES, lines
