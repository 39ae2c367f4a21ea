# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import base64
import json

import pytest
from module_testlib import M1, M2, M3, warning_texts
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider
from ansible_collections.alfred.tee_kms.plugins.modules import kms_key

KEY = "tokens/refresh"


def public_key_b64():
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def test_create_check_apply_idempotent(run_module, store_bytes, store_path, assert_no_material):
    args = dict(key_id=KEY, allowed_measurements=[M1.upper(), M2], description="refresh tokens")

    check = run_module(kms_key, check_mode=True, diff=True, **args)
    assert check.result["changed"] is True
    assert store_bytes() is None  # nothing written
    assert check.result["key"]["primary_version"] == 1
    assert check.result["key"]["allowed_measurements"] == [M1, M2]
    assert check.result["diff"]["before"] == {}
    assert check.result["diff"]["after"]["versions"][0]["state"] == "enabled"
    assert check.result["audit"]["check_mode"] is True

    apply = run_module(kms_key, diff=True, **args)
    assert apply.result["changed"] is True
    key = apply.result["key"]
    assert key["key_id"] == KEY and key["primary_version"] == 1 and key["allowed_measurements"] == [M1, M2]
    assert [(v["version"], v["state"]) for v in key["versions"]] == [(1, "enabled")]
    assert apply.result["diff"] == {"before": {}, "after": key}
    assert LocalKmsProvider(store_path).describe_key(KEY)["description"] == "refresh tokens"
    saved = store_bytes()

    again = run_module(kms_key, diff=True, **args)
    assert again.result["changed"] is False and "diff" not in again.result
    assert again.result["key"] == key
    check_again = run_module(kms_key, check_mode=True, diff=True, **args)
    assert check_again.result["changed"] is False
    assert store_bytes() == saved
    assert_no_material()


@pytest.mark.parametrize("measurements, fmt, allow_dev, message", [
    ([], None, False, f"Could not create key '{KEY}': allowed_measurements must list at least one measurement"),
    (None, None, False, f"Could not create key '{KEY}': allowed_measurements must list at least one measurement"),
    ([M1[:-1]], None, False, f"Could not create measurement '{M1[:12]}...{M1[-9:-1]}': has 95 hex characters, sha384 needs 96"),
    ([M1, "z" * 96], None, False, "Could not create measurement 'zzzzzzzzzzzz...zzzzzzzz': not hexadecimal (sha384 needs 96 hex characters)"),
    (["0" * 96], None, False, "Could not create measurement '000000000000...00000000': all-zero measurements belong to debug enclaves and are always refused"),
    ([M1], "sha256", False, f"Could not create measurement '{M1[:12]}...{M1[-8:]}': has 96 hex characters, sha256 needs 64"),
    (["dev-local-enclave"], "opaque", False, "Could not create measurement 'dev-local-enclave': development/debug enclave markers are refused"),
    (["dev-local-enclave"], None, True, "Could not create measurement 'dev-local-enclave': not hexadecimal (sha384 needs 96 hex characters)"),
])
def test_create_refuses_bad_allow_lists_and_writes_nothing(run_module, store_bytes, measurements, fmt, allow_dev, message):
    for check_mode in (True, False):
        run = run_module(kms_key, check_mode=check_mode, key_id=KEY, allowed_measurements=measurements,
                         measurement_format=fmt, allow_dev_measurements=allow_dev)
        assert run.failed and run.result["msg"] == message
        assert run.result["error"]["code"] == "invalid_input"
        assert "Traceback" not in run.output
        assert store_bytes() is None


def test_dev_measurement_needs_allow_dev_measurements_and_opaque(run_module, store_path):
    run = run_module(kms_key, key_id="dev/key", allowed_measurements=["dev-local-enclave"], measurement_format="opaque",
                     allow_dev_measurements=True)
    assert run.result["changed"] is True
    assert run.result["key"]["allowed_measurements"] == ["dev-local-enclave"]
    assert run.result["key"]["measurement_format"] == "opaque"


