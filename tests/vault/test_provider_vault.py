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
import urllib.request

import pytest
from vault_support import (
    M_CURRENT, M_NEW, M_PROBE, TARGET, build, enclave_decrypts, grant_access, new_key, new_key_id, rotation_approle, server_state, trust_of,
)

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import (
    AccessDeniedError,
    ConflictError,
    InputError,
    LockHeldError,
    MissingLibraryError,
    NotFoundError,
    ProviderError,
)
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.probes import canary_context, evidence_from, run_probe

# Ciphertexts the tests let an enclave decrypt go through its canary endpoint, which decrypts canaries only.
CONTEXT = canary_context("k", 1)


def public_token(fleet, name, purpose="test"):
    """What anyone who reaches the enclave gets from its public attestation endpoint."""
    return evidence_from(fleet.urls[name], "jwt", 5.0, purpose)


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
    assert enclave_decrypts(fleet, "enclave-1", key_id, v2, CONTEXT, b"two")
    assert enclave_decrypts(fleet, "enclave-1", key_id, v1, CONTEXT, b"one")


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
    assert enclave_decrypts(fleet, "enclave-1", key_id, sealed, CONTEXT, b"bound")
    assert not enclave_decrypts(fleet, "enclave-1", key_id, sealed, dict(CONTEXT, token_version="2"), b"bound")


# --------------------------------------------------------------------------- enforcement

def test_server_enforces_the_allow_list_at_login(provider, key_id, fleet, bao, monkeypatch):
    # The operator's token in the environment must never be what decrypts (hvac reads VAULT_TOKEN).
    monkeypatch.setenv("VAULT_TOKEN", bao.root_token)
    allowed = run_probe(provider, "allowed_decrypt", key_id, 1, fleet.urls["enclave-1"], "jwt")
    assert allowed["passed"] and allowed["result"] == "decrypt_proven", allowed
    probe = run_probe(provider, "disallowed_denied", key_id, 1, fleet.urls["probe-1"], "jwt")
    assert probe["passed"] and probe["method"] == "probe_enclave" and 'claim "measurement" does not match' in probe["detail"], probe
    unattested = run_probe(provider, "unattested_denied", key_id, 1, fleet.urls["enclave-1"], "jwt")
    assert unattested["passed"] and unattested["public_token_refused"], unattested
    assert "permission denied" in unattested["detail"] and "audience" in unattested["detail"], unattested
    # Adding the probe's measurement to the server's role is what lets it in: the server decides.
    provider.set_allowed_measurements(key_id, [M_CURRENT, M_PROBE])
    sealed = provider.encrypt(key_id, b"now allowed", CONTEXT)
    assert enclave_decrypts(fleet, "probe-1", key_id, sealed, CONTEXT, b"now allowed")


def test_forged_and_expired_login_tokens_are_refused_by_the_server(provider, key_id, fleet):
    for mode, cause in (("bad-signature", "signature"), ("stale", "expired")):
        fleet.configure("enclave-1", mode=mode)
        try:
            probe = run_probe(provider, "allowed_decrypt", key_id, 1, fleet.urls["enclave-1"], "jwt")
        finally:
            fleet.configure("enclave-1", mode="ok")
        assert not probe["passed"] and probe["result"] == "kms_denied" and "login_refused" in probe["detail"], probe
        assert cause in probe["detail"], probe
    sealed = provider.encrypt(key_id, b"secret", CONTEXT)
    with pytest.raises(AccessDeniedError, match="jwt attestation tokens only"):
        provider.decrypt(key_id, sealed, CONTEXT, evidence_from(fleet.urls["enclave-1"], "alfred", 5.0, "test"))


