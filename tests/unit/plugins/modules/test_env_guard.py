# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 22 item 14: every module that changes a key goes through one environment guard
(DESIGN.md invariant 8). A change of a production key needs confirm_production=true, whether or
not env is given; given env, a key of another environment is refused, in check mode too; check
mode and unchanged keys are never refused for the confirmation. Real module runs on a real store."""

from __future__ import annotations

import pytest
from module_testlib import M1, M2

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider
from ansible_collections.alfred.tee_kms.plugins.modules import kms_key, kms_key_version, measurement_allowlist, rotation_lock, rotation_snapshot

KEY = "tokens/refresh"
OWNER = "sre@ops-1/pid:4242/start:991/boot:b/pidns:1"

# (module, arguments of one change, the refusal's action): each changes the key when run live.
CHANGES = [
    (kms_key_version, dict(version=2, state="present"), "create a version of"),
    (measurement_allowlist, dict(measurements=[M1, M2], state="exact"), "update the allow-list of"),
    (rotation_lock, dict(state="acquired", owner=OWNER), "acquire the rotation lock on"),
    (rotation_snapshot, dict(state="present", expected_primary=1, next_version=2, target_measurements=[M1, M2], owner=OWNER),
     "record the snapshot of"),
    (kms_key, dict(state="absent", allow_destroy=True, pending_window_days=7), "schedule deletion of"),
]
IDS = [module.__name__.rsplit(".", 1)[-1] for module, dummy, dummy in CHANGES]


@pytest.fixture
def production_key(store_path):
    LocalKmsProvider(store_path).create_key(KEY, [M1], env="production")


@pytest.mark.parametrize("module, args, action", CHANGES, ids=IDS)
@pytest.mark.parametrize("env", [None, "production"])
def test_a_module_changing_a_production_key_needs_confirm_production(run_module, store_bytes, production_key, module, args, action, env):
    saved = store_bytes()
    refused = run_module(module, key_id=KEY, env=env, **args)
    assert refused.failed, refused.result
    assert refused.result["msg"] == (f"Could not {action} key '{KEY}': it belongs to env 'production', and every change of a "
                                     "production key needs confirm_production=true (--confirm-production); nothing was changed")
    assert refused.result["error"]["code"] == "invalid_input"
    assert store_bytes() == saved
    rehearsal = run_module(module, check_mode=True, key_id=KEY, env=env, **args)
    assert not rehearsal.failed and rehearsal.result["changed"] is True, rehearsal.result
    assert store_bytes() == saved
    confirmed = run_module(module, key_id=KEY, env=env, confirm_production=True, **args)
    assert not confirmed.failed and confirmed.result["changed"] is True, confirmed.result
    assert store_bytes() != saved


@pytest.mark.parametrize("module, args, action", CHANGES, ids=IDS)
@pytest.mark.parametrize("check_mode", [True, False])
def test_a_module_given_env_refuses_a_key_of_another_env(run_module, store_bytes, production_key, module, args, action, check_mode):
    saved = store_bytes()
    refused = run_module(module, check_mode=check_mode, key_id=KEY, env="staging", confirm_production=True, **args)
    assert refused.failed, refused.result
    assert refused.result["msg"] == (f"Could not change key '{KEY}': it belongs to env 'production', not to the run's env 'staging'; "
                                     "it is only changed by a run with env=production with confirm_production=true")
    assert refused.result["error"]["code"] == "conflict"
    assert store_bytes() == saved


def test_read_only_and_unchanged_calls_of_a_production_key_are_not_refused(run_module, store_bytes, production_key):
    saved = store_bytes()
    assert run_module(rotation_lock, key_id=KEY, state="checked", owner=OWNER).result["changed"] is False
    assert run_module(rotation_lock, key_id=KEY, state="released", owner=OWNER).result["changed"] is False
    assert run_module(measurement_allowlist, key_id=KEY, measurements=[M1]).result["changed"] is False
    assert run_module(kms_key_version, key_id=KEY, version=1, state="primary").result["changed"] is False
    assert run_module(kms_key, key_id=KEY, env="production", allowed_measurements=[M1]).result["changed"] is False
    # A read-only call given another env is refused all the same: it is the start of a run for the wrong key.
    wrong = run_module(rotation_lock, key_id=KEY, env="staging", state="checked", owner=OWNER)
    assert wrong.failed and "it belongs to env 'production', not to the run's env 'staging'" in wrong.result["msg"]
    assert store_bytes() == saved


def test_a_staging_key_changes_without_confirm_production(run_module, store_path):
    LocalKmsProvider(store_path).create_key(KEY, [M1], env="staging")
    for module, args, dummy in CHANGES:
        run = run_module(module, key_id=KEY, env="staging", **args)
        assert not run.failed and run.result["changed"] is True, (module.__name__, run.result)


def test_creating_a_production_key_needs_confirm_production(run_module, store_bytes, store_path):
    args = dict(key_id=KEY, env="production", allowed_measurements=[M1])
    refused = run_module(kms_key, **args)
    assert refused.failed
    assert refused.result["msg"] == (f"Could not create key '{KEY}': env is production, and every change of a production key needs "
                                     "confirm_production=true (--confirm-production); nothing was changed")
    assert store_bytes() is None
    assert run_module(kms_key, check_mode=True, **args).result["changed"] is True  # the rehearsal shows it
    assert store_bytes() is None
    created = run_module(kms_key, confirm_production=True, **args)
    assert created.result["changed"] is True and created.result["key"]["env"] == "production"


def test_creating_an_existing_key_never_replaces_its_environment(run_module, store_bytes, store_path):
    LocalKmsProvider(store_path).create_key(KEY, [M1], env="staging")
    LocalKmsProvider(store_path).create_key("tokens/legacy", [M1])  # created before keys recorded an environment
    saved = store_bytes()
    other = run_module(kms_key, key_id=KEY, env="production", confirm_production=True, allowed_measurements=[M1])
    assert other.failed and other.result["msg"] == (
        f"Could not change key '{KEY}': it belongs to env 'staging', not to the run's env 'production'; it is only changed by a run "
        "with env=staging")
    legacy = run_module(kms_key, key_id="tokens/legacy", env="staging", allowed_measurements=[M1])
    assert legacy.failed and legacy.result["msg"] == (
        "Could not create key 'tokens/legacy': it exists and records no environment (its next rotation records it), not 'staging'; "
        "nothing was changed. A key's environment is never replaced")
    assert store_bytes() == saved