def test_creating_an_existing_key_refuses_another_allow_list_with_exact_allowlist(run_module, store_bytes, store_path):
    """Issue 22 item 14: creating a key that exists never replaces its allow-list (it changes through a rotation);
    exact_allowlist (playbooks/create_key.yml) refuses a different one, else it is ignored with a warning."""
    LocalKmsProvider(store_path).create_key(KEY, [M1])
    saved = store_bytes()
    run = run_module(kms_key, key_id=KEY, measurement_format="sha256", allowed_measurements=[M1])
    assert run.failed
    assert run.result["msg"] == f"Could not update key '{KEY}': measurement_format sha256 differs from the key's sha384"
    same = run_module(kms_key, key_id=KEY, allowed_measurements=[M1.upper()], exact_allowlist=True)
    assert same.result["changed"] is False and not warning_texts(same.result)
    assert same.result["key"]["allowed_measurements"] == [M1]
    for check_mode in (True, False):
        run = run_module(kms_key, check_mode=check_mode, key_id=KEY, allowed_measurements=[M2], exact_allowlist=True)
        assert run.failed, run.result
        assert run.result["msg"] == (
            f"Could not create key '{KEY}': it exists with another allow-list (the request adds {M2[:16]}... and removes "
            f"{M1[:16]}...); nothing was changed. An existing key's allow-list changes through a rotation "
            "(playbooks/rotate.yml) or alfred.tee_kms.measurement_allowlist")
        assert run.result["diff"] == {"before": {"allowed_measurements": [M1]}, "after": {"allowed_measurements": [M2]}}
    # Module warnings are kept per process: the warning case comes last.
    ignored = run_module(kms_key, key_id=KEY, allowed_measurements=[M2])
    assert ignored.result["changed"] is False and ignored.result["key"]["allowed_measurements"] == [M1]
    assert warning_texts(ignored.result) == [
        "allowed_measurements only applies when the key is created; use alfred.tee_kms.measurement_allowlist to change it"]
    assert store_bytes() == saved


def test_creating_an_existing_key_replaces_its_trust_only_with_update_trust(run_module, store_bytes, store_path):
    """Issue 22 item 14: a different trust is refused with both values named, unless update_trust (recorded)."""
    LocalKmsProvider(store_path).create_key(KEY, [M1])
    trust = {"public_keys": [public_key_b64()], "max_age": 120}
    saved = store_bytes()
    for check_mode in (True, False):
        refused = run_module(kms_key, check_mode=check_mode, key_id=KEY, attestation_trust=trust)
        assert refused.failed, refused.result
        assert refused.result["msg"] == (
            f"Could not create key '{KEY}': it exists with another attestation trust (max_age: unset -> 120; public_keys: unset -> "
            f"{json.dumps(trust['public_keys'])}); nothing was changed. To replace the key's trust, set update_trust=true "
            "(recorded in the evidence)")
        assert refused.result["diff"] == {"before": {"attestation_trust": {}}, "after": {"attestation_trust": trust}}
    assert store_bytes() == saved
    check = run_module(kms_key, check_mode=True, diff=True, key_id=KEY, attestation_trust=trust, update_trust=True)
    assert check.result["changed"] is True
    assert check.result["diff"] == {"before": {"attestation_trust": {}}, "after": {"attestation_trust": trust}}
    assert store_bytes() == saved
    apply = run_module(kms_key, key_id=KEY, attestation_trust=trust, update_trust=True)
    assert apply.result["changed"] is True
    assert apply.result["audit"]["operation"] == "set_attestation_trust" and apply.result["audit"]["update_trust"] is True
    assert LocalKmsProvider(store_path).describe_key(KEY)["attestation_trust"] == trust
    saved = store_bytes()
    assert run_module(kms_key, key_id=KEY, attestation_trust=trust).result["changed"] is False
    assert run_module(kms_key, key_id=KEY).result["changed"] is False  # trust not given: left alone
    bad = run_module(kms_key, key_id=KEY, attestation_trust={"public_keys": ["bm90LWEta2V5"]})
    assert bad.failed
    assert bad.result["msg"] == "Could not configure attestation trust for key: public_keys entries must be base64 of 32-byte Ed25519 public keys"
    bad = run_module(kms_key, key_id=KEY, attestation_trust={"jwks": "{not json"})
    assert bad.result["msg"] == "Could not configure attestation trust for key: jwks is neither JSON nor a path to a JSON file"
    assert store_bytes() == saved


def test_absent_schedules_deletion_only_with_allow_destroy(run_module, store_bytes, store_path, assert_no_material):
    LocalKmsProvider(store_path).create_key(KEY, [M1, M3])
    saved = store_bytes()
    refused = run_module(kms_key, key_id=KEY, state="absent")
    assert refused.failed
    assert refused.result["msg"] == (f"Could not schedule deletion of key '{KEY}': state=absent destroys every version; "
                                     "set allow_destroy=true to confirm")
    short = run_module(kms_key, key_id=KEY, state="absent", allow_destroy=True, pending_window_days=3)
    assert short.result["msg"] == (f"Could not schedule destruction of key '{KEY}': pending_window_days must be between 7 and 30, got 3")
    check = run_module(kms_key, check_mode=True, diff=True, key_id=KEY, state="absent", allow_destroy=True)
    assert check.result["changed"] is True
    assert [v["state"] for v in check.result["diff"]["after"]["versions"]] == ["destroy_scheduled"]
    assert store_bytes() == saved
    apply = run_module(kms_key, key_id=KEY, state="absent", allow_destroy=True, pending_window_days=7)
    assert apply.result["changed"] is True
    assert apply.result["key"]["pending_deletion_at"]
    assert [v["state"] for v in apply.result["key"]["versions"]] == ["destroy_scheduled"]
    saved = store_bytes()
    again = run_module(kms_key, key_id=KEY, state="absent", allow_destroy=True)
    assert again.result["changed"] is False
    missing = run_module(kms_key, key_id="tokens/never", state="absent")
    assert missing.result == {**missing.result, "changed": False, "key": {}}
    assert store_bytes() == saved
    assert_no_material()