@pytest.mark.parametrize("purpose", ["kms-decrypt", "attestation-verify", "none"])
def test_public_attestation_token_cannot_log_in(provider, key_id, fleet, bao, purpose):
    """Finding 1: anyone who reaches an enclave gets its attestation tokens; none may log in, whatever
    nonce the caller asked for (the decrypt gate's own purpose nonce included)."""
    sealed = provider.encrypt(key_id, b"the application's token", CONTEXT)
    wanted = {"kms-decrypt": f"kms-decrypt:{key_id}", "attestation-verify": "attestation-verify", "none": None}[purpose]
    if wanted is None:
        with urllib.request.urlopen(fleet.urls["enclave-1"] + "/v1/attestation/document?format=jwt", timeout=10) as answer:
            token = answer.read().decode("ascii")
        evidence = {"format": "jwt", "document": token.encode("ascii")}
    else:
        evidence = public_token(fleet, "enclave-1", wanted)
        token = evidence["document"].decode("ascii")
    with pytest.raises(urllib.error.HTTPError) as refused:
        bao.api("POST", "auth/jwt/login", {"role": f"tee-kms-{key_id}", "jwt": token}, token="")
    assert refused.value.code == 400 and b"audience" in refused.value.read()
    with pytest.raises(AccessDeniedError, match="the server refused the attestation login .*audience"):
        provider.decrypt(key_id, sealed, CONTEXT, evidence)
    # The enclave itself still decrypts, with a login token it never hands out.
    assert enclave_decrypts(fleet, "enclave-1", key_id, sealed, CONTEXT, b"the application's token")


def _captured_login(bao, fleet, enclave_path, seconds):
    """A genuine login token of enclave-2 (lifetime ``seconds``), captured on its path to Vault
    while it decrypted for a new key: (key, ciphertext, the login JWT)."""
    key = new_key(bao, fleet, measurements=(M_NEW,))
    sealed = build(bao).encrypt(key, b"captured", CONTEXT)
    fleet.configure("enclave-2", login_token_seconds=seconds)
    try:
        assert enclave_decrypts(fleet, "enclave-2", key, sealed, CONTEXT, b"captured")
    finally:
        fleet.configure("enclave-2", login_token_seconds=None)
    [login] = [body for body in enclave_path.logins if body.get("role") == f"tee-kms-{key}"]
    return key, sealed, login["jwt"]


def test_login_token_decrypts_once_and_only_this_key(bao, fleet, enclave_path):
    key_id, mine, jwt = _captured_login(bao, fleet, enclave_path, 30)
    provider = build(bao)
    other = new_key(bao, fleet, provider)
    theirs = provider.encrypt(other, b"other key", CONTEXT)
    login = bao.api("POST", "auth/jwt/login", {"role": f"tee-kms-{key_id}", "jwt": jwt}, token="")
    token = login["auth"]["client_token"]
    assert login["auth"]["policies"] == [f"tee-kms-{key_id}-decrypt"]
    with pytest.raises(urllib.error.HTTPError) as denied:
        bao.api("POST", f"transit/decrypt/{other}", {"ciphertext": theirs, "context": provider._context(CONTEXT)}, token=token)
    assert denied.value.code == 403
    # Within its window (30 s here) a captured login token logs in again: Vault checks no nonce.
    one_use = bao.api("POST", "auth/jwt/login", {"role": f"tee-kms-{key_id}", "jwt": jwt}, token="")["auth"]["client_token"]
    assert bao.api("POST", f"transit/decrypt/{key_id}", {"ciphertext": mine, "context": provider._context(CONTEXT)}, token=one_use)
    with pytest.raises(urllib.error.HTTPError):
        bao.api("POST", f"transit/decrypt/{key_id}", {"ciphertext": mine, "context": provider._context(CONTEXT)}, token=one_use)
    with pytest.raises(urllib.error.HTTPError) as wrong_role:  # and only to its own key's role
        bao.api("POST", "auth/jwt/login", {"role": f"tee-kms-{other}", "jwt": jwt}, token="")
    assert wrong_role.value.code == 400


