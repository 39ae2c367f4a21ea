# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""AwsKmsProvider against a real moto server: attested canary, policy evaluation, lock,
snapshot and restore semantics identical to the local provider."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from attest_testlib import NitroWorld
from aws_support import M1, M2, M3, version_key_ids
from kms_testlib import Signer

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import (
    AccessDeniedError,
    ConflictError,
    InputError,
    LockHeldError,
    NotFoundError,
    ProviderError,
)


def context(alias, version):
    return {"token_key_id": alias, "token_version": str(version)}


def test_canary_alfred_evidence_across_rotation(provider, alias):
    signer = Signer()
    provider.create_key(alias, [M1], attestation_trust={"public_keys": [signer.public_b64]})
    ct1 = provider.encrypt(alias, b"canary-1", context(alias, 1))
    provider.create_version(alias, 2)
    provider.set_allowed_measurements(alias, [M1, M2])
    ct2 = provider.encrypt(alias, b"canary-2", context(alias, 2), version=2)
    provider.set_primary(alias, 2)
    # A new enclave image (M2) still reads tokens under the older version 1.
    assert provider.decrypt(alias, ct1, context(alias, 1), attestation=signer.attestation(M2)) == b"canary-1"
    assert provider.decrypt(alias, ct2, context(alias, 2), attestation=signer.attestation(M1)) == b"canary-2"

    with pytest.raises(AccessDeniedError, match="the caller presented no attestation evidence"):
        provider.decrypt(alias, ct2, context(alias, 2))
    with pytest.raises(AccessDeniedError, match="measurement_not_allowed"):
        provider.decrypt(alias, ct2, context(alias, 2), attestation=signer.attestation(M3))
    with pytest.raises(AccessDeniedError, match="signature"):
        provider.decrypt(alias, ct2, context(alias, 2), attestation=Signer().attestation(M1))
    with pytest.raises(AccessDeniedError, match="does not authenticate under this encryption context"):
        provider.decrypt(alias, ct2, context(alias, 1), attestation=signer.attestation(M1))
    # A ciphertext relabelled with another version is refused by KMS (wrong key).
    relabelled = ct2.replace(".2.", ".1.", 1)
    with pytest.raises(AccessDeniedError):
        provider.decrypt(alias, relabelled, context(alias, 2), attestation=signer.attestation(M1))

    provider.set_version_state(alias, 1, "disabled")
    with pytest.raises(AccessDeniedError, match="version 1 is disabled"):
        provider.decrypt(alias, ct1, context(alias, 1), attestation=signer.attestation(M1))
    with pytest.raises(ConflictError, match="version 1 is disabled"):
        provider.encrypt(alias, b"x", {}, version=1)


def test_canary_nitro_document_goes_as_recipient(provider, alias):
    now = dt.datetime.now(dt.timezone.utc)
    world = NitroWorld(now)
    pcr0 = bytes.fromhex(M1)
    pcrs = {i: bytes([i + 1]) * 48 for i in range(16)}
    provider.create_key(alias, [M1], attestation_trust={"root_certificate": world.root_pem.decode(), "nitro_pcrs": [0]})
    ct = provider.encrypt(alias, b"nitro-canary", context(alias, 1))
    good = world.document(pcrs={**pcrs, 0: pcr0})
    # The document passes the local check and goes to KMS as Recipient; moto alone answers
    # Plaintext, which AWS never does (test_recipient_flow_aws.py runs the real answer).
    with pytest.raises(ProviderError, match="answered a Recipient request with Plaintext"):
        provider.decrypt(alias, ct, context(alias, 1), attestation={"format": "nitro", "document": good})
    bad = world.document(pcrs={**pcrs, 0: bytes.fromhex(M2)})
    with pytest.raises(AccessDeniedError, match="measurement_not_allowed"):
        provider.decrypt(alias, ct, context(alias, 1), attestation={"format": "nitro", "document": bad})
    forged = NitroWorld(now).document(pcrs={**pcrs, 0: pcr0})
    with pytest.raises(AccessDeniedError, match="chain"):
        provider.decrypt(alias, ct, context(alias, 1), attestation={"format": "nitro", "document": forged})


