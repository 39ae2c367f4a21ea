# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""rotate.yml on vault with the server failing mid-stage: it stops answering, it answers 503,
it gets sealed, or the rotation's token lacks a permission. The stage hook (which the role
runs after the new version is created, allowed and proven, before the promotion) triggers the
fault. Each run ends with the key fully rotated or exactly at its snapshot (primary and
allow-list), and every canary written before still decrypts through the enclave login."""

from __future__ import annotations

import shlex

import pytest
from test_workflow_vault import Canaries, rotate, summary
from vault_support import M_CURRENT, TARGET, bao_binary, new_key, rotation_approle, server_state

pytestmark = pytest.mark.slow

AT_SNAPSHOT = {"primary": 1, "allowed": [M_CURRENT], "lock": None, "min_decryption_version": 1}
ROTATED = {"primary": 2, "allowed": TARGET, "lock": None, "min_decryption_version": 1}


def key_with_canary(provider, fleet, bao):
    key_id = new_key(bao, fleet, provider)
    canaries = Canaries(provider, key_id, fleet)
    canaries.add(1)
    return key_id, canaries


def shape(bao, key_id) -> dict:
    state = server_state(bao, key_id)
    return {k: state[k] for k in AT_SNAPSHOT}


def test_server_stops_answering_mid_stage_then_emergency_rollback(bao, proxy, inventory, fleet, tmp_path, provider):
    key_id, canaries = key_with_canary(provider, fleet, bao)
    failed = rotate(bao, inventory, fleet, tmp_path, key_id, env={"VAULT_ADDR": proxy.url, "ALFRED_ROTATION_STAGE_CMD": proxy.hook("down")})
    assert failed.returncode != 0
    assert "could not be reached" in failed.stdout, failed.stdout[-3000:]
    # Neither the promotion nor the automatic rollback reached the server: not promoted, so
    # no enclave or client uses version 2 yet; the lock of the dead run is still there.
    state = server_state(bao, key_id)
    assert state["primary"] == 1 and state["versions"] == [1, 2] and state["min_decryption_version"] == 1
    proxy.set("up")
    rollback = rotate(bao, inventory, fleet, tmp_path, key_id, "-e", "rotation_action=rollback", "-e", "break_stale_lock=true",
                      env={"VAULT_ADDR": proxy.url, "KMS_KEY_VERSION": "", "NEXT_KMS_KEY_VERSION": "", "KMS_ALLOWED_MEASUREMENTS": ""})
    assert rollback.returncode == 0, rollback.stdout[-3000:]
    assert shape(bao, key_id) == AT_SNAPSHOT
    assert canaries.all_decrypt()


def test_transient_503s_mid_stage_are_retried_and_the_rotation_completes(bao, proxy, inventory, fleet, tmp_path, provider):
    key_id, canaries = key_with_canary(provider, fleet, bao)
    run = rotate(bao, inventory, fleet, tmp_path, key_id, env={"VAULT_ADDR": proxy.url, "ALFRED_ROTATION_STAGE_CMD": proxy.hook("503", 2)})
    assert run.returncode == 0, run.stdout[-3000:]
    assert proxy.hits_503 == 2
    assert shape(bao, key_id) == ROTATED and summary(tmp_path)["outcome"] == "success"
    canaries.add(2)
    assert canaries.all_decrypt()


def test_sealed_server_mid_stage_then_unseal_and_emergency_rollback(bao, inventory, fleet, tmp_path, provider):
    key_id, canaries = key_with_canary(provider, fleet, bao)
    seal = f"{shlex.quote(bao_binary())} operator seal"
    try:
        failed = rotate(bao, inventory, fleet, tmp_path, key_id, env={"ALFRED_ROTATION_STAGE_CMD": seal})
        assert failed.returncode != 0
        assert "is sealed or unavailable (HTTP 503" in failed.stdout, failed.stdout[-3000:]
    finally:
        bao.unseal()
    assert server_state(bao, key_id)["primary"] == 1
    rollback = rotate(bao, inventory, fleet, tmp_path, key_id, "-e", "rotation_action=rollback", "-e", "break_stale_lock=true",
                      env={"KMS_KEY_VERSION": "", "NEXT_KMS_KEY_VERSION": "", "KMS_ALLOWED_MEASUREMENTS": ""})
    assert rollback.returncode == 0, rollback.stdout[-3000:]
    assert shape(bao, key_id) == AT_SNAPSHOT
    assert canaries.all_decrypt()


def test_token_without_permission_to_change_the_allow_list(bao, inventory, fleet, tmp_path, provider):
    """The key's rotation policy minus write on its JWT role: the stage is refused at the allow-list,
    the automatic rollback leaves the key at its snapshot, and the message names the cause."""
    key_id, canaries = key_with_canary(provider, fleet, bao)
    rotation_approle(bao, fleet, "no-allowlist", [key_id])
    policy = bao.api("GET", f"sys/policies/acl/tee-kms-{key_id}-rotation")["data"]["policy"]
    limited = policy.replace(f'path "auth/jwt/role/tee-kms-{key_id}" {{\n  capabilities = ["read", "update"]',
                             f'path "auth/jwt/role/tee-kms-{key_id}" {{\n  capabilities = ["read"]')
    assert limited != policy
    bao.api("POST", "sys/policies/acl/tee-kms-no-allowlist", {"policy": limited})
    token = bao.api("POST", "auth/token/create", {"policies": ["tee-kms-no-allowlist"], "ttl": "10m"})["auth"]["client_token"]
    failed = rotate(bao, inventory, fleet, tmp_path, key_id, env={"VAULT_TOKEN": token})
    assert failed.returncode != 0
    assert "permission denied" in failed.stdout and f"key '{key_id}'" in failed.stdout, failed.stdout[-3000:]
    assert token not in failed.stdout
    assert shape(bao, key_id) == AT_SNAPSHOT
    # The allow-list and the primary never moved, so the rollback had nothing to restore; it
    # closed the interrupted rotation, which counts as a rollback that ran (console and summary
    # agree), and the key is exactly at its snapshot.
    assert "rolled back to the pre-rotation snapshot" in failed.stdout
    assert summary(tmp_path)["outcome"] == "rolled_back"
    assert summary(tmp_path)["rollback"]["executed"] is True
    assert canaries.all_decrypt()
