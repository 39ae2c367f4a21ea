# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The public operations of KmsProvider apply the shared rules before any hook runs: a provider
that only writes backend calls (here one in memory that records every hook call) refuses what
every provider refuses, and its hooks are not called for a refused or an unchanged request."""

from __future__ import annotations

import pytest

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import (
    AccessDeniedError, ConflictError, InputError, LockHeldError, NotFoundError)
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.base import KmsProvider

M1 = "a" * 96


class MemoryProvider(KmsProvider):
    """Backend hooks only, over a dict; ``calls`` lists the hooks the base called."""

    name = "memory"

    def __init__(self):
        self.keys = {}
        self.calls = []

    @classmethod
    def from_options(cls, options):
        return cls()

    def describe_key(self, key_id):
        return self._load_key(key_id, "read")[0]

    def _load_key(self, key_id, action):
        self.check_key_name(key_id, action)
        if key_id not in self.keys:
            raise NotFoundError(action, f"key '{key_id}'", "it does not exist")
        return self.keys[key_id], None

    def _record(self, name, *args):
        self.calls.append((name,) + args)

    def _do_create_key(self, key_id, allowed_measurements, measurement_format, trust, description, env):
        self._record("create_key", key_id)
        self.keys[key_id] = {"key_id": key_id, "primary_version": 1, "allowed_measurements": list(allowed_measurements),
                             "versions": [{"version": 1, "state": "enabled", "created_at": "t"}], "env": env,
                             "attestation_trust": trust, "lock": None, "snapshot": None}
        return self.keys[key_id]

    def _do_set_attestation_trust(self, state, backend, trust):
        self._record("set_attestation_trust")

    def _do_schedule_key_deletion(self, state, backend, pending_days):
        self._record("schedule_key_deletion", pending_days)

    def _do_create_version(self, state, backend, version):
        self._record("create_version", version)
        state["versions"].append({"version": version, "state": "enabled", "created_at": "t"})

    def _do_set_primary(self, state, backend, version):
        self._record("set_primary", version)
        state["primary_version"] = version

    def _do_set_version_state(self, state, backend, version, target, pending_days):
        self._record("set_version_state", version, target)
        next(v for v in state["versions"] if v["version"] == version)["state"] = target

    def _do_set_allowed_measurements(self, state, backend, measurements):
        self._record("set_allowed_measurements")

    def _do_restore(self, state, backend, primary_version, allowed_measurements):
        self._record("restore", primary_version)

    def _do_encrypt(self, state, backend, plaintext, context, version):
        self._record("encrypt", version)
        return f"mem.{version}"

    def _ciphertext_version(self, key_id, ciphertext):
        return int(ciphertext.split(".")[1])

    def _do_decrypt(self, state, backend, version, ciphertext, context, evidence, obj, remember):
        self._record("decrypt", version)
        return b"plain"

    def _do_save_snapshot(self, state, backend, snapshot):
        self._record("save_snapshot")

    def _do_write_lock(self, state, backend, record):
        self._record("write_lock", None if record is None else record["owner"])
        state["lock"] = record


@pytest.fixture(name="kms")
def fixture_kms():
    kms = MemoryProvider()
    kms.create_key("k", [M1])
    kms.calls.clear()
    return kms


@pytest.mark.parametrize("call, message", [
    (lambda kms: kms.create_key("other", []), "Could not create key 'other': allowed_measurements must not be empty"),
    (lambda kms: kms.set_allowed_measurements("k", []), "Could not update the allow-list of key 'k': an empty allow-list would lock"),
    (lambda kms: kms.restore("k", 1, []), "Could not restore key 'k': the snapshot's allow-list is empty"),
    (lambda kms: kms.create_key("-bad", [M1]), "Could not create key '-bad': key_id must be"),
    (lambda kms: kms.create_version("k", 3), "the next version can only be 2"),
    (lambda kms: kms.set_version_state("k", 1, "disabled"), "version 1 is the primary version"),
    (lambda kms: kms.set_version_state("k", 1, "retired"), "unknown state 'retired'"),
    (lambda kms: kms.schedule_key_deletion("k", 3), "pending_window_days must be between 7 and 30, got 3"),
    (lambda kms: kms.encrypt("k", b"", {}), "plaintext must be 1-4096 bytes"),
    (lambda kms: kms.acquire_lock("k", "", 60), "lock owner must not be empty"),
])
def test_a_refused_request_never_reaches_a_hook(kms, call, message):
    with pytest.raises((InputError, ConflictError)) as info:
        call(kms)
    assert message in str(info.value)
    assert kms.calls == []


def test_an_unchanged_request_calls_no_hook(kms):
    kms.keys["k"]["env"] = "staging"
    kms.set_primary("k", 1)
    kms.set_version_state("k", 1, "enabled")
    kms.record_env("k", "staging")
    assert kms.calls == []
    kms.create_version("k", 2)
    kms.set_primary("k", 2)
    kms.set_version_state("k", 1, "disabled")
    kms.set_version_state("k", 1, "disabled")
    assert kms.calls == [("create_version", 2), ("set_primary", 2), ("set_version_state", 1, "disabled")]


def test_a_recorded_environment_is_never_replaced(kms):
    kms.keys["k"]["env"] = "staging"
    with pytest.raises(ConflictError, match="it already belongs to env 'staging'"):
        kms.record_env("k", "production")
    assert kms.calls == []


def test_the_decrypt_gate_comes_before_the_version_and_the_backend(kms):
    kms.create_version("k", 2)  # the primary cannot be disabled: a second version is
    kms.set_version_state("k", 2, "disabled")
    kms.calls.clear()
    with pytest.raises(AccessDeniedError, match="the caller presented no attestation evidence"):
        kms.decrypt("k", "mem.2", {})
    with pytest.raises(AccessDeniedError, match="the caller presented no attestation evidence"):
        kms.decrypt("k", "mem.1", {}, attestation={"document": ""})
    assert kms.calls == []


def test_the_lock_rules_apply_before_the_lock_is_written(kms):
    assert kms.acquire_lock("k", "alice", 60)["owner"] == "alice"
    with pytest.raises(LockHeldError, match="another rotation holds it"):
        kms.acquire_lock("k", "bob", 60)
    assert kms.acquire_lock("k", "bob", 60, takeover_from="alice")["owner"] == "bob"
    with pytest.raises(LockHeldError, match="held by another owner"):
        kms.release_lock("k", "alice")
    assert kms.release_lock("k", "bob") is True
    assert kms.release_lock("k", "bob") is False
    assert kms.calls == [("write_lock", "alice"), ("write_lock", "bob"), ("write_lock", None)]
