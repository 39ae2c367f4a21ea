# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from module_testlib import M1, M2, M3

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider
from ansible_collections.alfred.tee_kms.plugins.modules import measurement_allowlist

KEY = "tokens/refresh"


@pytest.fixture
def kms(store_path):
    provider = LocalKmsProvider(store_path)
    provider.create_key(KEY, [M1, M2])
    return provider


def converge(run_module, store_bytes, kms, expected, added, removed, **args):
    """check mode -> apply -> apply again -> check again."""
    before = kms.describe_key(KEY)["allowed_measurements"]
    saved = store_bytes()
    diff = {"before": {"allowed_measurements": before}, "after": {"allowed_measurements": expected}}
    check = run_module(measurement_allowlist, check_mode=True, diff=True, key_id=KEY, **args)
    assert (check.result["changed"], check.result["allowed_measurements"], check.result["added"], check.result["removed"]) == \
        (True, expected, added, removed)
    assert check.result["diff"] == diff
    assert check.result["audit"]["check_mode"] is True
    assert store_bytes() == saved
    apply = run_module(measurement_allowlist, diff=True, key_id=KEY, **args)
    assert (apply.result["changed"], apply.result["allowed_measurements"], apply.result["added"], apply.result["removed"]) == \
        (True, expected, added, removed)
    assert apply.result["diff"] == diff
    assert kms.describe_key(KEY)["allowed_measurements"] == expected
    saved = store_bytes()
    for check_mode in (False, True):
        again = run_module(measurement_allowlist, check_mode=check_mode, diff=True, key_id=KEY, **args)
        assert (again.result["changed"], again.result["added"], again.result["removed"]) == (False, [], [])
        assert "diff" not in again.result
    assert store_bytes() == saved


def test_exact_replaces_the_list(kms, run_module, store_bytes, assert_no_material):
    converge(run_module, store_bytes, kms, [M2, M3], [M3], [M1], measurements=[M2, M3.upper()], protect=[M2])
    assert_no_material()


def test_present_adds_and_absent_removes(kms, run_module, store_bytes):
    converge(run_module, store_bytes, kms, [M1, M2, M3], [M3], [], measurements=[M3, M1], state="present")
    converge(run_module, store_bytes, kms, [M2, M3], [], [M1], measurements=["0x" + M1], state="absent")


def _short(value):
    return f"{value[:16]}..."


@pytest.mark.parametrize("args, message", [
    (dict(measurements=[]), f"Could not update the allow-list of key '{KEY}': the result would be empty and lock every enclave out"),
    (dict(measurements=[M1, M2], state="absent"),
     f"Could not update the allow-list of key '{KEY}': the result would be empty and lock every enclave out"),
    (dict(measurements=[M3], protect=[M1]),
     f"Could not update the allow-list of key '{KEY}': it would drop protected measurement(s) {_short(M1)}, locking out live enclaves"),
    (dict(measurements=[M1, M2], state="absent", protect=[M2, M3]),
     f"Could not update the allow-list of key '{KEY}': the result would be empty and lock every enclave out"),
    (dict(measurements=[M2], state="exact", protect=[M1, M3]),
     f"Could not update the allow-list of key '{KEY}': it would drop protected measurement(s) {_short(M1)}, {_short(M3)}, "
     "locking out live enclaves"),
    (dict(measurements=[M3[:-4]]),
     f"Could not update the allow-list of key '{KEY}' with measurement '{M3[:12]}...{M3[-12:-4]}': has 92 hex characters, sha384 needs 96"),
    (dict(measurements=["xyz" + M3[3:]]),
     f"Could not update the allow-list of key '{KEY}' with measurement 'xyz{M3[3:12]}...{M3[-8:]}': not hexadecimal (sha384 needs 96 hex characters)"),
    (dict(measurements=["0" * 96]),
     f"Could not update the allow-list of key '{KEY}' with measurement '000000000000...00000000': "
     "all-zero measurements belong to debug enclaves and are always refused"),
    (dict(measurements=[M1], protect=["bad!"]),
     f"Could not update the allow-list of key '{KEY}' with measurement 'bad!': not hexadecimal (sha384 needs 96 hex characters)"),
    (dict(measurements=[M1], measurement_format="opaque"),
     f"Could not update the allow-list of key '{KEY}': measurement_format opaque differs from the key's sha384"),
])
def test_refusals_change_nothing(kms, run_module, store_bytes, args, message):
    saved = store_bytes()
    for check_mode in (True, False):
        run = run_module(measurement_allowlist, check_mode=check_mode, key_id=KEY, **args)
        assert run.failed, run.result
        assert run.result["msg"] == message
        assert run.result["error"]["code"] == "invalid_input"
        assert "exception" not in run.result
    assert store_bytes() == saved


def test_dev_marker_on_opaque_key_needs_allow_dev_measurements(run_module, store_path, store_bytes):
    kms = LocalKmsProvider(store_path)
    kms.create_key("dev/key", ["image-a1"], measurement_format="opaque")
    saved = store_bytes()
    run = run_module(measurement_allowlist, key_id="dev/key", measurements=["dev-local-enclave"], state="present")
    assert run.failed
    assert run.result["msg"] == ("Could not update the allow-list of key 'dev/key' with measurement 'dev-local-enclave': "
                                 "development/debug enclave markers are refused")
    assert store_bytes() == saved
    run = run_module(measurement_allowlist, key_id="dev/key", measurements=["dev-local-enclave"], state="present",
                     allow_dev_measurements=True)
    assert run.result["changed"] is True and run.result["allowed_measurements"] == ["image-a1", "dev-local-enclave"]


def test_missing_key_and_scheduled_deletion(kms, run_module, store_path, store_bytes):
    run = run_module(measurement_allowlist, key_id="tokens/nope", measurements=[M1])
    assert run.failed
    assert run.result["msg"] == f"Could not read key 'tokens/nope': it does not exist in key store '{store_path}'"
    kms.schedule_key_deletion(KEY, 7)
    when = kms.describe_key(KEY)["pending_deletion_at"]
    saved = store_bytes()
    for check_mode in (True, False):  # the rehearsal fails exactly like the real run
        run = run_module(measurement_allowlist, check_mode=check_mode, key_id=KEY, measurements=[M3])
        assert run.failed and run.result["error"]["code"] == "conflict"
        assert run.result["msg"] == f"Could not update the allow-list of key '{KEY}': it is scheduled for deletion on {when}"
    unchanged = run_module(measurement_allowlist, key_id=KEY, measurements=[M1, M2])
    assert unchanged.result["changed"] is False  # nothing to do is not an error
    assert store_bytes() == saved


def test_order_only_difference_is_not_a_change(kms, run_module, store_bytes):
    saved = store_bytes()
    run = run_module(measurement_allowlist, key_id=KEY, measurements=[M2, M1])
    assert run.result["changed"] is False
    assert run.result["allowed_measurements"] == [M1, M2]  # what the key holds, not the request's order
    assert store_bytes() == saved
