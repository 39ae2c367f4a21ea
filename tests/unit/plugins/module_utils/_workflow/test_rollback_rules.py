# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a rollback may restore, what it keeps, and the inputs that loosen it."""

from __future__ import annotations

import pytest

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import ConflictError, InputError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.guard import check_key_env
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.inputs import validate_inputs
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.snapshots import keep_live, restorable

A, B, C = "a1" * 48, "b2" * 48, "c3" * 48
SNAPSHOT = {"primary_version": 1, "allowed_measurements": [A], "next_version": 2, "target_measurements": [A, B], "status": "completed"}


def key(primary, allowed, env=None):
    return {"key_id": "tokens/refresh", "primary_version": primary, "allowed_measurements": allowed, "env": env}


def test_rollback_keeps_live_enclave_measurement():
    # A retired later, every enclave runs B: restoring [A] alone would lock them all out.
    assert keep_live([A], [B], [B, B]) == ([A, B], [B])
    # Only what the key allows now is kept: a rollback never widens the allow-list.
    assert keep_live([A], [A, B], [C, B.upper()]) == ([A, B], [B])
    assert keep_live([A], [A, B], []) == ([A], [])


def test_only_a_rotation_in_progress_or_still_at_its_target_is_restorable():
    assert restorable(key(2, [B, A]), SNAPSHOT) is True               # still at the target
    assert restorable(key(2, [B]), SNAPSHOT) is False                 # A retired since
    assert restorable(key(3, [A, B]), SNAPSHOT) is False              # rotated again since
    assert restorable(key(1, [A, B]), dict(SNAPSHOT, status="in_progress")) is True
    assert restorable(key(1, [A, B]), dict(SNAPSHOT, status="rolled_back")) is False


BASE = {"env": "staging", "action": "rollback", "provider": "local", "confirm_production": False, "alfred_env": "", "key_id": "tokens/refresh",
        "current_version": None, "next_version": None, "allowed_measurements": None, "measurement_format": "sha384", "hooks": {},
        "show_commands": False, "lock_owner": "me", "check_mode": False}


@pytest.mark.parametrize("extra, cause", [
    ({"action": "all", "current_version": 1, "next_version": 2, "allowed_measurements": [A], "break_lock_owner": "x"},
     "only accepted with rotation_action=rollback"),
    ({"provider": "command", "hooks": {"rollback": "true"}, "current_version": "1", "next_version": "2",
      "allowed_measurements": [A], "break_lock_owner": "x"}, "only accepted with rotation_action=rollback and a native provider"),
    ({"force_rollback": True}, "needs rotation_action=rollback (not rollback) and a force_rollback_reason"),
    ({"force_rollback": True, "force_rollback_reason": "  "}, "a force_rollback_reason"),
    ({"action": "stage", "current_version": 1, "next_version": 2, "allowed_measurements": [A], "force_rollback": True,
      "force_rollback_reason": "x"}, "needs rotation_action=rollback (not stage)"),
])
def test_lock_break_and_force_are_for_rollbacks_only(extra, cause):
    with pytest.raises(InputError, match=cause.replace("(", r"\(").replace(")", r"\)")):
        validate_inputs(dict(BASE, **extra))


def test_rollback_inputs_with_break_and_force_pass():
    plan = validate_inputs(dict(BASE, break_lock_owner="awx@job/pid:9", force_rollback=True, force_rollback_reason="INC-1"))
    assert plan["action"] == "rollback"


def test_env_mismatch_refused_before_change():
    assert check_key_env(key(1, [A]), "staging") is False  # none recorded yet: recorded at the first rotation
    assert check_key_env(key(1, [A], "staging"), "staging") is True
    with pytest.raises(ConflictError, match="it belongs to env 'production', not to the run's env 'staging'; it is only changed "
                                            "by a run with env=production with confirm_production=true"):
        check_key_env(key(1, [A], "production"), "staging")


def test_local_key_records_its_env_once(tmp_path):
    from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider

    kms = LocalKmsProvider(str(tmp_path / "store.json"))
    assert kms.create_key("tokens/prod", [A], env="production")["env"] == "production"
    assert kms.create_key("tokens/legacy", [A])["env"] is None
    kms.record_env("tokens/legacy", "staging")
    kms.record_env("tokens/legacy", "staging")  # the same again changes nothing
    assert kms.describe_key("tokens/legacy")["env"] == "staging"
    stored = (tmp_path / "store.json").read_bytes()
    with pytest.raises(ConflictError, match="Could not record the environment of key 'tokens/prod': it already belongs to env 'production'"):
        kms.record_env("tokens/prod", "staging")
    assert (tmp_path / "store.json").read_bytes() == stored
