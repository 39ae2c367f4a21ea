# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from module_testlib import M1

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.rules import public_state
from ansible_collections.alfred.tee_kms.plugins.modules import kms_key_version

KEY = "tokens/refresh"


@pytest.fixture
def kms(store_path):
    provider = LocalKmsProvider(store_path)
    provider.create_key(KEY, [M1])
    return provider


def _states(kms):
    state = kms.describe_key(KEY)
    return state["primary_version"], [(v["version"], v["state"]) for v in state["versions"]]


def converge(run_module, store_bytes, store_path, expected_diff, **args):
    """check mode -> apply -> apply again -> check again; returns the applying run."""
    saved = store_bytes()
    check = run_module(kms_key_version, check_mode=True, diff=True, key_id=KEY, **args)
    assert check.result["changed"] is True
    assert check.result["diff"] == expected_diff
    assert store_bytes() == saved
    apply = run_module(kms_key_version, diff=True, key_id=KEY, **args)
    assert apply.result["changed"] is True
    assert apply.result["diff"] == expected_diff
    stored = LocalKmsProvider(store_path).describe_key(KEY)
    assert apply.result["key"] == public_state(stored)  # the result reports what was written
    saved = store_bytes()
    for check_mode in (False, True):
        again = run_module(kms_key_version, check_mode=check_mode, diff=True, key_id=KEY, **args)
        assert again.result["changed"] is False and "diff" not in again.result
    assert store_bytes() == saved
    return apply


def test_stage_promote_disable_enable_cycle(kms, run_module, store_bytes, assert_no_material):
    expected = {"before": {"primary_version": 1, "versions": {"1": "enabled"}},
                "after": {"primary_version": 1, "versions": {"1": "enabled", "2": "enabled"}}}
    staged = converge(run_module, store_bytes, store_path=kms.store.path, expected_diff=expected,
                      version=2, state="present")
    assert staged.result["primary"] is False
    assert staged.result["version"]["state"] == "enabled"
    assert staged.result["audit"]["operation"] == "create_version"
    assert _states(kms) == (1, [(1, "enabled"), (2, "enabled")])

    expected = {"before": {"primary_version": 1, "versions": {"1": "enabled", "2": "enabled"}},
                "after": {"primary_version": 2, "versions": {"1": "enabled", "2": "enabled"}}}
    promoted = converge(run_module, store_bytes, store_path=kms.store.path, expected_diff=expected,
                        version=2, state="primary")
    assert promoted.result["primary"] is True and promoted.result["key"]["primary_version"] == 2

    expected = {"before": {"primary_version": 2, "versions": {"1": "enabled", "2": "enabled"}},
                "after": {"primary_version": 2, "versions": {"1": "disabled", "2": "enabled"}}}
    converge(run_module, store_bytes, store_path=kms.store.path, expected_diff=expected,
             version=1, state="disabled")
    expected = {"before": {"primary_version": 2, "versions": {"1": "disabled", "2": "enabled"}},
                "after": {"primary_version": 2, "versions": {"1": "enabled", "2": "enabled"}}}
    converge(run_module, store_bytes, store_path=kms.store.path, expected_diff=expected,
             version=1, state="enabled")
    assert _states(kms) == (2, [(1, "enabled"), (2, "enabled")])
    assert_no_material()


def test_primary_creates_the_next_version_and_promotes_it_in_one_step(kms, run_module, store_bytes):
    expected = {"before": {"primary_version": 1, "versions": {"1": "enabled"}},
                "after": {"primary_version": 2, "versions": {"1": "enabled", "2": "enabled"}}}
    run = converge(run_module, store_bytes, store_path=kms.store.path, expected_diff=expected,
                   version=2, state="primary")
    assert run.result["audit"]["operation"] == "create_version+set_primary"
    assert _states(kms) == (2, [(1, "enabled"), (2, "enabled")])


@pytest.mark.parametrize("setup, args, message, code", [
    ([], dict(version=4, state="present"),
     f"Could not create version 4 of key '{KEY}': the key's latest version is 2; the next version can only be 3", "invalid_input"),
    ([], dict(version=9, state="disabled"), f"Could not disable version 9 of key '{KEY}': the key has versions 1, 2", "not_found"),
    ([], dict(version=9, state="enabled"), f"Could not enable version 9 of key '{KEY}': the key has versions 1, 2", "not_found"),
    ([], dict(version=1, state="disabled"),
     f"Could not disable version 1 of key '{KEY}': version 1 is the primary version; promote another version first", "conflict"),
    ([("set_version_state", 2, "disabled")], dict(version=2, state="primary"),
     f"Could not promote version 2 of key '{KEY}': version 2 is disabled", "conflict"),
    ([], dict(version=0, state="present"), f"Could not manage version 0 of key '{KEY}': versions start at 1", "invalid_input"),
    ([], dict(version=2, state="destroy_scheduled"),
     f"Could not schedule destruction of version 2 of key '{KEY}': destruction is irreversible after the pending window; "
     "set allow_destroy=true to confirm", "invalid_input"),
    ([], dict(version=2, state="destroy_scheduled", allow_destroy=True, pending_window_days=45),
     f"Could not schedule destruction of version 2 of key '{KEY}': pending_window_days must be between 7 and 30, got 45", "invalid_input"),
])
def test_refusals_change_nothing(kms, run_module, store_bytes, setup, args, message, code):
    kms.create_version(KEY, 2)
    for call in setup:
        getattr(kms, call[0])(KEY, *call[1:])
    saved = store_bytes()
    for check_mode in (True, False):
        run = run_module(kms_key_version, check_mode=check_mode, key_id=KEY, **args)
        assert run.failed, run.result
        assert run.result["msg"] == message
        assert run.result["error"]["code"] == code
        assert "Traceback" not in run.output and "exception" not in run.result
    assert store_bytes() == saved


def test_missing_key(run_module, store_path, store_bytes):
    run = run_module(kms_key_version, key_id="tokens/nope", version=2)
    assert run.failed
    assert run.result["msg"] == f"Could not read key 'tokens/nope': it does not exist in key store '{store_path}' (the file does not exist yet)"
    assert store_bytes() is None


def test_destroy_scheduled_with_allow_destroy(kms, run_module, store_bytes):
    kms.create_version(KEY, 2)
    expected = {"before": {"primary_version": 1, "versions": {"1": "enabled", "2": "enabled"}},
                "after": {"primary_version": 1, "versions": {"1": "enabled", "2": "destroy_scheduled"}}}
    converge(run_module, store_bytes, store_path=kms.store.path, expected_diff=expected,
             version=2, state="destroy_scheduled", allow_destroy=True, pending_window_days=7)
    assert kms.describe_key(KEY)["versions"][1]["destroy_after"]


def test_key_pending_deletion_is_refused_in_check_mode_too(kms, run_module, store_bytes):
    kms.schedule_key_deletion(KEY, 7)
    when = kms.describe_key(KEY)["pending_deletion_at"]
    saved = store_bytes()
    for check_mode in (True, False):
        run = run_module(kms_key_version, check_mode=check_mode, key_id=KEY, version=2)
        assert run.failed and run.result["error"]["code"] == "conflict"
        assert run.result["msg"] == f"Could not create a version of key '{KEY}': it is scheduled for deletion on {when}"
        run = run_module(kms_key_version, check_mode=check_mode, key_id=KEY, version=1, state="enabled")
        assert run.result["msg"] == f"Could not change the state of a version of key '{KEY}': it is scheduled for deletion on {when}"
    assert store_bytes() == saved