def test_captured_login_token_replayed_after_its_window_is_refused(bao, fleet, enclave_path):
    """Finding 1: a login token replayed once its exp has passed is refused. Vault's default leeways
    (150 s after exp) would still admit it; the role allows a few seconds of clock skew only."""
    import base64
    import json as json_module
    import time

    from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.vault_access import CLOCK_SKEW_LEEWAY

    key_id, dummy, jwt = _captured_login(bao, fleet, enclave_path, 2)
    claims = json_module.loads(base64.urlsafe_b64decode(jwt.split(".")[1] + "=="))
    assert claims["exp"] - claims["iat"] == 2 and claims["aud"] == "alfred-tee-kms-login"
    time.sleep(max(0.0, claims["exp"] + CLOCK_SKEW_LEEWAY + 1 - time.time()))
    with pytest.raises(urllib.error.HTTPError) as late:
        bao.api("POST", "auth/jwt/login", {"role": f"tee-kms-{key_id}", "jwt": jwt}, token="")
    assert late.value.code == 400 and b"expired" in late.value.read()


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
    with pytest.raises(InputError, match="attestation_trust.login_audience is required"):
        provider.create_key(name, [M_CURRENT], "sha384", {"issuer": "x", "audience": "a"})
    with pytest.raises(InputError, match="JWT role tee-kms-.* does not exist.*vault_setup.yml"):
        provider.create_key(name, [M_CURRENT], "sha384", trust_of(fleet))  # no administrator's setup yet
    grant_access(bao, fleet, name)
    with pytest.raises(InputError, match="login_audience must differ from audience"):
        provider.create_key(name, [M_CURRENT], "sha384", dict(trust_of(fleet), login_audience=trust_of(fleet)["audience"]))
    with pytest.raises(InputError, match="bound_audiences is"):  # a trust the role does not enforce
        provider.create_key(name, [M_CURRENT], "sha384", dict(trust_of(fleet), login_audience="something-else"))
    with pytest.raises(InputError, match="allowed_measurements must not be empty"):
        provider.create_key(name, [], "sha384", trust_of(fleet))
    with pytest.raises(InputError, match="Transit key name"):
        provider.create_key("tokens/refresh", [M_CURRENT], "sha384", trust_of(fleet))
    with pytest.raises(NotFoundError, match="no Transit key of that name"):
        provider.describe_key(name)
    with pytest.raises(urllib.error.HTTPError):
        bao.api("GET", f"secret/data/tee-kms/{name}/meta")
    new_key(bao, fleet, provider, name)
    with pytest.raises(ConflictError, match="already exists"):
        provider.create_key(name, [M_NEW], "sha384", trust_of(fleet))
    assert server_state(bao, name)["allowed"] == [M_CURRENT]


def test_environment_is_recorded_once(provider, key_id, fleet, bao):
    assert provider.describe_key(key_id)["env"] is None
    provider.record_env(key_id, "staging")
    provider.record_env(key_id, "staging")
    with pytest.raises(ConflictError, match="it already belongs to env 'staging'"):
        provider.record_env(key_id, "production")
    bound = new_key(bao, fleet, provider, env="production")
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


def _as(server, token):
    """Call the server with ``token``: (HTTP status, body text)."""
    def call(method, path, payload=None):
        try:
            server.api(method, path, payload, token=token)
        except urllib.error.HTTPError as exc:
            return exc.code
        return 200
    return call


def _rotation_login(bao, fleet, role, keys):
    role_id, secret_id = rotation_approle(bao, fleet, role, keys)
    return role_id, secret_id, bao.api("POST", "auth/approle/login", {"role_id": role_id, "secret_id": secret_id}, token="")["auth"]


def test_approle_login_with_the_documented_setup(bao, fleet):
    """The rotation identity the administrator's setup gives (vault_key_access) is enough for a whole rotation."""
    name = new_key_id()
    role_id, secret_id, dummy = _rotation_login(bao, fleet, "rotation", [name])
    provider = build(bao, token=None, auth_method="approle", role_id=role_id, secret_id=secret_id)
    provider.create_key(name, [M_CURRENT], "sha384", trust_of(fleet))
    provider.acquire_lock(name, "run", 60)
    provider.save_snapshot(name, {"status": "recorded"})
    provider.create_version(name, 2)
    provider.set_allowed_measurements(name, TARGET)
    assert run_probe(provider, "canary", name, 2, fleet.urls["enclave-2"], "jwt")["passed"]
    provider.set_primary(name, 2)
    provider.restore(name, 1, [M_CURRENT])
    assert provider.release_lock(name, "run")
    # The identity gives no decrypt: the rotation's own login cannot read data.
    with pytest.raises(AccessDeniedError):
        provider.vault.call(lambda: provider.vault.client().secrets.transit.decrypt_data(
            name, provider.encrypt(name, b"x", CONTEXT), context=provider._context(CONTEXT)), "decrypt", "test")
    wrong = build(bao, token=None, auth_method="approle", role_id=role_id, secret_id="not-the-secret-id")
    with pytest.raises(AccessDeniedError, match="refused the AppRole login") as info:
        wrong.describe_key(name)
    assert "not-the-secret-id" not in str(info.value)