def test_secret_options_never_reach_the_output(run_module, store_path):
    secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEYq9"
    session_token = "FwoGZXIvYXdzEJr//////////wEaDOhYpLanted0Token"
    for check_mode in (True, False):
        run = run_module(kms_key, check_mode=check_mode, key_id=KEY, allowed_measurements=[M1],
                         secret_key=secret_key, session_token=session_token)
        assert not run.failed
        assert secret_key not in run.output and session_token not in run.output
        # ansible-core 2.21 returns `invocation` only when the controller asks for it.
        if "invocation" in run.result:
            assert run.result["invocation"]["module_args"]["secret_key"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    failed = run_module(kms_key, key_id="bad key!", allowed_measurements=[M1], aws_secret_access_key=secret_key,
                        aws_session_token=session_token)
    assert failed.failed and failed.result["error"]["code"] == "invalid_input"
    assert secret_key not in failed.output and session_token not in failed.output


def test_store_errors_are_clear_failures(run_module, store_path, store_bytes):
    LocalKmsProvider(store_path).create_key(KEY, [M1])
    with open(store_path, "r+b") as handle:
        handle.truncate(40)
    saved = store_bytes()
    run = run_module(kms_key, key_id=KEY, allowed_measurements=[M1])
    assert run.failed
    assert run.result["msg"] == (f"Could not read key store '{store_path}': the file is not valid JSON (truncated or corrupted); "
                                 "restore it from a backup")
    assert run.result["error"] == {"code": "store", "action": "read", "object": f"key store '{store_path}'",
                                   "cause": "the file is not valid JSON (truncated or corrupted); restore it from a backup"}
    assert store_bytes() == saved
    missing = run_module(kms_key, key_id=KEY, allowed_measurements=[M1], store_path="")
    assert missing.failed
    assert missing.result["msg"] == "Could not use the local KMS provider: store_path is required (or set ALFRED_TEE_KMS_STORE)"


def test_store_path_falls_back_to_the_environment(run_module, store_path, monkeypatch, tmp_path):
    env_store = str(tmp_path / "env" / "store.json")
    monkeypatch.setenv("ALFRED_TEE_KMS_STORE", env_store)
    run = run_module(kms_key, key_id=KEY, allowed_measurements=[M1], store_path=None)
    assert run.result["changed"] is True
    assert LocalKmsProvider(env_store).describe_key(KEY)["primary_version"] == 1


def test_trust_change_on_key_pending_deletion_is_refused_in_check_mode_too(run_module, store_path, store_bytes):
    kms = LocalKmsProvider(store_path)
    kms.create_key(KEY, [M1])
    kms.schedule_key_deletion(KEY, 7)
    when = kms.describe_key(KEY)["pending_deletion_at"]
    saved = store_bytes()
    for check_mode in (True, False):
        run = run_module(kms_key, check_mode=check_mode, key_id=KEY, attestation_trust={"max_age": 60})
        assert run.failed and run.result["error"]["code"] == "conflict"
        assert run.result["msg"] == f"Could not update attestation trust of key '{KEY}': it is scheduled for deletion on {when}"
    assert run_module(kms_key, key_id=KEY).result["changed"] is False
    assert store_bytes() == saved


def test_attestation_trust_uses_the_one_trust_definition(run_module, store_bytes, store_path):
    LocalKmsProvider(store_path).create_key(KEY, [M1])
    saved = store_bytes()
    refused = run_module(kms_key, key_id=KEY, attestation_trust={"jwks_url": "https://attest.example/keys"})
    assert refused.failed
    assert refused.result["msg"].startswith("Could not configure attestation trust for key: jwks_url cannot be kept with a key")
    refused = run_module(kms_key, key_id=KEY, attestation_trust={"nitro_pcrs": [0, 0]})
    assert refused.failed and "nitro_pcrs must be distinct PCR indexes 0..31" in refused.result["msg"]
    refused = run_module(kms_key, key_id=KEY, attestation_trust={"algorithms": ["HS256"]})
    assert refused.failed and "HS256" in refused.result["msg"]  # the argument spec's choices, as attestation_verify
    assert store_bytes() == saved