def test_evaluate_policy_and_findings(provider, alias, kms):
    provider.create_key(alias, [M1])
    provider.create_version(alias, 2)
    assert provider.evaluate_policy(alias, M1) is True
    assert provider.evaluate_policy(alias, M1.upper()) is True
    assert provider.evaluate_policy(alias, M2) is False
    assert provider.evaluate_policy(alias, None) is False
    assert provider.policy_findings(alias) == []

    # An operator adds a broad grant to an enclave role on version 1 only.
    kid1 = version_key_ids(kms, alias)[1]
    doc = json.loads(kms.get_key_policy(KeyId=kid1, PolicyName="default")["Policy"])
    doc["Statement"].append({"Sid": "AppDecrypt", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/app"},
                             "Action": "kms:Decrypt", "Resource": "*"})
    doc["Statement"] = [s for s in doc["Statement"] if s.get("Sid") != "AlfredTeeKmsDenyUnattested"]
    kms.put_key_policy(KeyId=kid1, PolicyName="default", Policy=json.dumps(doc))
    findings = provider.policy_findings(alias)
    assert any(f.startswith("version 1: statement") and "role/app without an attestation condition" in f for f in findings)
    assert any("version 1: a caller without attestation can decrypt" == f for f in findings)
    assert not any(f.startswith("version 2") for f in findings)
    assert provider.evaluate_policy(alias, M2) is False  # version 2 still denies, so not every version allows
    # Re-applying the allow-list restores the collection's deny statement.
    provider.set_allowed_measurements(alias, [M1, M3])
    findings = provider.policy_findings(alias)
    assert findings and findings == [f for f in findings if "role/app" in f]
    assert provider.evaluate_policy(alias, M3) is True and provider.evaluate_policy(alias, None) is False


def test_policy_diff_is_readable_json(provider, alias):
    provider.create_key(alias, [M1])
    diff = provider.policy_diff(alias, [M1, M2])
    before, after = diff["before"]["version 1"], diff["after"]["version 1"]
    assert json.loads(before) and json.loads(after) and M2 in after and M2 not in before
    assert "\n  " in after  # indented
    assert provider.policy_diff(alias, [M1.upper()]) == {"before": {}, "after": {}}


def test_lock_semantics_match_local(provider, provider_for, alias, moto_url):
    provider.create_key(alias, [M1])
    lock = provider.acquire_lock(alias, "alice@ops-1", 600)
    assert lock["owner"] == "alice@ops-1"
    # A second controller (fresh process, nothing local) sees the lock.
    other = provider_for(moto_url)
    assert other.get_lock(alias)["owner"] == "alice@ops-1"
    with pytest.raises(LockHeldError, match="another rotation holds it \\(owner 'alice@ops-1'"):
        other.acquire_lock(alias, "bob@ops-2", 600)
    again = provider.acquire_lock(alias, "alice@ops-1", 900)  # refresh keeps acquired_at
    assert again["acquired_at"] == lock["acquired_at"]
    with pytest.raises(LockHeldError, match="held by another owner"):
        other.release_lock(alias, "bob@ops-2")
    # A lifetime of zero or less would protect nothing.
    with pytest.raises(InputError, match="ttl must be a positive number of seconds, got -5"):
        provider.acquire_lock(alias, "alice@ops-1", -5)
    # Expired lock: refused unless broken explicitly.
    provider.acquire_lock(alias, "alice@ops-1", 1)
    time.sleep(2.1)
    with pytest.raises(LockHeldError, match="stale lock of owner 'alice@ops-1'.*break_stale_lock=true"):
        other.acquire_lock(alias, "bob@ops-2", 600)
    taken = other.acquire_lock(alias, "bob@ops-2", 600, break_stale=True)
    assert taken["owner"] == "bob@ops-2" and provider.get_lock(alias)["owner"] == "bob@ops-2"
    assert other.release_lock(alias, "bob@ops-2") is True
    assert provider.get_lock(alias) is None and provider.release_lock(alias, "bob@ops-2") is False
    # A lock owner with characters KMS tags refuse is kept intact.
    odd = "awx job #42 (scheduled), ünïcode"
    assert provider.acquire_lock(alias, odd, 60)["owner"] == odd and other.get_lock(alias)["owner"] == odd


def test_lock_alias_race_is_refused(provider, alias, kms):
    provider.create_key(alias, [M1])
    # Another run created the lock alias but has not recorded its owner yet: it is given the
    # time to do so before anyone may count the lock as abandoned.
    kms.create_alias(AliasName=alias + "/tee-kms-lock/1", TargetKeyId=version_key_ids(kms, alias)[1])
    provider.lock.recordless_wait = 1.0
    with pytest.raises(LockHeldError, match="stale lock"):
        provider.acquire_lock(alias, "alice", 60)
    assert provider.acquire_lock(alias, "alice", 60, break_stale=True)["owner"] == "alice"


