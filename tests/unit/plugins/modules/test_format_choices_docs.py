# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every documented list of attestation formats is the registry's.

The argument specs read their format choices from ``_attestation/registry.py``, but DOCUMENTATION
(the module's own and its doc fragments) and the role's argument_specs.yml are static text: a
format added to the registry and forgotten there fails here, naming the module and the option.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import registry
from ansible_collections.alfred.tee_kms.plugins.module_utils._common import module_base

PKG = "ansible_collections.alfred.tee_kms.plugins"
ROOT = Path(registry.__file__).resolve().parents[3]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
NAMES = list(registry.names())
# The options that name formats today: the test must find at least these (it cannot pass by finding none).
KNOWN = {("attestation_verify", "format"), ("attestation_verify", "trust.formats"), ("kms_probe", "attestation_format"),
         ("kms_key", "attestation_trust.formats"), ("rotation_inputs", "attestation_trust.formats")}


class _Captured(Exception):
    def __init__(self, spec):
        super().__init__("captured")
        self.spec = spec


def argument_spec(name: str, monkeypatch) -> dict:
    """The argument spec a module builds (its AnsibleModule is replaced before it parses anything)."""
    def capture(argument_spec, **kwargs):
        raise _Captured(argument_spec)

    monkeypatch.setattr(module_base, "AnsibleModule", capture)
    module = importlib.import_module(f"{PKG}.modules.{name}")
    with pytest.raises(_Captured) as captured:
        module.main()
    return captured.value.spec


def _fragment(reference: str) -> dict:
    """``alfred.tee_kms.<file>[.<variable>]`` -> the fragment's YAML."""
    parts = reference.split(".")[2:]
    holder = importlib.import_module(f"{PKG}.doc_fragments.{parts[0]}").ModuleDocFragment
    return yaml.safe_load(getattr(holder, parts[1].upper() if len(parts) > 1 else "DOCUMENTATION"))


def documented_options(name: str) -> dict:
    """The module's options as ansible-doc shows them: its own, plus those of its doc fragments."""
    doc = yaml.safe_load(importlib.import_module(f"{PKG}.modules.{name}").DOCUMENTATION)
    options = {}
    for reference in doc.get("extends_documentation_fragment") or []:
        if reference.startswith("alfred.tee_kms."):
            options.update(_fragment(reference).get("options") or {})
    options.update(doc.get("options") or {})
    return options


def walk(options: dict, prefix: str = "", sub: str = "suboptions"):
    """``(dotted name, option)`` of every option and suboption."""
    for option, value in (options or {}).items():
        yield prefix + option, value or {}
        yield from walk((value or {}).get(sub), f"{prefix}{option}.", sub)


def format_options_in_specs(monkeypatch) -> set:
    found = set()
    for name in MODULES:
        if "KmsModule(" not in (ROOT / "plugins" / "modules" / f"{name}.py").read_text(encoding="utf-8"):
            continue
        for option, spec in walk(argument_spec(name, monkeypatch), sub="options"):
            if spec.get("choices") is not None and set(spec["choices"]) & set(NAMES):
                found.add((name, option))
    return found


def test_argument_specs_take_their_format_choices_from_the_registry(monkeypatch):
    found = format_options_in_specs(monkeypatch)
    assert KNOWN <= found
    for name in MODULES:
        if any(module == name for module, dummy in found):
            spec = dict(walk(argument_spec(name, monkeypatch), sub="options"))
            for module, option in found:
                if module == name:
                    assert spec[option]["choices"] == NAMES, f"{name}: {option}"


@pytest.mark.parametrize("name", MODULES)
def test_documented_format_choices_are_the_registry(name, monkeypatch):
    documented = dict(walk(documented_options(name)))
    listing = {option for option, doc in documented.items() if set(doc.get("choices") or []) & set(NAMES)}
    in_spec = {option for module, option in format_options_in_specs(monkeypatch) if module == name}
    # The same options name formats in the docs and in the spec, and the docs list exactly the registry.
    assert listing == in_spec, f"{name}: documented {sorted(listing)}, argument spec {sorted(in_spec)}"
    for option in listing:
        assert documented[option]["choices"] == NAMES, f"{name}: option {option} documents {documented[option]['choices']}, registry {NAMES}"


def test_role_argument_specs_list_the_registry():
    """The role's options are raw (the plan names a bad value); the generated description lists the registry's names."""
    specs = yaml.safe_load((ROOT / "roles" / "rotation" / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    described = " ".join(specs["argument_specs"]["main"]["options"]["rotation_attestation_format"]["description"])
    assert "One of " + ", ".join(f"V({name})" for name in NAMES) + "." in described
