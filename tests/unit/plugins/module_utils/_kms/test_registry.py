# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The provider registry: abstract providers are refused, each provider gets only its own
options, and the registry is the only list of providers in the collection's Python code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError, MissingLibraryError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import registry
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.base import KmsProvider
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow import inputs

PLUGINS = Path(registry.__file__).resolve().parents[2]


def _complete_methods() -> dict:
    """A body for every abstract method of KmsProvider."""
    def stub(*args, **kwargs):
        raise AssertionError("not called")
    methods = {name: stub for name in KmsProvider.__abstractmethods__}
    methods["from_options"] = classmethod(lambda cls, options: cls())
    return methods


def make_provider(name="fake", missing=(), **attrs):
    methods = {k: v for k, v in _complete_methods().items() if k not in missing}
    return type(f"{name.title()}Provider", (KmsProvider,), dict(methods, name=name, **attrs))


def test_every_former_not_implemented_method_is_abstract():
    # The public operations are template methods of base.py (the rules, once); what a provider must
    # write is the backend side of each: reading the key and one hook per change.
    expected = {"describe_key", "_load_key", "_do_create_key", "_do_set_attestation_trust", "_do_schedule_key_deletion",
                "_do_create_version", "_do_set_primary", "_do_set_version_state", "_do_set_allowed_measurements", "_do_restore",
                "_do_encrypt", "_ciphertext_version", "_do_decrypt", "_do_save_snapshot", "from_options"}
    assert set(KmsProvider.__abstractmethods__) == expected


@pytest.mark.parametrize("missing", ["_do_decrypt", "_load_key", "from_options"])
def test_incomplete_provider_cannot_be_instantiated_or_registered(missing):
    incomplete = make_provider(missing=(missing,))
    with pytest.raises(TypeError, match=missing):
        incomplete()  # pylint: disable=abstract-class-instantiated
    with pytest.raises(TypeError, match=f"does not implement the abstract method.*{missing}"):
        registry.check_provider_class(incomplete)
    with pytest.raises(TypeError):
        registry._index(registry.PROVIDER_CLASSES + (incomplete,))


def test_complete_provider_registers_and_owns_its_options():
    fake = make_provider(argument_spec={"fake_url": {"type": "str"}})
    index = registry._index(registry.PROVIDER_CLASSES + (fake,))
    assert list(index) == list(registry.names()) + ["fake"]


def test_registry_refuses_nameless_clashing_and_duplicate_providers():
    with pytest.raises(TypeError, match="declares no name"):
        registry.check_provider_class(make_provider(name=""))
    with pytest.raises(TypeError, match="common option"):
        registry.check_provider_class(make_provider(argument_spec={"key_id": {"type": "str"}}))
    with pytest.raises(TypeError, match="both declare the option store_path"):
        registry._index((LocalKmsProvider, make_provider(argument_spec={"store_path": {"type": "path"}})))
    with pytest.raises(TypeError, match="two KMS provider classes"):
        registry._index((LocalKmsProvider, make_provider(name=LocalKmsProvider.name)))
    with pytest.raises(TypeError, match="not a KmsProvider"):
        registry.check_provider_class(object)


def test_argument_spec_is_common_options_plus_each_providers_own():
    spec = registry.argument_spec()
    assert spec["provider"]["choices"] == list(registry.names())
    assert spec["provider"]["default"] == registry.DEFAULT_PROVIDER
    expected = set(registry.COMMON_ARGSPEC)
    for cls in registry.PROVIDER_CLASSES:
        assert cls.name and cls.argument_spec, cls
        expected |= set(cls.argument_spec)
    assert set(spec) == expected


def test_build_provider_passes_each_provider_only_its_own_options(monkeypatch):
    seen = {}

    def from_options(cls, options):
        seen.update(options)
        return "built"

    fake = make_provider(argument_spec={"fake_url": {"type": "str"}})
    monkeypatch.setattr(fake, "from_options", classmethod(from_options))
    monkeypatch.setitem(registry.PROVIDERS, "fake", fake)
    params = {"provider": "fake", "key_id": "k", "fake_url": "http://kms", "store_path": "/x", "region": "r"}
    assert registry.build_provider(params) == "built"
    assert seen == {"fake_url": "http://kms"}


def test_build_provider_checks_requirements_only_for_the_selected_provider(monkeypatch, tmp_path):
    class Missing:
        def check(self, user):
            raise MissingLibraryError("fakelib", None, user)

    fake = make_provider(requirements=(Missing(),))
    monkeypatch.setitem(registry.PROVIDERS, "fake", fake)
    with pytest.raises(MissingLibraryError) as info:
        registry.build_provider({"provider": "fake"})
    assert info.value.library == "fakelib" and "the fake KMS provider" in str(info.value)
    # another provider is still usable
    assert isinstance(registry.build_provider({"provider": "local", "store_path": str(tmp_path / "s.json")}), LocalKmsProvider)


