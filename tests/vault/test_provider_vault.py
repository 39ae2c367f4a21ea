# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""provider=vault against a real OpenBao server: the rotation model on Transit, the allow-list
enforced by the server's JWT auth, the KV check-and-set lock and the refusals."""

from __future__ import annotations

import base64
import multiprocessing
import sys
import urllib.error

import pytest
from vault_support import M_CURRENT, M_NEW, M_PROBE, TARGET, approle_with_documented_policy, build, new_key_id, server_state, trust_of

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import (
    AccessDeniedError,
    ConflictError,
    InputError,
    LockHeldError,
    MissingLibraryError,
    NotFoundError,
    ProviderError,
)
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.probes import evidence_from, run_probe, token_context

CONTEXT = {"token_key_id": "k", "token_version": "1"}


def attested(fleet, name):
    return evidence_from(fleet.urls[name], "jwt", 5.0, "test")


# --------------------------------------------------------------------------- rotation model

def test_staged_version_is_not_used_until_promoted_and_rollback_keeps_every_version(provider, key_id, bao, fleet):
    v1 = provider.encrypt(key_id, b"one", CONTEXT)
    provider.create_version(key_id, 2)
    state = server_state(bao, key_id)
    # Transit's latest is the staged version 2; the primary record still says 1 and the
    # collection encrypts with it (key_version), so nothing is written under version 2 yet.
    assert state["latest"] == 2 and state["primary"] == 1
    assert provider.describe_key(key_id)["primary_version"] == 1
    assert provider.encrypt(key_id, b"still one", CONTEXT).startswith("vault:v1:")
    # What a client that ignores the record would get: Transit's latest (the documented hazard).
    raw = bao.api("POST", f"transit/encrypt/{key_id}",
                  {"plaintext": base64.b64encode(b"x").decode(), "context": provider._context(CONTEXT)})
    assert raw["data"]["ciphertext"].startswith("vault:v2:")

    provider.set_allowed_measurements(key_id, TARGET)
    provider.set_primary(key_id, 2)
    v2 = provider.encrypt(key_id, b"two", CONTEXT)
    assert v2.startswith("vault:v2:")
    provider.restore(key_id, 1, [M_CURRENT])
    after = server_state(bao, key_id)
    assert after["primary"] == 1 and after["allowed"] == [M_CURRENT] and after["versions"] == [1, 2]
    assert after["min_decryption_version"] == 1 and after["min_encryption_version"] == 0
    assert provider.encrypt(key_id, b"back", CONTEXT).startswith("vault:v1:")
    enclave = attested(fleet, "enclave-1")
    assert provider.decrypt(key_id, v2, CONTEXT, enclave) == b"two"
    assert provider.decrypt(key_id, v1, CONTEXT, attested(fleet, "enclave-1")) == b"one"


def test_versions_are_sequential_and_a_concurrent_rotate_is_detected(provider, key_id, bao):
    with pytest.raises(InputError, match="the next version can only be 2"):
        provider.create_version(key_id, 3)
    assert server_state(bao, key_id)["versions"] == [1]
    bao.api("POST", f"transit/keys/{key_id}/rotate")  # another writer rotates behind our back
    with pytest.raises(InputError, match="the next version can only be 3"):
        provider.create_version(key_id, 2)


def test_disable_destroy_and_delete_are_refused_without_touching_the_key(provider, key_id, bao):
    provider.create_version(key_id, 2)
    before = server_state(bao, key_id)
    with pytest.raises(InputError, match="min_decryption_version"):
        provider.set_version_state(key_id, 1, "disabled")
    with pytest.raises(InputError, match="cannot schedule a deletion"):
        provider.schedule_key_deletion(key_id, 7)
    provider.set_version_state(key_id, 1, "enabled")  # already so: nothing to do
    assert server_state(bao, key_id) == before