def test_snapshot_found_by_a_fresh_controller_and_restore(provider, provider_for, alias, moto_url, kms):
    provider.create_key(alias, [M1])
    snapshot = {"primary_version": 1, "allowed_measurements": [M1], "taken_at": "2026-11-25T10:00:00Z", "run": "x" * 300}
    provider.save_snapshot(alias, snapshot)
    provider.create_version(alias, 2)
    provider.set_allowed_measurements(alias, [M1, M2])
    provider.set_primary(alias, 2)
    fresh = provider_for(moto_url)
    assert fresh.get_snapshot(alias) == snapshot
    # A later snapshot replaces it (now on the version 2 key) without leaving the old record.
    newer = dict(snapshot, taken_at="2026-11-26T10:00:00Z")
    fresh.save_snapshot(alias, newer)
    assert provider.get_snapshot(alias) == newer
    tags1 = {t["TagKey"] for t in kms.list_resource_tags(KeyId=version_key_ids(kms, alias)[1])["Tags"]}
    assert not any(t.startswith("alfred:tee_kms:snapshot") for t in tags1)

    fresh.restore(alias, 1, [M1])
    state = provider.describe_key(alias)
    assert state["primary_version"] == 1 and state["allowed_measurements"] == [M1]
    assert [v["state"] for v in state["versions"]] == ["enabled", "enabled"]  # nothing disabled
    for kid in version_key_ids(kms, alias).values():
        assert M2 not in kms.get_key_policy(KeyId=kid, PolicyName="default")["Policy"]
    fresh.save_snapshot(alias, None)
    assert provider.get_snapshot(alias) is None


def test_restore_refusals_change_nothing(provider, alias, kms):
    provider.create_key(alias, [M1])
    provider.create_version(alias, 2)
    provider.set_allowed_measurements(alias, [M1, M2])
    provider.set_primary(alias, 2)
    provider.set_version_state(alias, 1, "disabled")
    before = {k: kms.get_key_policy(KeyId=k, PolicyName="default")["Policy"] for k in version_key_ids(kms, alias).values()}
    with pytest.raises(ConflictError, match="Could not promote version 1 of key .*version 1 is disabled"):
        provider.restore(alias, 1, [M1])
    with pytest.raises(InputError, match="the snapshot's allow-list is empty"):
        provider.restore(alias, 2, [])
    assert {k: kms.get_key_policy(KeyId=k, PolicyName="default")["Policy"] for k in before} == before
    assert provider.describe_key(alias)["primary_version"] == 2


def test_shared_rules_and_errors(provider, alias):
    with pytest.raises(NotFoundError, match=f"Could not read key '{alias}': it does not exist in AWS KMS"):
        provider.describe_key(alias)
    provider.create_key(alias, [M1])
    with pytest.raises(ConflictError, match=f"Could not create key '{alias}': it already exists"):
        provider.create_key(alias, [M1])
    with pytest.raises(InputError, match="the next version can only be 2"):
        provider.create_version(alias, 3)
    with pytest.raises(InputError, match="empty allow-list"):
        provider.set_allowed_measurements(alias, [])
    with pytest.raises(ConflictError, match="version 1 is the primary version"):
        provider.set_version_state(alias, 1, "disabled")
    with pytest.raises(NotFoundError, match="the key has versions 1"):
        provider.set_primary(alias, 7)
    with pytest.raises(InputError, match="nitro_pcrs must name exactly one PCR"):
        provider.set_attestation_trust(alias, {"nitro_pcrs": [0, 1]})


def test_nitro_pcr_choice_moves_the_condition(provider, alias, kms):
    provider.create_key(alias, [M1], attestation_trust={"nitro_pcrs": [8]})
    kid = version_key_ids(kms, alias)[1]
    assert "kms:RecipientAttestation:PCR8" in kms.get_key_policy(KeyId=kid, PolicyName="default")["Policy"]
    assert provider.describe_key(alias)["attestation_trust"] == {"nitro_pcrs": [8]}
    provider.set_attestation_trust(alias, {"nitro_pcrs": [0]})
    text = kms.get_key_policy(KeyId=kid, PolicyName="default")["Policy"]
    assert "PCR0" in text and "PCR8" not in text
    assert provider.policy_findings(alias) == []


def test_key_env_is_a_tag_on_every_version(provider, alias, kms):
    """The environment a key belongs to is the tag alfred:tee_kms:env: set at creation, carried to
    new versions, recorded once on every version key of a key created without one."""
    created = provider.create_key(alias, [M1], env="production")
    assert created["env"] == "production"
    provider.create_version(alias, 2)
    provider.set_primary(alias, 2)
    assert provider.describe_key(alias)["env"] == "production"
    with pytest.raises(ConflictError, match=f"Could not record the environment of key '{alias}': it already belongs to env 'production'"):
        provider.record_env(alias, "staging")

    legacy = alias + "-legacy"
    assert provider.create_key(legacy, [M1])["env"] is None
    provider.create_version(legacy, 2)
    provider.record_env(legacy, "staging")
    for kid in version_key_ids(kms, legacy).values():
        tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=kid)["Tags"]}
        assert tags["alfred:tee_kms:env"] == "staging"
    provider.set_primary(legacy, 2)
    assert provider.describe_key(legacy)["env"] == "staging"