def test_unknown_provider_and_provider_validation():
    with pytest.raises(InputError, match="it is not one of"):
        registry.build_provider({"provider": "nope"})
    with pytest.raises(InputError, match="store_path is required"):
        registry.build_provider({"provider": "local"})


def test_runbook_providers_are_the_registry_plus_the_hook_provider():
    assert inputs.PROVIDERS == registry.names() + (inputs.HOOK_PROVIDER,)


def _provider_lists(tree, names: set) -> list:
    """Line numbers of literal collections or comparisons that name two or more providers."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            values = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
        elif isinstance(node, ast.Dict):
            values = {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
        else:
            continue
        if len(values & names) >= 2:
            found.append(node.lineno)
    return found


def test_the_registry_is_the_only_list_of_providers():
    names = set(registry.names())
    offenders = []
    for path in sorted(PLUGINS.rglob("*.py")):
        rel = path.relative_to(PLUGINS).as_posix()
        if rel.startswith("doc_fragments/"):
            continue  # documentation, checked against the registry by test_provider_docs.py
        lines = _provider_lists(ast.parse(path.read_text(encoding="utf-8")), names)
        offenders.extend(f"plugins/{rel}:{line}" for line in lines)
    assert not offenders, f"provider names listed outside _kms/registry.py: {offenders}"


def _provider_selections(tree, names: set) -> list:
    """Comparisons of something named *provider* with a provider name (``provider == "x"``)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        operands = [node.left, *node.comparators]
        named = any(isinstance(o, ast.Constant) and o.value in names for o in operands)
        if named and any("provider" in ast.unparse(o).lower() for o in operands if not isinstance(o, ast.Constant)):
            found.append(node.lineno)
    return found


def test_no_module_utils_file_outside_kms_selects_a_provider():
    """Provider-specific code lives in _kms/; the rest of module_utils never branches on a provider.
    (A credential detector may still mention a cloud by name: that is a secret's shape, not a provider.)"""
    names = set(registry.names())
    offenders = []
    for path in sorted((PLUGINS / "module_utils").rglob("*.py")):
        if "_kms" in path.relative_to(PLUGINS / "module_utils").parts:
            continue
        lines = _provider_selections(ast.parse(path.read_text(encoding="utf-8")), names)
        offenders.extend(f"{path.relative_to(PLUGINS)}:{line}" for line in lines)
    assert not offenders, offenders


@pytest.mark.parametrize("a, b", [
    ("https://kms.us-east-1.amazonaws.com", "https://kms.us-east-1.amazonaws.com/"),
    ("https://kms.us-east-1.amazonaws.com", "HTTPS://KMS.us-east-1.AmazonAWS.com:443//"),
    ("http://127.0.0.1:4566", "http://user:secret@127.0.0.1:4566/"),
    ("http://[::1]:8200", "http://[::1]:8200/"),
])
def test_one_endpoint_in_two_spellings_is_one_identity(a, b):
    """Issue 22 item 9: the key identity a many-key run compares normalises endpoint URLs."""
    for provider, option in (("aws", "endpoint_url"), ("vault", "url")):
        identities = [registry.provider_class(provider).identity({option: url, "region": "us-east-1"}, "alias/k") for url in (a, b)]
        assert identities[0] == identities[1]
    assert "secret" not in registry.provider_class("aws").identity({"endpoint_url": b}, "alias/k")


@pytest.mark.parametrize("options, other", [
    ({"endpoint_url": "https://kms.example:8443"}, {"endpoint_url": "https://kms.example"}),
    ({"endpoint_url": "https://kms.example/a"}, {"endpoint_url": "https://kms.example/b"}),
    ({"endpoint_url": "http://kms.example"}, {"endpoint_url": "https://kms.example"}),
    ({"region": "eu-west-1"}, {"region": "us-east-1"}),
])
def test_two_aws_endpoints_or_regions_are_two_identities(options, other):
    cls = registry.provider_class("aws")
    assert cls.identity(options, "alias/k") != cls.identity(other, "alias/k")


def test_vault_identity_names_namespace_and_mount(tmp_path):
    cls = registry.provider_class("vault")
    base = {"url": "https://vault.example:8200", "mount_point": "transit", "namespace": None}
    assert cls.identity(base, "k") == cls.identity(dict(base, mount_point="/transit/", namespace=""), "k")
    assert cls.identity(base, "k") != cls.identity(dict(base, mount_point="transit-2"), "k")
    assert cls.identity(base, "k") != cls.identity(dict(base, namespace="team-a"), "k")


def test_local_identity_is_the_store_real_path(tmp_path):
    store = tmp_path / "kms" / "store.json"
    store.parent.mkdir()
    (tmp_path / "link").symlink_to(store.parent)
    spellings = [str(store), str(tmp_path / "link" / "store.json"), str(tmp_path / "kms" / ".." / "kms" / "store.json")]
    identities = {tuple(registry.key_identities({"provider": "local", "store_path": path, "key_id": "tokens/k"})) for path in spellings}
    assert identities == {(f"local|{store}|tokens/k",)}
