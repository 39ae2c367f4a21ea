# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The provider-neutral KMS interface: the abstract provider every ``_kms/<name>.py`` implements.

Private module_utils: the API may change without notice between releases.

A provider owns its options: it declares its ``name``, the ``argument_spec`` of its own
options (merged into every KMS module by ``registry.py``), the Python ``requirements`` it
needs (checked with ``missing_required_lib`` only when it is used), its own validation
(``validate_options``) and how it is built from those options (``from_options``).

The public operations (create a key or a version, promote, change a version's state, set the
allow-list, restore, encrypt, the decrypt gate, lock and snapshot) are template methods here:
they apply the rules of ``rules.py`` (validation, the empty allow-list refusal, idempotence,
the decrypt gate, the lock rules) once, for every provider, then call the provider's hooks
(``_load_key``, ``_transaction``, ``_do_...``), which only talk to the backend. So every provider
refuses the same things with the same words before it touches anything, and a new provider
writes backend calls only (docs/providers/adding-a-provider.md). The environment guard wraps
the public operations from outside (``guard.GuardedProvider``).
"""

from __future__ import annotations

import abc
import datetime
from urllib.parse import urlsplit

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.trust import normalize_trust
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import NotFoundError, ProviderError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import rules


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

    # --- the hooks a provider implements: backend access only ------------------------
    # The public operations below apply the rules of rules.py, then call these. A hook never
    # re-checks a rule: it is called only once the change is known to be allowed.
    def _check_key_name(self, key_id: str, action: str) -> None:
        """The provider's own naming rule for keys, after the shared one (aws: an alias). Default: none."""

    def _check_measurement_format(self, key_id: str, measurement_format: str) -> None:
        """Refuse (InputError) a measurement format the backend cannot enforce. Default: every format."""

    def _check_trust(self, trust: dict, action: str, obj: str) -> None:
        """Refuse (InputError) a normalised attestation trust the backend cannot use. Default: any."""

    @abc.abstractmethod
    def _load_key(self, key_id: str, action: str) -> tuple:
        """``(state, backend)`` of the key for ``action``, refusing one scheduled for deletion:
        ``state`` is the key's state (the fields of rules.public_state and more), ``backend``
        whatever the provider's hooks need besides (KMS ids, record versions; may be None)."""
        raise NotImplementedError

    def _transaction(self, key_id: str, action: str, change):
        """``change(state, backend)`` on the key as ``_load_key`` reads it, and what it returns. A provider
        whose writes must see the state they were checked against runs it under its store lock (local)."""
        return change(*self._load_key(key_id, action))

    @abc.abstractmethod
    def _do_create_key(self, key_id, allowed_measurements, measurement_format, trust, description, env) -> dict:
        """Create version 1 (refusing a key that exists) and return the key's state."""
        raise NotImplementedError

    def _do_record_env(self, state, backend, env) -> None:
        raise ProviderError("record the environment of", f"key '{state['key_id']}'", f"the {self.name} provider cannot record it")

    @abc.abstractmethod
    def _do_set_attestation_trust(self, state, backend, trust) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    def _do_schedule_key_deletion(self, state, backend, pending_days) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    def _do_create_version(self, state, backend, version) -> None:
        """Create ``version`` (n+1, checked) as an enabled, non-primary version."""
        raise NotImplementedError

    @abc.abstractmethod
    def _do_set_primary(self, state, backend, version) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    def _do_set_version_state(self, state, backend, version, target, pending_days) -> None:
        """Give ``version`` (not the primary, not already ``target``) the state ``target``."""
        raise NotImplementedError

    @abc.abstractmethod
    def _do_set_allowed_measurements(self, state, backend, measurements) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    def _do_restore(self, state, backend, primary_version, allowed_measurements) -> None:
        raise NotImplementedError

    @abc.abstractmethod
    def _do_encrypt(self, state, backend, plaintext: bytes, context: dict, version: int) -> str:
        raise NotImplementedError

    @abc.abstractmethod
    def _ciphertext_version(self, key_id: str, ciphertext: str) -> int:
        """The version a ciphertext names; InputError (AccessDeniedError) for one that is not (not ``key_id``'s) a ciphertext."""
        raise NotImplementedError

    def _decrypt_allowlist(self, state, backend, version, obj) -> list:
        """The measurements the decrypt gate accepts for ``version``. Default: the key's allow-list."""
        return state["allowed_measurements"]

    @abc.abstractmethod
    def _do_decrypt(self, state, backend, version, ciphertext, context, evidence, obj, remember):
        """Decrypt an allowed caller's ciphertext. ``evidence`` is ``(raw document, format)`` the gate verified
        (the caller's attestation as given, and ``state`` only ``{"key_id": ...}``, nothing read, when the server
        is the gate); ``remember()`` records it in the key's replay cache and raises
        AccessDeniedError on a replay: call it before the plaintext exists where the cache is the only guard
        against two callers presenting one evidence (aws). Not called, it runs once the hook returned."""
        raise NotImplementedError

    def _remember_evidence(self, state, backend, tokens, now, window, obj) -> None:
        """Record accepted evidence in the key's replay cache (rules.remember_evidence), raising on a replay."""
        raise NotImplementedError(f"the {self.name} provider gates decrypts and keeps no replay cache")

    @abc.abstractmethod
    def _do_save_snapshot(self, state, backend, snapshot) -> None:
        raise NotImplementedError

    def _do_acquire_lock(self, state, backend, owner, ttl_seconds, break_stale, takeover_from) -> dict:
        """Take the lock: the record rules.next_lock gives, written by ``_do_write_lock``. A provider whose
        lock is more than one atomic record (aws: numbered aliases) overrides this instead."""
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        record = rules.next_lock(state["key_id"], state.get("lock"), owner, ttl_seconds, break_stale, takeover_from, now)
        self._do_write_lock(state, backend, record)
        return dict(record)

    def _do_write_lock(self, state, backend, record) -> None:
        """Write ``record`` as the key's lock, atomically (None: released)."""
        raise NotImplementedError(f"the {self.name} provider keeps its lock otherwise")

    def _do_release_lock(self, state, backend, owner) -> bool:
        if not rules.check_release(state["key_id"], state.get("lock"), owner):
            return False
        self._do_write_lock(state, backend, None)
        return True

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

    def check_key_name(self, key_id, action: str) -> str:
        """Refuse (InputError) a key id no provider accepts, then one this provider does not."""
        rules.check_key_id(key_id, action)
        self._check_key_name(key_id, action)
        return key_id

    # --- key lifecycle ---------------------------------------------------------------
    def create_key(self, key_id, allowed_measurements, measurement_format="sha384", attestation_trust=None, description=None,
                   env=None) -> dict:
        """Create version 1. ``env`` (staging, production) binds the key to its environment: the
        state's ``env``, which a rotation for another environment is refused on."""
        self.check_key_name(key_id, "create")
        rules.check_allowlist(allowed_measurements, "create", key_id)
        self._check_measurement_format(key_id, measurement_format)
        trust = normalize_trust(attestation_trust)
        self._check_trust(trust, "create", f"key '{key_id}'")
        return self._do_create_key(key_id, allowed_measurements, measurement_format, trust, description, env)

    def record_env(self, key_id, env) -> None:
        """Record the environment of a key created without one (at its first rotation). Only
        when none is recorded: a recorded environment is never changed."""
        def change(state, backend):
            rules.check_record_env(state, env)
            if state.get("env") is None:
                self._do_record_env(state, backend, env)

        self._transaction(key_id, "record the environment of", change)

    def set_attestation_trust(self, key_id, attestation_trust) -> None:
        action = "update attestation trust of"
        trust = normalize_trust(attestation_trust)
        self._check_trust(trust, action, f"key '{key_id}'")
        self._transaction(key_id, action, lambda state, backend: self._do_set_attestation_trust(state, backend, trust))

    def schedule_key_deletion(self, key_id, pending_days) -> None:
        rules.check_pending_days(pending_days, f"key '{key_id}'")
        self._transaction(key_id, "schedule deletion of", lambda state, backend: self._do_schedule_key_deletion(state, backend, pending_days))

    # --- versions --------------------------------------------------------------------
    def create_version(self, key_id, version) -> None:
        """Create ``version`` (must be n+1) as an enabled, non-primary version."""
        def change(state, backend):
            rules.check_next_version(state, version)
            self._do_create_version(state, backend, version)

        self._transaction(key_id, "create a version of", change)

    def set_primary(self, key_id, version) -> None:
        def change(state, backend):
            rules.check_promote(state, version)
            if state["primary_version"] != version:
                self._do_set_primary(state, backend, version)

        self._transaction(key_id, "promote a version of", change)

    #: False: the backend cannot disable or destroy a version (vault: Transit can only trim versions, which would
    #: lose data), so ``_do_set_version_state`` refuses every change, before the rules that only a change needs.
    changes_version_states = True

    def set_version_state(self, key_id, version, target, pending_days=None) -> None:
        rules.check_target_state(target, version, key_id)
        if target == "destroy_scheduled" and self.changes_version_states:
            rules.check_pending_days(pending_days, f"version {version} of key '{key_id}'")

        def change(state, backend):
            if self.changes_version_states:
                rules.check_set_state(state, version, target)
            if rules.find_version(state, version, "change")["state"] != target:
                self._do_set_version_state(state, backend, version, target, pending_days)

        self._transaction(key_id, "change the state of a version of", change)

    # --- attestation policy ----------------------------------------------------------
    def set_allowed_measurements(self, key_id, measurements) -> None:
        rules.check_allowlist(measurements, "update the allow-list of", key_id)
        self._transaction(key_id, "update the allow-list of",
                          lambda state, backend: self._do_set_allowed_measurements(state, backend, measurements))

    def restore(self, key_id, primary_version, allowed_measurements) -> None:
        """Put primary and allow-list back together (rollback); never disables anything."""
        rules.check_allowlist(allowed_measurements, "restore", key_id)

        def change(state, backend):
            rules.check_promote(state, primary_version)
            self._do_restore(state, backend, primary_version, allowed_measurements)

        self._transaction(key_id, "restore", change)

    def evaluate_policy(self, key_id, measurement) -> bool:
        """Would the key's policy let an enclave with this (verified) measurement decrypt?"""
        state = self.describe_key(key_id)
        return measurement in state["allowed_measurements"]

    # --- data path -------------------------------------------------------------------
    def encrypt(self, key_id, plaintext: bytes, context: dict, version=None) -> str:
        rules.check_plaintext(plaintext, key_id)
        state, backend = self._load_key(key_id, "encrypt")
        version = state["primary_version"] if version is None else version
        rules.check_encrypt_version(state, version)
        return self._do_encrypt(state, backend, plaintext, context, version)

    #: Whether the provider verifies a decrypt's evidence itself (the decrypt gate, rules.require_attestation);
    #: False: the KMS server is the gate (vault: its JWT login), and the evidence goes to it as it is.
    gates_decrypt = True

    def decrypt(self, key_id, ciphertext: str, context: dict, attestation=None) -> bytes:
        """Decrypt only for a caller presenting verified evidence with an allowed measurement.

        The gate first, then the version: a caller without accepted evidence learns nothing of the
        key's versions. Accepted evidence is remembered once the decrypt succeeded (a refused call
        changes nothing), or earlier where the provider's hook says so."""
        version = self._ciphertext_version(key_id, ciphertext)
        obj = f"a ciphertext under version {version} of key '{key_id}'"
        if not self.gates_decrypt:
            self.check_key_name(key_id, "decrypt")
            return self._do_decrypt({"key_id": key_id}, None, version, ciphertext, context, attestation, obj, lambda: None)
        state, backend = self._load_key(key_id, "decrypt")
        accepted = []
        evidence = rules.require_attestation(state.get("attestation_trust"), attestation, self._decrypt_allowlist(state, backend, version, obj),
                                             obj, key_id, lambda *tokens_now_window: accepted.append(tokens_now_window))
        rules.check_decrypt_version(state, version, obj)

        def remember():
            while accepted:
                self._remember_evidence(state, backend, *accepted.pop(), obj)

        plaintext = self._do_decrypt(state, backend, version, ciphertext, context, evidence, obj, remember)
        remember()
        return plaintext

    # --- rotation coordination -------------------------------------------------------
    def get_snapshot(self, key_id):
        return self.describe_key(key_id).get("snapshot")

    def save_snapshot(self, key_id, snapshot: dict) -> None:
        self._transaction(key_id, "record a snapshot of", lambda state, backend: self._do_save_snapshot(state, backend, snapshot))

    def acquire_lock(self, key_id, owner, ttl_seconds, break_stale=False, takeover_from=None) -> dict:
        """Take the rotation lock (re-entrant for the same owner, renewing the expiry).

        Another owner's live lock raises LockHeldError; an expired one is broken only with
        ``break_stale``; ``takeover_from`` breaks the lock only if it is still held by that
        exact owner (the caller has proven that holder's process is gone).
        """
        rules.check_lock_request(owner, ttl_seconds, f"key '{key_id}'")
        return self._transaction(key_id, "acquire the rotation lock on",
                                 lambda state, backend: self._do_acquire_lock(state, backend, owner, ttl_seconds, break_stale, takeover_from))

    def release_lock(self, key_id, owner) -> bool:
        return self._transaction(key_id, "release the rotation lock on", lambda state, backend: self._do_release_lock(state, backend, owner))

    def get_lock(self, key_id):
        return self.describe_key(key_id).get("lock")
