# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Optional libraries: each version floor is one constant, checked only where it is needed,
and reported with missing_required_lib."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import common, jwt, nitro
from ansible_collections.alfred.tee_kms.plugins.module_utils._common import deps
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import MissingLibraryError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import registry

PLUGINS = Path(deps.__file__).resolve().parents[2]
# Every floor deps.py declares: a new provider's library is covered without editing this file.
DECLARED = tuple(value for value in vars(deps).values() if isinstance(value, deps.Requirement))


def test_a_missing_library_names_the_user(monkeypatch):
    monkeypatch.setitem(sys.modules, "cbor2", None)
    assert deps.CBOR2.problem()[0] == "cbor2"
    with pytest.raises(MissingLibraryError) as info:
        deps.CBOR2.check("the nitro attestation verifier")
    assert info.value.library == "cbor2" and str(info.value).startswith("Could not use the nitro attestation verifier")


def test_a_too_old_library_names_the_floor(monkeypatch):
    import cryptography

    monkeypatch.setattr(cryptography, "__version__", "40.0.2")
    assert deps.CRYPTOGRAPHY.problem() == ("cryptography>=42.0", "cryptography 40.0.2 is installed")


def test_a_verifier_checks_its_own_libraries_only(monkeypatch):
    monkeypatch.setitem(sys.modules, "cbor2", None)
    with pytest.raises(MissingLibraryError, match="nitro attestation verifier"):
        common.verify(b"\x84\x40\xa0\x40\x40", "nitro", common.VerifyOptions())
    with pytest.raises(common.AttestationError):  # jwt needs no cbor2: it runs and refuses the token
        common.verify(b"eyJhbGciOiJub25lIn0.e30.", "jwt", common.VerifyOptions())
    assert deps.CBOR2 in nitro.REQUIREMENTS and deps.CBOR2 not in jwt.REQUIREMENTS


def test_each_floor_is_documented_as_declared():
    """The requirements lines of the doc fragments quote the floors of _common/deps.py."""
    # cryptography (the modules' own) and every provider's libraries: a new provider's is covered without editing this test.
    documented = [deps.CRYPTOGRAPHY] + [r for cls in registry.PROVIDER_CLASSES for r in cls.requirements]
    floors = {r.name: ".".join(map(str, r.minimum)) for r in documented}
    names = "|".join(re.escape(name) for name in sorted(floors))
    seen = {}
    for path in sorted((PLUGINS / "doc_fragments").glob("*.py")) + sorted((PLUGINS / "modules").glob("*.py")):
        for match in re.finditer(rf"^\s*-\s*({names})\s*>=\s*([0-9.]+)", path.read_text(encoding="utf-8"), re.M):
            seen.setdefault(match.group(1), set()).add(match.group(2))
    assert seen == {name: {floor} for name, floor in floors.items()}


def test_no_version_floor_outside_deps():
    offenders = []
    for path in sorted((PLUGINS / "module_utils").rglob("*.py")) + sorted((PLUGINS / "modules").glob("*.py")):
        if path.name == "deps.py":
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"__version__", text) or re.search(r"_MIN\s*=\s*\(", text):
            offenders.append(str(path.relative_to(PLUGINS)))
    assert not offenders


def test_requirements_fragment_yaml_is_valid():
    from ansible_collections.alfred.tee_kms.plugins.doc_fragments import provider

    assert yaml.safe_load(provider.ModuleDocFragment.OPTIONS)["requirements"]


def test_execution_environment_ranges_are_the_declared_floors():
    """meta/ee-requirements.txt (what an EE build installs) asks for exactly the floors the code checks."""
    ranges = {}
    for line in (PLUGINS.parent / "meta" / "ee-requirements.txt").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9.]+)", line)
        if match:
            ranges[match.group(1)] = match.group(2)
    declared = {r.name: ".".join(map(str, r.minimum)) for r in DECLARED}
    assert ranges == declared


def test_every_declared_floor_holds_for_the_installed_libraries():
    """Including cbor2, which has no __version__: its distribution version is read instead."""
    for requirement in DECLARED:
        assert requirement.problem() is None, requirement.spec


def test_a_too_old_library_without_version_attribute_is_found(monkeypatch):
    monkeypatch.setattr(deps, "_distribution_version", lambda name: "5.3.0")
    assert deps.CBOR2.problem() == ("cbor2>=5.4", "cbor2 5.3.0 is installed")