def test_ciphertext_is_bound_to_its_context(provider, key_id, fleet):
    sealed = provider.encrypt(key_id, b"bound", CONTEXT)
    with pytest.raises(AccessDeniedError, match="does not authenticate under this encryption context"):
        provider.decrypt(key_id, sealed, dict(CONTEXT, token_version="2"), attested(fleet, "enclave-1"))


# --------------------------------------------------------------------------- enforcement

def test_server_enforces_the_allow_list_at_login(provider, key_id, fleet, bao, monkeypatch):
    # The operator's token in the environment must never be what decrypts (hvac reads VAULT_TOKEN).
    monkeypatch.setenv("VAULT_TOKEN", bao.root_token)
    context = token_context(key_id, 1)
    allowed = run_probe(provider, "allowed_decrypt", key_id, 1, fleet.urls["enclave-1"], "jwt")
    assert allowed["passed"], allowed
    probe = run_probe(provider, "disallowed_denied", key_id, 1, fleet.urls["probe-1"], "jwt")
    assert probe["passed"] and 'claim "measurement" does not match' in probe["detail"], probe
    unattested = run_probe(provider, "unattested_denied", key_id, 1)
    assert unattested["passed"] and "permission denied" in unattested["detail"], unattested
    # Adding the probe's measurement to the server's role is what lets it in: the server decides.
    provider.set_allowed_measurements(key_id, [M_CURRENT, M_PROBE])
    sealed = provider.encrypt(key_id, b"now allowed", context)
    assert provider.decrypt(key_id, sealed, context, attested(fleet, "probe-1")) == b"now allowed"


def test_forged_and_expired_tokens_are_refused_by_the_server(provider, key_id, fleet):
    sealed = provider.encrypt(key_id, b"secret", CONTEXT)
    for mode in ("bad-signature", "stale"):
        fleet.configure("enclave-1", mode=mode)
        try:
            with pytest.raises(AccessDeniedError, match="the server refused the attestation login"):
                provider.decrypt(key_id, sealed, CONTEXT, attested(fleet, "enclave-1"))
        finally:
            fleet.configure("enclave-1", mode="ok")
    with pytest.raises(AccessDeniedError, match="jwt attestation tokens only"):
        provider.decrypt(key_id, sealed, CONTEXT, evidence_from(fleet.urls["enclave-1"], "alfred", 5.0, "test"))


def test_login_token_decrypts_once_and_only_this_key(provider, key_id, fleet, bao):
    other = new_key_id()
    provider.create_key(other, [M_CURRENT], "sha384", trust_of(fleet))
    theirs = provider.encrypt(other, b"other key", CONTEXT)
    mine = provider.encrypt(key_id, b"mine", CONTEXT)
    jwt = attested(fleet, "enclave-1")["document"].decode("ascii")
    login = bao.api("POST", "auth/jwt/login", {"role": f"tee-kms-{key_id}", "jwt": jwt}, token="")
    token = login["auth"]["client_token"]
    assert login["auth"]["policies"] == [f"tee-kms-{key_id}-decrypt"]
    with pytest.raises(urllib.error.HTTPError) as denied:
        bao.api("POST", f"transit/decrypt/{other}", {"ciphertext": theirs, "context": provider._context(CONTEXT)}, token=token)
    assert denied.value.code == 403
    one_use = bao.api("POST", "auth/jwt/login", {"role": f"tee-kms-{key_id}", "jwt": jwt}, token="")["auth"]["client_token"]
    assert bao.api("POST", f"transit/decrypt/{key_id}", {"ciphertext": mine, "context": provider._context(CONTEXT)}, token=one_use)
    with pytest.raises(urllib.error.HTTPError):
        bao.api("POST", f"transit/decrypt/{key_id}", {"ciphertext": mine, "context": provider._context(CONTEXT)}, token=one_use)