def test_rotation_identity_cannot_make_itself_root(bao, fleet):
    """Finding 2: what the reviewer did with the documented identity, and every other way up, refused."""
    name = new_key_id()
    role_id, secret_id, auth = _rotation_login(bao, fleet, "rotation-escalation", [name])
    assert sorted(auth["policies"]) == ["default", f"tee-kms-{name}-rotation"]
    new_key(bao, fleet, name=name)
    other = new_key(bao, fleet)  # another key on the same mounts, not this identity's
    bao.api("POST", "secret/data/other-team/db", {"data": {"password": "theirs"}})
    call = _as(bao, auth["client_token"])
    root_policy = {"policy": 'path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }'}
    refused = {
        "write a policy of its own": call("POST", "sys/policies/acl/tee-kms-evil", root_policy),
        "rewrite the key's decrypt policy": call("POST", f"sys/policies/acl/tee-kms-{name}-decrypt", root_policy),
        "rewrite its own rotation policy": call("POST", f"sys/policies/acl/tee-kms-{name}-rotation", root_policy),
        "create a JWT role": call("POST", "auth/jwt/role/tee-kms-evil", {"role_type": "jwt", "user_claim": "sub",
                                                                         "bound_audiences": ["x"], "token_policies": ["default"]}),
        "give the key's role other policies": call("POST", f"auth/jwt/role/tee-kms-{name}", {"role_type": "jwt", "token_policies": ["root"]}),
        "template the role's policies from claims": call("POST", f"auth/jwt/role/tee-kms-{name}",
                                                         {"role_type": "jwt", "token_policies_template_claims": True}),
        "let public tokens log in": call("POST", f"auth/jwt/role/tee-kms-{name}", {"role_type": "jwt", "bound_audiences": ["alfred-tee-kms"]}),
        "lengthen the login": call("POST", f"auth/jwt/role/tee-kms-{name}", {"role_type": "jwt", "token_num_uses": 0, "token_ttl": "768h"}),
        "accept expired tokens": call("POST", f"auth/jwt/role/tee-kms-{name}", {"role_type": "jwt", "expiration_leeway": 3600}),
        "glob the allow-list": call("POST", f"auth/jwt/role/tee-kms-{name}", {"role_type": "jwt", "bound_claims_type": "glob"}),
        "delete the key's role": call("DELETE", f"auth/jwt/role/tee-kms-{name}"),
        "touch another key's role": call("POST", f"auth/jwt/role/tee-kms-{other}", {"role_type": "jwt", "bound_claims": {"measurement": [M_PROBE]}}),
        "rotate another key": call("POST", f"transit/keys/{other}/rotate", {}),
        "decrypt": call("POST", f"transit/decrypt/{name}", {"ciphertext": "vault:v1:AAAA", "context": "e30="}),
        "trim versions": call("POST", f"transit/keys/{name}/trim", {"min_available_version": 1}),
        "reconfigure the key": call("POST", f"transit/keys/{name}/config", {"min_decryption_version": 1, "deletion_allowed": True}),
        "export the key": call("GET", f"transit/export/encryption-key/{name}"),
        "back up the key": call("GET", f"transit/backup/{name}"),
        "make an exportable key": call("POST", f"transit/keys/{new_key_id()}", {"type": "aes256-gcm96", "exportable": True}),
        "delete a record": call("DELETE", f"secret/data/tee-kms/{name}/meta"),
        "read another team's secret": call("GET", "secret/data/other-team/db"),
        "read another key's records": call("GET", f"secret/data/tee-kms/{other}/meta"),
        "list secrets": call("LIST", "secret/metadata/"),
        "create an orphan token": call("POST", "auth/token/create-orphan", {"policies": ["root"]}),
        "create a child token": call("POST", "auth/token/create", {"policies": [f"tee-kms-{other}-decrypt"]}),
        "change its AppRole": call("POST", "auth/approle/role/rotation-escalation", {"token_policies": ["root"]}),
        "mint secret ids": call("POST", "auth/approle/role/rotation-escalation/secret-id"),
    }
    for path in ("sys/auth", "sys/mounts", "sys/audit", "sys/policies/acl", "sys/raw/core", "sys/config/auditing/request-headers",
                 "sys/leases/lookup/", "sys/plugins/catalog", "sys/key-status", "sys/rotate", "sys/seal", "sys/step-down",
                 "sys/generate-root/attempt", "sys/internal/counters/activity", "sys/storage/raft/configuration",
                 "sys/metrics", "sys/pprof/", "sys/host-info", "sys/config/cors", "sys/loggers"):
        refused[f"GET {path}"] = call("GET", path)
    for path in ("sys/auth/evil", "sys/mounts/evil", "sys/audit/evil", "sys/rotate", "sys/seal", "sys/step-down",
                 "sys/leases/revoke-force/auth", "sys/revoke-prefix/auth", "sys/generate-root/attempt", "sys/plugins/reload/backend",
                 "sys/config/cors", "sys/tools/random"):
        refused[f"POST {path}"] = call("POST", path, {"type": "kv"} if path.startswith(("sys/auth/", "sys/mounts/", "sys/audit/")) else {})
    # A request counts against the identity when it succeeds for it; a dev server answers a few sys/
    # paths to anyone (metrics, a step-down on a single node): those say nothing about the identity.
    anonymous = _as(bao, "")
    succeeded = {what for what, status in refused.items() if status not in (400, 403, 405)}
    gained = {what for what in succeeded if what.split(" ", 1)[0] not in ("GET", "POST")
              or anonymous(*what.split(" ", 1)) in (400, 403, 405)}
    # sys/tools/random is in Vault's default policy (harmless): everything else is refused.
    assert gained <= {"POST sys/tools/random"}, {what: refused[what] for what in gained}
    # What the identity is for still works: the allow-list of its own key.
    assert call("POST", f"auth/jwt/role/tee-kms-{name}", {"role_type": "jwt", "bound_claims": {"measurement": [M_CURRENT, M_NEW]}}) == 200
    assert server_state(bao, name)["allowed"] == sorted([M_CURRENT, M_NEW])
    role = bao.api("GET", f"auth/jwt/role/tee-kms-{name}")["data"]
    assert role["token_policies"] == [f"tee-kms-{name}-decrypt"] and role["bound_audiences"] == ["alfred-tee-kms-login"]


