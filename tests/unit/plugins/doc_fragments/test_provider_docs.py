# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every KMS module documents every registered provider's options, so that adding a provider
cannot be forgotten in the docs (ansible-test validate-modules would catch a mismatch too,
but only in the sanity leg and with a less direct message). The provider options live in one
file, plugins/doc_fragments/provider.py: the modules extend its fragments and never name a
provider, so a new provider changes that file only."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.alfred.tee_kms.plugins.module_utils._common import module_base
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import registry

MODULES = Path(registry.__file__).resolve().parents[2] / "modules"
PKG = "ansible_collections.alfred.tee_kms.plugins"


class _Captured(Exception):
    def __init__(self, spec):
        super().__init__("captured")
        self.spec = spec


def _argument_spec(name: str, monkeypatch) -> dict:
    """The argument spec a module builds (its AnsibleModule is replaced before it parses anything)."""
    def capture(argument_spec, **kwargs):
        raise _Captured(argument_spec)

    if not re.search(r"\b(TeeKms|Kms)Module\(", (MODULES / f"{name}.py").read_text(encoding="utf-8")):
        return {}  # a module on its own AnsibleModule: not a KMS module
    monkeypatch.setattr(module_base, "AnsibleModule", capture)
    module = importlib.import_module(f"{PKG}.modules.{name}")
    with pytest.raises(_Captured) as captured:
        module.main()
    return captured.value.spec


def _fragment(name: str, var: str = "DOCUMENTATION") -> dict:
    module = importlib.import_module(f"{PKG}.doc_fragments.{name}")
    return yaml.safe_load(getattr(module.ModuleDocFragment, var))


def _docs(name: str) -> dict:
    return yaml.safe_load(importlib.import_module(f"{PKG}.modules.{name}").DOCUMENTATION)


ALL_MODULES = sorted(p.stem for p in MODULES.glob("*.py") if p.stem != "__init__")


def kms_modules(monkeypatch) -> list:
    return [name for name in ALL_MODULES if _argument_spec(name, monkeypatch).get("provider", {}).get("choices")]


def test_kms_modules_are_the_ones_extending_the_provider_fragment(monkeypatch):
    by_spec = kms_modules(monkeypatch)
    by_docs = [name for name in ALL_MODULES
               if "alfred.tee_kms.provider" in (_docs(name).get("extends_documentation_fragment") or [])]
    assert by_spec and by_spec == by_docs


def test_common_fragment_choices_are_the_registry():
    options = _fragment("provider")["options"]
    assert options["provider"]["choices"] == list(registry.names())
    assert options["provider"]["default"] == registry.DEFAULT_PROVIDER
    assert set(options) == set(registry.COMMON_ARGSPEC)


def _check_documents(options: dict, cls) -> None:
    for name, spec in cls.argument_spec.items():
        assert name in options, f"doc_fragments/provider.py does not document {name} of {cls.__name__}"
        doc = options[name]
        assert doc.get("type", "str") == spec.get("type", "str"), name
        assert sorted(doc.get("aliases") or []) == sorted(spec.get("aliases") or []), name
        assert doc.get("default") == spec.get("default"), name


@pytest.mark.parametrize("provider", registry.names())
def test_each_provider_fragment_documents_exactly_its_options(provider):
    """alfred.tee_kms.provider.options documents each provider's argument_spec, and nothing else."""
    cls = registry.PROVIDERS[provider]
    options = _fragment("provider", "OPTIONS")["options"]
    _check_documents(options, cls)
    assert set(options) == {name for each in registry.PROVIDER_CLASSES for name in each.argument_spec}


def test_vault_fragment_is_the_vault_section_of_the_options():
    """vault_key_access's fragment repeats the vault options: it must say exactly what OPTIONS says."""
    vault = registry.PROVIDERS["vault"]
    options = _fragment("provider", "OPTIONS")
    alone = _fragment("provider", "VAULT")
    assert alone["options"] == {name: options["options"][name] for name in vault.argument_spec}
    assert alone["requirements"] == [line for line in options["requirements"] if "provider=vault" in line]


@pytest.mark.parametrize("provider", registry.names())
def test_every_kms_module_documents_every_provider(provider, monkeypatch):
    cls = registry.PROVIDERS[provider]
    _check_documents(_fragment("provider", "OPTIONS")["options"], cls)
    missing = [name for name in kms_modules(monkeypatch)
               if "alfred.tee_kms.provider.options" not in _docs(name)["extends_documentation_fragment"]]
    assert not missing, f"modules not extending alfred.tee_kms.provider.options (the {provider} options): {missing}"


def test_no_module_names_a_provider_fragment():
    """A module extends the fragments of provider.py, never one fragment per provider (a new provider
    would then touch every module again)."""
    offenders = {name: [f for f in _docs(name).get("extends_documentation_fragment") or [] if f.startswith("alfred.tee_kms.provider_")]
                 for name in ALL_MODULES}
    assert not {name: found for name, found in offenders.items() if found}