def test_evaluate_policy_reads_the_servers_role(provider, key_id, bao):
    assert provider.evaluate_policy(key_id, M_CURRENT) and not provider.evaluate_policy(key_id, M_NEW)
    role = bao.api("GET", f"auth/jwt/role/tee-kms-{key_id}")["data"]
    bao.api("POST", f"auth/jwt/role/tee-kms-{key_id}", {k: role[k] for k in ("role_type", "user_claim", "bound_audiences", "bound_claims")}
            | {"token_policies": ["default", f"tee-kms-{key_id}-decrypt"]})
    assert not provider.evaluate_policy(key_id, M_CURRENT)  # the role grants more than decrypt on this key


# --------------------------------------------------------------------------- lock and snapshot

def test_lock_semantics(provider, key_id, bao):
    first = provider.acquire_lock(key_id, "run-a", 60)
    assert provider.acquire_lock(key_id, "run-a", 120)["acquired_at"] == first["acquired_at"]  # re-entrant, renewed
    with pytest.raises(LockHeldError, match="another rotation holds it"):
        provider.acquire_lock(key_id, "run-b", 60)
    with pytest.raises(LockHeldError, match="held by another owner"):
        provider.release_lock(key_id, "run-b")
    assert provider.acquire_lock(key_id, "run-b", 60, takeover_from="run-a")["owner"] == "run-b"
    assert provider.release_lock(key_id, "run-b") is True and provider.release_lock(key_id, "run-b") is False
    # A stale lock is broken only when asked.
    bao.api("POST", f"secret/data/tee-kms/{key_id}/lock", {"data": {"owner": "dead", "acquired_at": "2020-01-01T00:00:00Z",
                                                                    "expires_at": "2020-01-01T00:01:00Z"}})
    with pytest.raises(LockHeldError, match="break_stale_lock=true"):
        provider.acquire_lock(key_id, "run-c", 60)
    assert provider.acquire_lock(key_id, "run-c", 60, break_stale=True)["owner"] == "run-c"


class _Server:
    def __init__(self, url, token):
        self.url, self.root_token = url, token


def _race(server_url, token, key_id, owner, barrier, rounds, results):
    provider = build(_Server(server_url, token))  # its own client, in its own process
    won = []
    for dummy in range(rounds):
        barrier.wait()
        try:
            provider.acquire_lock(key_id, owner, 60)
            won.append(True)
        except LockHeldError:
            won.append(False)
        barrier.wait()
        if won[-1]:
            try:
                provider.release_lock(key_id, owner)
            except LockHeldError:  # both "won": the other one's write replaced ours
                pass
        barrier.wait()
    results[owner] = won