def test_key_whose_role_admits_public_tokens_is_not_rotated(provider, key_id, bao, fleet):
    """A role left as the old collection wrote it (the public audience) is refused for every change but a rollback."""
    bao.api("POST", f"auth/jwt/role/tee-kms-{key_id}", {"role_type": "jwt", "bound_audiences": [trust_of(fleet)["audience"]]})
    for change in (lambda: provider.create_version(key_id, 2), lambda: provider.set_allowed_measurements(key_id, TARGET)):
        with pytest.raises(InputError, match="Vault access is not set up .*bound_audiences.*vault_setup.yml"):
            change()
    assert not provider.evaluate_policy(key_id, M_CURRENT)
    assert server_state(bao, key_id)["versions"] == [1]
    provider.restore(key_id, 1, [M_CURRENT])  # an emergency rollback still works
    assert grant_access(bao, fleet, key_id)["updated"] == ["role"]  # the administrator's step repairs it
    assert grant_access(bao, fleet, key_id)["changed"] is False
    provider.create_version(key_id, 2)


def test_vault_soft_deleted_lock_record_does_not_block_the_lock(provider, key_id, bao):
    """Finding 6: a lock record whose latest version was (soft) deleted blocked every later lock."""
    provider.acquire_lock(key_id, "run-a", 60)
    bao.api("DELETE", f"secret/data/tee-kms/{key_id}/lock")
    assert provider.get_lock(key_id) is None
    assert provider.acquire_lock(key_id, "run-b", 60)["owner"] == "run-b"
    assert provider.release_lock(key_id, "run-b") is True
    bao.api("DELETE", f"secret/data/tee-kms/{key_id}/snapshot") if server_state(bao, key_id)["snapshot"] else None
    provider.save_snapshot(key_id, {"status": "recorded"})
    bao.api("DELETE", f"secret/data/tee-kms/{key_id}/snapshot")
    provider.save_snapshot(key_id, {"status": "recorded", "primary_version": 1})
    assert provider.get_snapshot(key_id) == {"status": "recorded", "primary_version": 1}
