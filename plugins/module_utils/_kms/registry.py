# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The KMS providers, listed once: option choices, merged argument spec and the factory.

Private module_utils: the API may change without notice between releases.

This is the only list of providers in the collection's Python code. Everything else reads
it: the ``provider`` option's choices, the argument spec of every KMS module (common
options plus each provider's own options), the runbook's ``kms_provider`` values, and the
factory that builds the selected provider from its own options only.
"""

from __future__ import annotations

import inspect

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.aws import AwsKmsProvider
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.base import KmsProvider
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.vault import VaultKmsProvider

# One line per provider; the first one is the default.
PROVIDER_CLASSES = (
    LocalKmsProvider,
    AwsKmsProvider,
    VaultKmsProvider,
)

# Mirrors plugins/doc_fragments/provider.py (the per-provider options: provider_<name>.py).
COMMON_ARGSPEC = dict(
    provider=dict(type="str"),
    key_id=dict(type="str", required=True),
)


def check_provider_class(cls) -> type:
    """Refuse (TypeError) a class that cannot be a provider: not a KmsProvider, abstract
    methods left unimplemented, no name, or an option that another provider already declares."""
    if not (inspect.isclass(cls) and issubclass(cls, KmsProvider)):
        raise TypeError(f"{cls!r} is not a KmsProvider subclass")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise TypeError(f"KMS provider class {cls.__name__} does not implement the abstract method(s) {missing}")
    if not cls.name or not isinstance(cls.name, str):
        raise TypeError(f"KMS provider class {cls.__name__} declares no name")
    clash = set(cls.argument_spec) & set(COMMON_ARGSPEC)
    if clash:
        raise TypeError(f"KMS provider {cls.name} redeclares the common option(s) {', '.join(sorted(clash))}")
    return cls


def _index(classes) -> dict:
    found = {}
    owners = {}
    for cls in classes:
        check_provider_class(cls)
        if cls.name in found:
            raise TypeError(f"two KMS provider classes are named {cls.name}")
        for option in cls.argument_spec:
            if option in owners:
                raise TypeError(f"KMS providers {owners[option]} and {cls.name} both declare the option {option}")
            owners[option] = cls.name
        found[cls.name] = cls
    return found


PROVIDERS = _index(PROVIDER_CLASSES)
DEFAULT_PROVIDER = PROVIDER_CLASSES[0].name


def names() -> tuple:
    """The values of the ``provider`` option, in registry order."""
    return tuple(PROVIDERS)


def argument_spec() -> dict:
    """Common options plus every provider's own options: the provider part of a KMS module's spec."""
    spec = {name: dict(value) for name, value in COMMON_ARGSPEC.items()}
    spec["provider"].update(default=DEFAULT_PROVIDER, choices=list(names()))
    for cls in PROVIDER_CLASSES:
        spec.update({name: dict(value) for name, value in cls.argument_spec.items()})
    return spec


def provider_class(name):
    name = name or DEFAULT_PROVIDER
    if name not in PROVIDERS:
        raise InputError("use", f"KMS provider '{name}'", f"it is not one of {', '.join(names())}")
    return PROVIDERS[name]


def provider_options(cls, params: dict) -> dict:
    """Only the options ``cls`` declares, from the module parameters."""
    return {option: params.get(option) for option in cls.argument_spec}


def build_provider(params: dict) -> KmsProvider:
    """Return a ready provider for the module parameters: its libraries are checked, its own
    options validated, and it is built from those options only."""
    cls = provider_class(params.get("provider"))
    cls.check_requirements()
    options = provider_options(cls, params)
    cls.validate_options(options)
    return cls.from_options(options)


def key_identities(params: dict) -> list:
    """How the module parameters name their key: the provider's ``identity`` of the options and, where
    the provider resolves keys (AWS: the ARN behind the alias), the KMS's own name for it. Two keys
    are one when any of these is equal."""
    cls = provider_class(params.get("provider"))
    found = [cls.identity(provider_options(cls, params), params["key_id"])]
    if cls.resolve_key is not KmsProvider.resolve_key:
        resolved = build_provider(params).resolve_key(params["key_id"])
        if resolved:
            found.append(f"{cls.name}-key|{resolved}")
    return found
