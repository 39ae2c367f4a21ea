# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from module_testlib import M1, M2

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider
from ansible_collections.alfred.tee_kms.plugins.modules import kms_key_info

KEY = "tokens/refresh"


def test_reports_versions_lock_and_snapshot_without_material(run_module, store_path, store_bytes, assert_no_material):
    kms = LocalKmsProvider(store_path)
    kms.create_key(KEY, [M1, M2])
    kms.create_version(KEY, 2)
    kms.set_version_state(KEY, 2, "disabled")
    lock = kms.acquire_lock(KEY, "alice@ops-1", 600)
    kms.save_snapshot(KEY, {"primary_version": 1, "allowed_measurements": [M1, M2]})
    saved = store_bytes()
    for check_mode in (False, True):
        run = run_module(kms_key_info, check_mode=check_mode, key_id=KEY)
        assert run.result["changed"] is False and run.result["exists"] is True
        key = run.result["key"]
        assert key["key_id"] == KEY and key["primary_version"] == 1
        assert [(v["version"], v["state"]) for v in key["versions"]] == [(1, "enabled"), (2, "disabled")]
        assert all(set(v) == {"version", "state", "created_at"} for v in key["versions"])
        assert key["allowed_measurements"] == [M1, M2]
        assert key["measurement_format"] == "sha384"
        assert key["lock"] == lock
        assert key["snapshot"] == {"primary_version": 1, "allowed_measurements": [M1, M2]}
        assert run.result["audit"] == {"kind": "key_state", "key_id": KEY, "primary_version": 1,
                                       "versions": key["versions"], "allowed_measurements": [M1, M2]}
        assert "material" not in run.output
    assert store_bytes() == saved
    assert_no_material()


def test_reports_the_trust_kept_with_the_key(run_module, store_path):
    """The rotation role verifies live attestation against it when no trust is given (trust given once)."""
    kms = LocalKmsProvider(store_path)
    kms.create_key(KEY, [M1], "sha384", {"public_keys": ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]})
    kms.create_key("tokens/other", [M1])
    assert run_module(kms_key_info, key_id=KEY).result["key"]["attestation_trust"] == {
        "public_keys": ["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]}
    assert run_module(kms_key_info, key_id="tokens/other").result["key"]["attestation_trust"] == {}


def test_missing_key_fails_unless_missing_ok(run_module, store_path, store_bytes):
    run = run_module(kms_key_info, key_id=KEY)
    assert run.failed
    assert run.result["msg"] == f"Could not read key '{KEY}': it does not exist in key store '{store_path}' (the file does not exist yet)"
    assert run.result["error"]["code"] == "not_found"
    ok = run_module(kms_key_info, key_id=KEY, missing_ok=True)
    assert ok.result["changed"] is False and ok.result["exists"] is False and ok.result["key"] == {}
    assert store_bytes() is None  # a read never creates the store


def test_invalid_key_id_is_refused(run_module):
    run = run_module(kms_key_info, key_id="../etc/passwd")
    assert run.failed
    assert run.result["msg"] == ("Could not read key '../etc/passwd': key_id must be 1-256 characters of letters, digits and "
                                 "/_+=.@:- starting with a letter or digit")