def test_lock_race_two_processes_fifty_rounds_one_winner_each(provider, key_id, bao):
    """Both processes read the free lock, then both write it: check-and-set lets exactly one through."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2, timeout=30)  # a broken round fails fast instead of hanging
    manager = ctx.Manager()
    results = manager.dict()
    procs = [ctx.Process(target=_race, args=(bao.url, bao.root_token, key_id, owner, barrier, 50, results)) for owner in ("p1", "p2")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(300)
    assert [proc.exitcode for proc in procs] == [0, 0]
    winners = [a + b for a, b in zip(results["p1"], results["p2"])]
    assert len(winners) == 50 and winners == [1] * 50, winners
    assert provider.get_lock(key_id) is None


def test_snapshot_is_kept_on_the_server_for_a_fresh_controller(provider, key_id, bao):
    snapshot = {"status": "recorded", "primary_version": 1, "allowed_measurements": [M_CURRENT]}
    provider.save_snapshot(key_id, snapshot)
    assert build(bao).get_snapshot(key_id) == snapshot
    assert server_state(bao, key_id)["snapshot"] == snapshot
    provider.save_snapshot(key_id, None)
    assert provider.get_snapshot(key_id) is None


# --------------------------------------------------------------------------- refusals

def test_create_refusals_write_nothing(provider, fleet, bao):
    name = new_key_id()
    with pytest.raises(InputError, match="attestation_trust.audience is required"):
        provider.create_key(name, [M_CURRENT], "sha384", {"issuer": "x"})
    with pytest.raises(InputError, match="allowed_measurements must not be empty"):
        provider.create_key(name, [], "sha384", trust_of(fleet))
    with pytest.raises(InputError, match="Transit key name"):
        provider.create_key("tokens/refresh", [M_CURRENT], "sha384", trust_of(fleet))
    with pytest.raises(NotFoundError, match="no Transit key of that name"):
        provider.describe_key(name)
    with pytest.raises(urllib.error.HTTPError):
        bao.api("GET", f"secret/data/tee-kms/{name}/meta")
    provider.create_key(name, [M_CURRENT], "sha384", trust_of(fleet))
    with pytest.raises(ConflictError, match="already exists"):
        provider.create_key(name, [M_NEW], "sha384", trust_of(fleet))
    assert server_state(bao, name)["allowed"] == [M_CURRENT]


def test_environment_is_recorded_once(provider, key_id, fleet):
    assert provider.describe_key(key_id)["env"] is None
    provider.record_env(key_id, "staging")
    provider.record_env(key_id, "staging")
    with pytest.raises(ConflictError, match="it already belongs to env 'staging'"):
        provider.record_env(key_id, "production")
    bound = new_key_id()
    provider.create_key(bound, [M_CURRENT], "sha384", trust_of(fleet), env="production")
    assert provider.describe_key(bound)["env"] == "production"


def test_a_transit_key_without_a_primary_record_is_not_managed(provider, bao):
    name = new_key_id()
    bao.api("POST", f"transit/keys/{name}", {"type": "aes256-gcm96"})
    with pytest.raises(ProviderError, match="no primary-version record"):
        provider.describe_key(name)


def test_options_are_checked_before_anything_is_contacted(bao):
    with pytest.raises(InputError, match="url is required"):
        build(bao, url=None)
    with pytest.raises(InputError, match="needs a token"):
        build(bao, token=None)
    with pytest.raises(InputError, match="role_id and secret_id"):
        build(bao, auth_method="approle")


def test_missing_hvac_is_reported(bao, monkeypatch):
    monkeypatch.setitem(sys.modules, "hvac", None)
    with pytest.raises(MissingLibraryError) as info:
        build(bao)
    assert info.value.library == "hvac" and "the vault KMS provider" in str(info.value)


def test_approle_login_with_the_documented_policy(bao, fleet):
    """The policy docs/providers/vault.md gives the collection is enough for a whole rotation."""
    role_id, secret_id = approle_with_documented_policy(bao, "rotation")
    provider = build(bao, token=None, auth_method="approle", role_id=role_id, secret_id=secret_id)
    name = new_key_id()
    provider.create_key(name, [M_CURRENT], "sha384", trust_of(fleet))
    provider.acquire_lock(name, "run", 60)
    provider.save_snapshot(name, {"status": "recorded"})
    provider.create_version(name, 2)
    provider.set_allowed_measurements(name, TARGET)
    assert run_probe(provider, "canary", name, 2, fleet.urls["enclave-2"], "jwt")["passed"]
    provider.set_primary(name, 2)
    provider.restore(name, 1, [M_CURRENT])
    assert provider.release_lock(name, "run")
    # The policy gives no decrypt: the rotation's own login cannot read data.
    with pytest.raises(AccessDeniedError):
        provider.vault.call(lambda: provider.vault.client().secrets.transit.decrypt_data(
            name, provider.encrypt(name, b"x", CONTEXT), context=provider._context(CONTEXT)), "decrypt", "test")
    wrong = build(bao, token=None, auth_method="approle", role_id=role_id, secret_id="not-the-secret-id")
    with pytest.raises(AccessDeniedError, match="refused the AppRole login") as info:
        wrong.describe_key(name)
    assert "not-the-secret-id" not in str(info.value)
