# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The KMS modules with provider=vault against a real OpenBao server: check mode, diff,
idempotence, refusals that leave the server unchanged, and no secret in any output. Every
module runs as its own process; the connection comes from VAULT_ADDR/VAULT_TOKEN."""

from __future__ import annotations

from pathlib import Path

from module_process import run_module_process
from vault_support import M_CURRENT, M_NEW, M_PROBE, REPO, TARGET, grant_access, new_key_id, run_module, server_state, trust_of, vault_env


def create(bao, fleet, tmp_path, key_id, check=False, diff=False):
    if not check:
        grant_access(bao, fleet, key_id)  # the administrator's one-time step
    return run_module("kms_key", dict(key_id=key_id, allowed_measurements=[M_CURRENT], attestation_trust=trust_of(fleet)),
                      bao, check=check, diff=diff, tmp_dir=tmp_path)


def access(bao, fleet, tmp_path, key_id, check=False, diff=False, **extra):
    """vault_key_access (no provider option: it is Vault's) as the administrator (root token)."""
    args = dict(key_id=key_id, login_audience=fleet.trust["jwt_login_audience"], **extra)
    return run_module_process("vault_key_access", args, vault_env(bao), check=check, diff=diff, tmp_dir=tmp_path)


def test_vault_key_access_check_mode_apply_idempotent(bao, fleet, tmp_path):
    key_id = new_key_id()
    checked = access(bao, fleet, tmp_path, key_id, check=True, diff=True)
    assert checked["_rc"] == 0, checked
    assert checked["changed"] and sorted(checked["updated"]) == ["decrypt_policy", "role", "rotation_policy"]
    assert checked["diff"]["before"]["role"] is None and checked["diff"]["after"]["role"]["bound_audiences"] == ["alfred-tee-kms-login"]
    missing = run_module("kms_key", dict(key_id=key_id, allowed_measurements=[M_CURRENT], attestation_trust=trust_of(fleet)),
                         bao, tmp_dir=tmp_path)
    assert missing["failed"] and "does not exist" in missing["msg"] and "vault_setup.yml" in missing["msg"], missing  # check wrote nothing
    applied = access(bao, fleet, tmp_path, key_id)
    assert applied["changed"] and applied["names"]["role"] == f"tee-kms-{key_id}"
    assert access(bao, fleet, tmp_path, key_id, diff=True)["changed"] is False
    role = bao.api("GET", f"auth/jwt/role/tee-kms-{key_id}")["data"]
    assert role["bound_claims"] == {"measurement": ["tee-kms:no-enclave-allowed-yet"]}  # nobody until the key is created
    assert role["expiration_leeway"] == -1 and role["token_num_uses"] == 1 and role["token_policies"] == [f"tee-kms-{key_id}-decrypt"]
    refused = access(bao, fleet, tmp_path, "a/b")
    assert refused["failed"] and "Transit key name" in refused["msg"]
    assert bao.root_token not in checked["_raw"] + applied["_raw"]


def test_documented_rotation_policy_is_what_the_module_writes(bao, fleet, tmp_path):
    """docs/providers/vault-policy.hcl is the rotation policy of the example key tokens-refresh, exactly."""
    written = access(bao, fleet, tmp_path, "tokens-refresh", check=True)["rotation_policy"]
    assert written == (Path(REPO) / "docs" / "providers" / "vault-policy.hcl").read_text()


def test_kms_key_check_mode_apply_idempotent(bao, fleet, tmp_path):
    key_id = new_key_id()
    checked = create(bao, fleet, tmp_path, key_id, check=True, diff=True)
    assert checked["_rc"] == 0 and checked["changed"] is True, checked
    assert checked["diff"]["before"] == {} and checked["diff"]["after"]["allowed_measurements"] == [M_CURRENT]
    missing = run_module("kms_key_info", dict(key_id=key_id, missing_ok=True), bao, tmp_dir=tmp_path)
    assert missing["exists"] is False
    created = create(bao, fleet, tmp_path, key_id)
    assert created["changed"] and created["key"]["primary_version"] == 1 and created["key"]["allowed_measurements"] == [M_CURRENT]
    again = create(bao, fleet, tmp_path, key_id, diff=True)
    assert again["_rc"] == 0 and again["changed"] is False and "diff" not in again
    assert server_state(bao, key_id)["versions"] == [1]
    for result in (checked, created, again):
        assert bao.root_token not in result["_raw"]


def test_version_stage_promote_check_mode_and_idempotence(bao, fleet, tmp_path):
    key_id = new_key_id()
    assert create(bao, fleet, tmp_path, key_id)["changed"]
    checked = run_module("kms_key_version", dict(key_id=key_id, version=2), bao, check=True, diff=True, tmp_dir=tmp_path)
    assert checked["changed"] and server_state(bao, key_id)["versions"] == [1]
    staged = run_module("kms_key_version", dict(key_id=key_id, version=2), bao, tmp_dir=tmp_path)
    assert staged["changed"] and staged["key"]["primary_version"] == 1
    assert run_module("kms_key_version", dict(key_id=key_id, version=2), bao, tmp_dir=tmp_path)["changed"] is False
    before = server_state(bao, key_id)
    check_promote = run_module("kms_key_version", dict(key_id=key_id, version=2, state="primary"), bao, check=True, diff=True,
                               tmp_dir=tmp_path)
    assert check_promote["changed"] and check_promote["diff"]["after"]["primary_version"] == 2
    assert server_state(bao, key_id) == before
    promoted = run_module("kms_key_version", dict(key_id=key_id, version=2, state="primary"), bao, tmp_dir=tmp_path)
    assert promoted["changed"] and server_state(bao, key_id)["primary"] == 2
    assert run_module("kms_key_version", dict(key_id=key_id, version=2, state="primary"), bao, tmp_dir=tmp_path)["changed"] is False


def test_refusals_leave_the_server_unchanged(bao, fleet, tmp_path):
    key_id = new_key_id()
    assert create(bao, fleet, tmp_path, key_id)["changed"]
    assert run_module("kms_key_version", dict(key_id=key_id, version=2), bao, tmp_dir=tmp_path)["changed"]
    before = server_state(bao, key_id)
    skipped = run_module("kms_key_version", dict(key_id=key_id, version=4), bao, tmp_dir=tmp_path)
    assert skipped["failed"] and "the next version can only be 3" in skipped["msg"]
    disabled = run_module("kms_key_version", dict(key_id=key_id, version=2, state="disabled"), bao, tmp_dir=tmp_path)
    assert disabled["failed"] and "min_decryption_version" in disabled["msg"], disabled
    absent = run_module("kms_key", dict(key_id=key_id, state="absent", allow_destroy=True, pending_window_days=7), bao, tmp_dir=tmp_path)
    assert absent["failed"] and "cannot schedule a deletion" in absent["msg"], absent
    empty = run_module("measurement_allowlist", dict(key_id=key_id, measurements=[]), bao, tmp_dir=tmp_path)
    assert empty["failed"]
    bad_name = run_module("kms_key", dict(key_id="tokens/refresh", allowed_measurements=[M_CURRENT]), bao, tmp_dir=tmp_path)
    assert bad_name["failed"] and "Transit key name" in bad_name["msg"]
    assert server_state(bao, key_id) == before


def test_allowlist_check_diff_apply_idempotent(bao, fleet, tmp_path):
    key_id = new_key_id()
    assert create(bao, fleet, tmp_path, key_id)["changed"]
    checked = run_module("measurement_allowlist", dict(key_id=key_id, measurements=TARGET), bao, check=True, diff=True, tmp_dir=tmp_path)
    assert checked["changed"] and server_state(bao, key_id)["allowed"] == [M_CURRENT]
    applied = run_module("measurement_allowlist", dict(key_id=key_id, measurements=TARGET), bao, tmp_dir=tmp_path)
    assert applied["changed"] and server_state(bao, key_id)["allowed"] == TARGET
    again = run_module("measurement_allowlist", dict(key_id=key_id, measurements=list(reversed(TARGET))), bao, tmp_dir=tmp_path)
    assert again["changed"] is False


def test_lock_and_snapshot_modules(bao, fleet, tmp_path):
    key_id = new_key_id()
    assert create(bao, fleet, tmp_path, key_id)["changed"]
    checked = run_module("rotation_lock", dict(key_id=key_id, owner="run-a"), bao, check=True, tmp_dir=tmp_path)
    assert checked["changed"] and server_state(bao, key_id)["lock"] is None
    assert run_module("rotation_lock", dict(key_id=key_id, owner="run-a"), bao, tmp_dir=tmp_path)["changed"]
    other = run_module("rotation_lock", dict(key_id=key_id, owner="run-b"), bao, tmp_dir=tmp_path)
    assert other["failed"] and "another rotation holds it" in other["msg"]
    assert server_state(bao, key_id)["lock"] == "run-a"
    snap = run_module("rotation_snapshot", dict(key_id=key_id, expected_primary=1, next_version=2, target_measurements=TARGET,
                                                owner="run-a"), bao, tmp_dir=tmp_path)
    assert snap["_rc"] == 0 and snap["changed"], snap
    assert server_state(bao, key_id)["snapshot"]["primary_version"] == 1
    assert run_module("rotation_lock", dict(key_id=key_id, owner="run-a", state="released"), bao, tmp_dir=tmp_path)["changed"]
    assert server_state(bao, key_id)["lock"] is None


def test_probe_module_through_the_server(bao, fleet, tmp_path):
    key_id = new_key_id()
    assert create(bao, fleet, tmp_path, key_id)["changed"]
    allowed = run_module("kms_probe", dict(key_id=key_id, probe="allowed_decrypt", version=1, enclave_url=fleet.urls["enclave-1"],
                                           attestation_format="jwt"), bao, tmp_dir=tmp_path)
    assert allowed["_rc"] == 0 and allowed["probe"]["passed"], allowed
    denied = run_module("kms_probe", dict(key_id=key_id, probe="disallowed_denied", version=1, enclave_url=fleet.urls["probe-1"],
                                          attestation_format="jwt"), bao, tmp_dir=tmp_path)
    assert denied["_rc"] == 0 and denied["probe"]["passed"] and "bound claim" in denied["probe"]["detail"], denied
    assert M_PROBE not in server_state(bao, key_id)["allowed"] and M_NEW not in server_state(bao, key_id)["allowed"]


def test_missing_connection_and_bad_token_fail_clearly_without_secrets(bao, fleet, tmp_path):
    key_id = new_key_id()
    no_url = run_module("kms_key_info", dict(key_id=key_id), bao, env={"VAULT_ADDR": ""}, tmp_dir=tmp_path)
    assert no_url["failed"] and "url is required (or set VAULT_ADDR or BAO_ADDR)" in no_url["msg"]
    bogus = "hvs.not-a-real-token-0123456789"
    bad = run_module("kms_key_info", dict(key_id=key_id), bao, env={"VAULT_TOKEN": bogus}, tmp_dir=tmp_path)
    assert bad["failed"] and "refused it" in bad["msg"] and bogus not in bad["_raw"], bad
    bao_env = run_module("kms_key_info", dict(key_id=key_id, missing_ok=True), bao,
                         env={"VAULT_ADDR": None, "VAULT_TOKEN": None, "BAO_ADDR": bao.url, "BAO_TOKEN": bao.root_token}, tmp_dir=tmp_path)
    assert bao_env["_rc"] == 0 and bao_env["exists"] is False, bao_env
