# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The provider-neutral KMS interface: the abstract provider every ``_kms/<name>.py`` implements.

Private module_utils: the API may change without notice between releases.

A provider owns its options: it declares its ``name``, the ``argument_spec`` of its own
options (merged into every KMS module by ``registry.py``), the Python ``requirements`` it
needs (checked with ``missing_required_lib`` only when it is used), its own validation
(``validate_options``) and how it is built from those options (``from_options``). The rules
that decide whether a change is allowed live in ``rules.py``, once, so that every provider
refuses the same things with the same words before it touches anything.
"""

from __future__ import annotations

import abc
from urllib.parse import urlsplit

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import NotFoundError, ProviderError


# Ports a URL names when it names none: dropped, so that https://kms and https://kms:443 are one endpoint.
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_endpoint(url) -> str:
    """One spelling per endpoint, to tell whether two URLs name one service: scheme and host
    lowercased, the default port, credentials and a trailing slash dropped. Empty: the default endpoint."""
    text = str(url or "").strip()
    if not text:
        return ""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return text  # not a URL: the provider's own validation names the problem
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return f"{scheme}://{netloc}{path}" + (f"?{parts.query}" if parts.query else "")


class KmsProvider(abc.ABC):
    """Operations a rotation needs; each write is atomic on its own.

    Implementations raise TeeKmsError subclasses only; they never log key material.
    """

    #: The value of the ``provider`` option that selects this provider.
    name: str = ""
    #: The provider's own module options (Ansible argument spec); option names must not
    #: collide with the common options or with another provider's options.
    argument_spec: dict = {}
    #: ``_common.deps.Requirement`` objects checked before the provider is built.
    requirements: tuple = ()
    #: How messages name the provider.
    label: str = ""

    # --- construction ----------------------------------------------------------------
    @classmethod
    def check_requirements(cls) -> None:
        """Raise MissingLibraryError for the first missing or too old library."""
        for requirement in cls.requirements:
            requirement.check(cls.label or f"the {cls.name} KMS provider")

    @classmethod
    def validate_options(cls, options: dict) -> None:
        """Refuse unusable options (InputError) before anything is contacted. Default: nothing."""

    @classmethod
    @abc.abstractmethod
    def from_options(cls, options: dict) -> "KmsProvider":
        """Build the provider from its own options (the keys of ``argument_spec``), validated."""

    @classmethod
    def identity(cls, options: dict, key_id: str) -> str:
        """Which key the options and ``key_id`` name, spelt one way (two hosts of a many-key run that
        name one key are refused: they would share one lock). Each provider adds where its keys live."""
        return f"{cls.name}|{key_id}"

    def resolve_key(self, key_id: str):
        """The KMS's own name of the key behind ``key_id`` (None: no such key, or the identity says it all):
        catches two spellings of one key that ``identity`` cannot tell apart (an AWS alias on two endpoints)."""
        return None

    # --- reads -----------------------------------------------------------------------
    @abc.abstractmethod
    def describe_key(self, key_id: str) -> dict:
        """Return the internal state dict (see public_state) or raise NotFoundError."""
        raise NotImplementedError

    def find_key(self, key_id: str):
        try:
            return self.describe_key(key_id)
        except NotFoundError:
            return None

    # --- key lifecycle ---------------------------------------------------------------
    @abc.abstractmethod
    def create_key(self, key_id, allowed_measurements, measurement_format="sha384", attestation_trust=None, description=None,
                   env=None) -> dict:
        """Create version 1. ``env`` (staging, production) binds the key to its environment: the
        state's ``env``, which a rotation for another environment is refused on."""
        raise NotImplementedError

    def record_env(self, key_id, env) -> None:
        """Record the environment of a key created without one (at its first rotation). Only
        when none is recorded: a recorded environment is never changed."""
        raise ProviderError("record the environment of", f"key '{key_id}'", f"the {self.name} provider cannot record it")

    @abc.abstractmethod
    def set_attestation_trust(self, key_id, attestation_trust) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    def schedule_key_deletion(self, key_id, pending_days) -> None:
        raise NotImplementedError

    # --- versions --------------------------------------------------------------------
    @abc.abstractmethod
    def create_version(self, key_id, version) -> None:
        """Create ``version`` (must be n+1) as an enabled, non-primary version."""
        raise NotImplementedError

    @abc.abstractmethod
    def set_primary(self, key_id, version) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    def set_version_state(self, key_id, version, target, pending_days=None) -> None:
        raise NotImplementedError

    # --- attestation policy ----------------------------------------------------------
    @abc.abstractmethod
    def set_allowed_measurements(self, key_id, measurements) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    def restore(self, key_id, primary_version, allowed_measurements) -> None:
        """Put primary and allow-list back together (rollback); never disables anything."""
        raise NotImplementedError

    def evaluate_policy(self, key_id, measurement) -> bool:
        """Would the key's policy let an enclave with this (verified) measurement decrypt?"""
        state = self.describe_key(key_id)
        return measurement in state["allowed_measurements"]

    # --- data path -------------------------------------------------------------------
    @abc.abstractmethod
    def encrypt(self, key_id, plaintext: bytes, context: dict, version=None) -> str:
        raise NotImplementedError

    @abc.abstractmethod
    def decrypt(self, key_id, ciphertext: str, context: dict, attestation=None) -> bytes:
        """Decrypt only for a caller presenting verified evidence with an allowed measurement."""
        raise NotImplementedError

    # --- rotation coordination -------------------------------------------------------
    @abc.abstractmethod
    def get_snapshot(self, key_id):
        raise NotImplementedError

    @abc.abstractmethod
    def save_snapshot(self, key_id, snapshot: dict) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    def acquire_lock(self, key_id, owner, ttl_seconds, break_stale=False, takeover_from=None) -> dict:
        """Take the rotation lock (re-entrant for the same owner, renewing the expiry).

        Another owner's live lock raises LockHeldError; an expired one is broken only with
        ``break_stale``; ``takeover_from`` breaks the lock only if it is still held by that
        exact owner (the caller has proven that holder's process is gone).
        """
        raise NotImplementedError

    @abc.abstractmethod
    def release_lock(self, key_id, owner) -> bool:
        raise NotImplementedError

    @abc.abstractmethod
    def get_lock(self, key_id):
        raise NotImplementedError
