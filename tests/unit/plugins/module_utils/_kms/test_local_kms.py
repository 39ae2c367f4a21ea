# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``local`` provider: key lifecycle rules, AES-256-GCM data path, attested decrypt,
rotation lock and snapshot. Real store files, real keys, real alfred evidence."""

from __future__ import annotations

import base64
import datetime
import json
import time

import pytest
from kms_testlib import M1, M2, M3, Signer, file_bytes

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import (
    AccessDeniedError,
    ConflictError,
    InputError,
    LockHeldError,
    NotFoundError,
)
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local_store import LocalStore

KEY = "tokens/refresh"
CTX = {"purpose": "refresh-token", "tenant": "acme"}


@pytest.fixture
def kms(store_path, signer):
    provider = LocalKmsProvider(store_path)
    provider.create_key(KEY, [M1, M2], attestation_trust={"public_keys": [signer.public_b64]}, description="refresh tokens")
    return provider


def unchanged(provider):
    """Context: the call must raise and leave the store byte-for-byte as it was."""
    class _Guard:
        def __enter__(self):
            self.before = file_bytes(provider.store.path)
            return self

        def __exit__(self, *exc):
            assert file_bytes(provider.store.path) == self.before, "a refused call changed the store"
            return False

    return _Guard()


def raises_unchanged(provider, error, message):
    """Assert the call raises ``error`` with exactly ``message`` and writes nothing."""
    class _Both:
        def __enter__(self):
            self.guard = unchanged(provider).__enter__()
            self.raises = pytest.raises(error)
            self.info = self.raises.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self.raises.__exit__(*exc)
            self.guard.__exit__(None, None, None)
            assert str(self.info.value) == message
            return suppressed

    return _Both()


# --- key lifecycle -----------------------------------------------------------------------
def test_create_key_has_enabled_primary_version_1_and_no_material_in_description(kms):
    state = kms.describe_key(KEY)
    assert state["primary_version"] == 1
    assert [(v["version"], v["state"]) for v in state["versions"]] == [(1, "enabled")]
    assert state["allowed_measurements"] == [M1, M2]
    assert state["measurement_format"] == "sha384"
    assert state["description"] == "refresh tokens"
    assert state["lock"] is None and state["snapshot"] is None
    assert "material" not in json.dumps(state)
    raw = json.loads(file_bytes(kms.store.path))["keys"][KEY]["versions"][0]["material"]
    assert len(raw) == 43  # 32 bytes, urlsafe base64 without padding
    assert raw not in json.dumps(state)


def test_create_key_refusals(kms):
    with raises_unchanged(kms, ConflictError, f"Could not create key '{KEY}': it already exists"):
        kms.create_key(KEY, [M1])
    with raises_unchanged(kms, InputError,
                          "Could not create key 'tokens/new': allowed_measurements must not be empty: an empty allow-list locks every enclave out"):
        kms.create_key("tokens/new", [])
    with raises_unchanged(kms, InputError, "Could not create key 'bad key': key_id must be 1-256 characters of letters, digits and "
                                           "/_+=.@:- starting with a letter or digit"):
        kms.create_key("bad key", [M1])
    with raises_unchanged(kms, InputError, "Could not configure attestation trust for key: public_keys entries must be base64 of "
                                           "32-byte Ed25519 public keys"):
        kms.create_key("tokens/new", [M1], attestation_trust={"public_keys": ["c2hvcnQ="]})
    with raises_unchanged(kms, InputError, "Could not configure attestation trust for key: unknown fields colour"):
        kms.create_key("tokens/new", [M1], attestation_trust={"colour": "blue"})


def test_missing_key_and_unknown_version_messages(kms, store_path, tmp_path):
    with pytest.raises(NotFoundError) as info:
        kms.describe_key("tokens/nope")
    assert str(info.value) == f"Could not read key 'tokens/nope': it does not exist in key store '{store_path}'"
    assert kms.find_key("tokens/nope") is None
    empty = LocalKmsProvider(str(tmp_path / "none.json"))
    with pytest.raises(NotFoundError) as info:
        empty.describe_key(KEY)
    assert str(info.value) == f"Could not read key '{KEY}': it does not exist in key store '{tmp_path / 'none.json'}' (the file does not exist yet)"
    with raises_unchanged(kms, NotFoundError, f"Could not create a version of key 'tokens/nope': it does not exist in key store '{store_path}'"):
        kms.create_version("tokens/nope", 2)
    with raises_unchanged(kms, NotFoundError, f"Could not promote version 9 of key '{KEY}': the key has versions 1"):
        kms.set_primary(KEY, 9)
    with raises_unchanged(kms, NotFoundError, f"Could not disable version 9 of key '{KEY}': the key has versions 1"):
        kms.set_version_state(KEY, 9, "disabled")
    with raises_unchanged(kms, InputError, f"Could not change version 1 of key '{KEY}': unknown state 'retired'"):
        kms.set_version_state(KEY, 1, "retired")
    with pytest.raises(InputError):
        LocalKmsProvider("")


def test_create_version_accepts_only_n_plus_1_as_enabled_non_primary(kms):
    for wrong in (1, 3, 0):
        with raises_unchanged(kms, InputError, f"Could not create version {wrong} of key '{KEY}': the key's latest version is 1; "
                                               "the next version can only be 2"):
            kms.create_version(KEY, wrong)
    kms.create_version(KEY, 2)
    state = kms.describe_key(KEY)
    assert [(v["version"], v["state"]) for v in state["versions"]] == [(1, "enabled"), (2, "enabled")]
    assert state["primary_version"] == 1
    raw = json.loads(file_bytes(kms.store.path))["keys"][KEY]["versions"]
    assert raw[0]["material"] != raw[1]["material"]
    with raises_unchanged(kms, InputError, f"Could not create version 2 of key '{KEY}': the key's latest version is 2; "
                                           "the next version can only be 3"):
        kms.create_version(KEY, 2)


def test_promote_only_enabled_versions_and_never_disable_the_primary(kms):
    kms.create_version(KEY, 2)
    kms.set_version_state(KEY, 2, "disabled")
    with raises_unchanged(kms, ConflictError, f"Could not promote version 2 of key '{KEY}': version 2 is disabled"):
        kms.set_primary(KEY, 2)
    with raises_unchanged(kms, ConflictError, f"Could not disable version 1 of key '{KEY}': version 1 is the primary version; "
                                              "promote another version first"):
        kms.set_version_state(KEY, 1, "disabled")
    with raises_unchanged(kms, ConflictError, f"Could not schedule destruction of version 1 of key '{KEY}': version 1 is the primary "
                                              "version; promote another version first"):
        kms.set_version_state(KEY, 1, "destroy_scheduled", 7)
    kms.set_version_state(KEY, 2, "enabled")
    kms.set_primary(KEY, 2)
    assert kms.describe_key(KEY)["primary_version"] == 2
    kms.set_version_state(KEY, 1, "disabled")
    assert [v["state"] for v in kms.describe_key(KEY)["versions"]] == ["disabled", "enabled"]
    saved = file_bytes(kms.store.path)
    kms.set_primary(KEY, 2)  # already primary: nothing rewritten
    assert file_bytes(kms.store.path) == saved


def test_version_destruction_needs_a_7_to_30_day_window(kms):
    kms.create_version(KEY, 2)
    for days in (6, 31, 0):
        with raises_unchanged(kms, InputError, f"Could not schedule destruction of version 2 of key '{KEY}': pending_window_days must be "
                                               f"between 7 and 30, got {days}"):
            kms.set_version_state(KEY, 2, "destroy_scheduled", days)
    kms.set_version_state(KEY, 2, "destroy_scheduled", 7)
    entry = kms.describe_key(KEY)["versions"][1]
    assert entry["state"] == "destroy_scheduled"
    expected = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=7)
    assert abs(datetime.datetime.strptime(entry["destroy_after"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc) - expected) \
        < datetime.timedelta(seconds=30)
    with raises_unchanged(kms, ConflictError, f"Could not promote version 2 of key '{KEY}': version 2 is destroy_scheduled"):
        kms.set_primary(KEY, 2)
    kms.set_version_state(KEY, 2, "enabled")  # cancel
    entry = kms.describe_key(KEY)["versions"][1]
    assert entry["state"] == "enabled" and "destroy_after" not in entry


def test_schedule_key_deletion(kms):
    for days in (6, 31):
        with raises_unchanged(kms, InputError, f"Could not schedule destruction of key '{KEY}': pending_window_days must be between "
                                               f"7 and 30, got {days}"):
            kms.schedule_key_deletion(KEY, days)
    ciphertext = kms.encrypt(KEY, b"t", CTX)
    kms.schedule_key_deletion(KEY, 30)
    state = kms.describe_key(KEY)  # still readable
    assert {v["state"] for v in state["versions"]} == {"destroy_scheduled"}
    when = state["pending_deletion_at"]
    assert state["versions"][0]["destroy_after"] == when
    pending = f"Could not %s key '{KEY}': it is scheduled for deletion on {when}"
    with raises_unchanged(kms, ConflictError, pending % "create a version of"):
        kms.create_version(KEY, 2)
    with raises_unchanged(kms, ConflictError, pending % "update the allow-list of"):
        kms.set_allowed_measurements(KEY, [M3])
    with raises_unchanged(kms, ConflictError, pending % "encrypt"):
        kms.encrypt(KEY, b"t", CTX)
    with raises_unchanged(kms, ConflictError, pending % "decrypt"):
        kms.decrypt(KEY, ciphertext, CTX, Signer().attestation(M1))


# --- data path ---------------------------------------------------------------------------
def test_encrypt_decrypt_roundtrip_binds_the_encryption_context(kms, signer):
    ciphertext = kms.encrypt(KEY, b"refresh-token-123", CTX)
    assert b"refresh-token-123" not in ciphertext.encode()
    assert kms.parse_ciphertext(ciphertext)[:2] == (KEY, 1)
    assert kms.decrypt(KEY, ciphertext, dict(CTX), signer.attestation(M1)) == b"refresh-token-123"
    message = f"Could not decrypt a ciphertext under version 1 of key '{KEY}': the ciphertext does not authenticate under this encryption context"
    for context in ({"purpose": "refresh-token"}, {**CTX, "tenant": "evil"}, {}, None):
        with raises_unchanged(kms, AccessDeniedError, message):
            kms.decrypt(KEY, ciphertext, context, signer.attestation(M1))
    assert kms.encrypt(KEY, b"x", CTX) != kms.encrypt(KEY, b"x", CTX)  # fresh nonce each time


def test_encrypt_input_limits(kms):
    for bad in (b"", b"x" * 4097, "text"):
        with raises_unchanged(kms, InputError, f"Could not encrypt data under key '{KEY}': plaintext must be 1-4096 bytes"):
            kms.encrypt(KEY, bad, CTX)
    assert kms.encrypt(KEY, b"x" * 4096, CTX).startswith("tkms1.")


def test_ciphertext_names_its_version_and_old_versions_decrypt_after_rotation(kms, signer):
    old = kms.encrypt(KEY, b"before rotation", CTX)
    kms.create_version(KEY, 2)
    staged = kms.encrypt(KEY, b"canary", CTX, version=2)  # canary under the non-primary next version
    assert kms.parse_ciphertext(staged)[:2] == (KEY, 2)
    assert kms.parse_ciphertext(kms.encrypt(KEY, b"x", CTX))[1] == 1  # primary is still 1
    kms.set_primary(KEY, 2)
    new = kms.encrypt(KEY, b"after rotation", CTX)
    assert kms.parse_ciphertext(new)[:2] == (KEY, 2)
    evidence = signer.attestation(M2)
    assert kms.decrypt(KEY, old, CTX, evidence) == b"before rotation"
    assert kms.decrypt(KEY, staged, CTX, evidence) == b"canary"
    assert kms.decrypt(KEY, new, CTX, evidence) == b"after rotation"
    kms.set_version_state(KEY, 1, "disabled")
    with raises_unchanged(kms, AccessDeniedError, f"Could not decrypt a ciphertext under version 1 of key '{KEY}': version 1 is disabled"):
        kms.decrypt(KEY, old, CTX, evidence)
    with raises_unchanged(kms, ConflictError, f"Could not encrypt data under version 1 of key '{KEY}': version 1 is disabled"):
        kms.encrypt(KEY, b"x", CTX, version=1)
    kms.set_version_state(KEY, 1, "enabled")
    assert kms.decrypt(KEY, old, CTX, evidence) == b"before rotation"


def test_ciphertext_tampering_and_key_confusion_are_refused(kms, signer, store_path):
    kms.create_key("tokens/other", [M1], attestation_trust={"public_keys": [signer.public_b64]})
    ciphertext = kms.encrypt(KEY, b"secret", CTX)
    with raises_unchanged(kms, AccessDeniedError, "Could not decrypt a ciphertext under version 1 of key 'tokens/other': "
                                                  f"the ciphertext belongs to key '{KEY}'"):
        kms.decrypt("tokens/other", ciphertext, CTX, signer.attestation(M1))
    prefix, header, nonce, sealed = ciphertext.split(".")
    flipped = sealed[:5] + ("A" if sealed[5] != "A" else "B") + sealed[6:]
    with raises_unchanged(kms, AccessDeniedError, f"Could not decrypt a ciphertext under version 1 of key '{KEY}': "
                                                  "the ciphertext does not authenticate under this encryption context"):
        kms.decrypt(KEY, ".".join((prefix, header, nonce, flipped)), CTX, signer.attestation(M1))
    for garbage in ("", "tkms1.x", "tkms2." + ".".join((header, nonce, sealed)), "a.b.c.d"):
        with raises_unchanged(kms, InputError, "Could not decrypt ciphertext: it is not a tkms1 ciphertext of this KMS"):
            kms.decrypt(KEY, garbage, CTX, signer.attestation(M1))
    header9 = base64.urlsafe_b64encode(json.dumps({"k": KEY, "v": 9}).encode()).rstrip(b"=").decode()
    with raises_unchanged(kms, NotFoundError, f"Could not decrypt version 9 of key '{KEY}': the key has versions 1"):
        kms.decrypt(KEY, ".".join((prefix, header9, nonce, sealed)), CTX, signer.attestation(M1))


# --- attested decrypt --------------------------------------------------------------------
DENIED = f"Could not decrypt a ciphertext under version 1 of key '{KEY}': "


def test_attested_decrypt_allows_only_verified_allowed_measurements(kms, signer):
    ciphertext = kms.encrypt(KEY, b"token", CTX)
    assert kms.decrypt(KEY, ciphertext, CTX, signer.attestation(M1)) == b"token"
    assert kms.decrypt(KEY, ciphertext, CTX, signer.attestation(M2.upper())) == b"token"  # hex case is normalised
    document = signer.evidence(M1)
    assert kms.decrypt(KEY, ciphertext, CTX, {"document": document}) == b"token"  # dict, format detected

    cases = {
        "no evidence": (None, "the caller presented no attestation evidence"),
        "empty evidence": ({}, "the caller presented no attestation evidence"),
        "empty document": ({"format": "alfred", "document": ""}, "the caller presented no attestation evidence"),
        "not allowed": (signer.attestation(M3), f"attestation refused (measurement_not_allowed: measurement {M3[:16]}... is not in the allow-list)"),
        "wrong key": (Signer().attestation(M1), "attestation refused (signature: Ed25519 signature does not verify under any trusted public key)"),
        "tampered": (signer.attestation(M3, tamper={"measurement": M1}),
                     "attestation refused (signature: Ed25519 signature does not verify under any trusted public key)"),
        "stale": (signer.attestation(M1, now=int(time.time()), issued_at=int(time.time()) - 900, expires_at=int(time.time()) + 60,
                                     evidence_issued_at=int(time.time()) - 400),
                  None),
        "expired": (signer.attestation(M1, now=int(time.time()) - 3600), "attestation refused (expired: challenge window has expired)"),
        "debug enclave": (signer.attestation("0" * 96), "attestation refused (debug_enclave: all-zero measurement (debug-mode enclave))"),
        "garbage": ({"format": "alfred", "document": "{not json"}, None),
    }
    for name, (attestation, cause) in cases.items():
        with unchanged(kms), pytest.raises(AccessDeniedError) as info:
            kms.decrypt(KEY, ciphertext, CTX, attestation)
        if cause is None:
            assert str(info.value).startswith(DENIED + "attestation refused ("), name
        else:
            assert str(info.value) == DENIED + cause, name
    with pytest.raises(AccessDeniedError) as info:
        kms.decrypt(KEY, ciphertext, CTX, cases["stale"][0])
    assert "attestation refused (stale: evidence is 40" in str(info.value) and "max_age is 300s" in str(info.value)
    with pytest.raises(AccessDeniedError) as info:
        kms.decrypt(KEY, ciphertext, CTX, cases["garbage"][0])
    assert str(info.value).startswith(DENIED + "attestation refused (malformed: alfred evidence is not JSON")


def test_attested_decrypt_checks_the_expected_nonce(kms, signer):
    ciphertext = kms.encrypt(KEY, b"token", CTX)
    attestation = signer.attestation(M1, challenge_nonce="n-123")
    assert kms.decrypt(KEY, ciphertext, CTX, dict(attestation, nonce="n-123")) == b"token"
    with pytest.raises(AccessDeniedError) as info:
        kms.decrypt(KEY, ciphertext, CTX, dict(attestation, nonce="n-999"))
    assert str(info.value) == DENIED + "attestation refused (nonce_mismatch: evidence challenge_nonce differs from the expected nonce)"


def test_allow_list_change_takes_effect_for_decrypt_and_trust_is_enforced(kms, signer):
    ciphertext = kms.encrypt(KEY, b"token", CTX)
    kms.set_allowed_measurements(KEY, [M3])
    assert kms.describe_key(KEY)["allowed_measurements"] == [M3]
    with pytest.raises(AccessDeniedError, match="measurement_not_allowed"):
        kms.decrypt(KEY, ciphertext, CTX, signer.attestation(M1))
    assert kms.decrypt(KEY, ciphertext, CTX, signer.attestation(M3)) == b"token"
    with raises_unchanged(kms, InputError, f"Could not update the allow-list of key '{KEY}': an empty allow-list would lock every enclave out"):
        kms.set_allowed_measurements(KEY, [])
    kms.set_attestation_trust(KEY, {})  # no trust anchors: nothing verifies any more
    with pytest.raises(AccessDeniedError) as info:
        kms.decrypt(KEY, ciphertext, CTX, signer.attestation(M3))
    assert str(info.value) == DENIED + "attestation refused (trust: no Ed25519 public key configured for alfred evidence (public_keys))"
    other = Signer()
    kms.set_attestation_trust(KEY, {"public_keys": [other.public_b64], "max_age": 30})
    assert kms.decrypt(KEY, ciphertext, CTX, other.attestation(M3)) == b"token"
    now = int(time.time())
    with pytest.raises(AccessDeniedError, match=r"stale: evidence is 4\ds old, max_age is 30s"):
        kms.decrypt(KEY, ciphertext, CTX, other.attestation(M3, evidence_issued_at=now - 45, issued_at=now - 50))


# --- rotation lock -----------------------------------------------------------------------
def _parse(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def test_lock_acquire_reentrant_held_release(kms):
    lock = kms.acquire_lock(KEY, "alice@ops-1", 600)
    assert lock["owner"] == "alice@ops-1"
    assert 595 <= (_parse(lock["expires_at"]) - _parse(lock["acquired_at"])).total_seconds() <= 601
    assert kms.get_lock(KEY) == lock
    again = kms.acquire_lock(KEY, "alice@ops-1", 1200)  # re-entrant, renews the expiry
    assert again["acquired_at"] == lock["acquired_at"]
    assert _parse(again["expires_at"]) > _parse(lock["expires_at"])
    held = (f"Could not acquire the rotation lock on key '{KEY}': another rotation holds it (owner 'alice@ops-1', "
            f"since {again['acquired_at']}, expires {again['expires_at']}); if that run is gone (a killed container or controller), "
            "a rollback can break it with break_lock_owner='alice@ops-1'")
    with raises_unchanged(kms, LockHeldError, held):
        kms.acquire_lock(KEY, "bob@ops-2", 600)
    with raises_unchanged(kms, LockHeldError, held):
        kms.acquire_lock(KEY, "bob@ops-2", 600, break_stale=True)  # a live lock is never broken
    with raises_unchanged(kms, LockHeldError, f"Could not release the rotation lock on key '{KEY}': it is held by another owner ('alice@ops-1')"):
        kms.release_lock(KEY, "bob@ops-2")
    with raises_unchanged(kms, InputError, f"Could not acquire the rotation lock on key '{KEY}': lock owner must not be empty"):
        kms.acquire_lock(KEY, "", 600)
    assert kms.release_lock(KEY, "alice@ops-1") is True
    assert kms.get_lock(KEY) is None
    assert kms.release_lock(KEY, "alice@ops-1") is False
    assert kms.acquire_lock(KEY, "bob@ops-2", 60)["owner"] == "bob@ops-2"


def test_stale_lock_is_refused_unless_break_stale(kms):
    expired = {"owner": "crashed-run", "acquired_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-01T01:00:00Z"}
    LocalStore(kms.store.path).mutate("plant", lambda keys: keys[KEY].__setitem__("lock", expired))
    with raises_unchanged(kms, LockHeldError, f"Could not acquire the rotation lock on key '{KEY}': a stale lock of owner 'crashed-run' "
                                              "expired at 2026-01-01T01:00:00Z; confirm that run is gone, then retry with break_stale_lock=true"):
        kms.acquire_lock(KEY, "alice", 600)
    lock = kms.acquire_lock(KEY, "alice", 600, break_stale=True)
    assert lock["owner"] == "alice" and lock["acquired_at"] != expired["acquired_at"]
    assert kms.get_lock(KEY) == lock


# --- snapshot and restore ----------------------------------------------------------------
def test_snapshot_roundtrip_and_restore(kms):
    assert kms.get_snapshot(KEY) is None
    snapshot = {"primary_version": 1, "allowed_measurements": [M1, M2], "taken_at": "2026-11-25T10:00:00Z", "run": "r-1"}
    kms.save_snapshot(KEY, snapshot)
    assert kms.get_snapshot(KEY) == snapshot
    assert LocalKmsProvider(kms.store.path).get_snapshot(KEY) == snapshot  # kept with the key, for a later run

    kms.create_version(KEY, 2)
    kms.set_allowed_measurements(KEY, [M3])
    kms.set_primary(KEY, 2)
    kms.restore(KEY, snapshot["primary_version"], snapshot["allowed_measurements"])
    state = kms.describe_key(KEY)
    assert state["primary_version"] == 1
    assert state["allowed_measurements"] == [M1, M2]
    assert [(v["version"], v["state"]) for v in state["versions"]] == [(1, "enabled"), (2, "enabled")]  # nothing disabled

    kms.set_version_state(KEY, 2, "disabled")
    with raises_unchanged(kms, ConflictError, f"Could not promote version 2 of key '{KEY}': version 2 is disabled"):
        kms.restore(KEY, 2, [M1])
    with raises_unchanged(kms, InputError, f"Could not restore key '{KEY}': the snapshot's allow-list is empty"):
        kms.restore(KEY, 1, [])
    kms.save_snapshot(KEY, None)
    assert kms.get_snapshot(KEY) is None


def test_evaluate_policy(kms):
    assert kms.evaluate_policy(KEY, M1) is True
    assert kms.evaluate_policy(KEY, M3) is False
