# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 22 item 5: one key's name must not break another key. For a key ``alias/K`` the
aliases ``alias/K/v<n>``, ``/tee-kms-lock/<n>``, ``/tee-kms-snapshot`` and
``/tee-kms-seen/<token>`` are K's own; a key_id that would land there is refused, aliases of
other keys nested under ``alias/K/`` are never read or deleted, and an alias in K's own
namespace that targets a key that is not K's stops every action with a clear message.

Aliases planted with a raw boto3 client stand for keys made before this fix or by hand. The
replay-cache tests run through the strict KMS, which dates aliases as AWS does (moto does not)."""

from __future__ import annotations

import datetime as dt
import hashlib

import boto3
import pytest
from attest_testlib import NitroWorld
from aws_support import M1, M2, REGION, run_module, version_key_ids
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError, ProviderError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.aws import RecipientCiphertext
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.rules import decrypt_purpose, purpose_nonce

# Key ids whose path lands in the namespace of the test's key (or of a key under it).
RESERVED = ["v2", "V2", "v0", "v2/deeper", "tee-kms-seen/x", "tee-kms-lock/1", "tee-kms-snapshot", "tee-kms-anything",
            "team/v3", "team/TEE-KMS-LOCK"]
DAY = 86400


def raw_client(url):
    return boto3.client("kms", region_name=REGION, endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing")


def names_under(kms, prefix) -> dict:
    return {a["AliasName"]: a["TargetKeyId"] for a in kms.list_aliases()["Aliases"] if a["AliasName"].startswith(prefix)}


def foreign_key(kms, **tags) -> str:
    return kms.create_key(Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()])["KeyMetadata"]["KeyId"]


def test_key_id_in_another_keys_namespace_is_refused_at_every_action(provider, alias, kms, moto_url, tmp_path):
    provider.create_key(alias, [M1])
    for suffix in RESERVED:
        key = f"{alias}/{suffix}"
        segment = suffix.rsplit("/", maxsplit=1)[-1] if suffix.startswith("team/") else suffix.split("/", maxsplit=1)[0]
        owner = key[:key.index("/" + segment)]
        with pytest.raises(InputError, match=f"Could not create key '{key}': with provider aws, its segment '{segment}' is "
                                             f"reserved: key '{owner}' owns the aliases {owner}/v<n>"):
            provider.create_key(key, [M1])
        for call in (provider.describe_key, lambda k: provider.create_version(k, 2), lambda k: provider.acquire_lock(k, "x", 60),
                     lambda k: provider.set_allowed_measurements(k, [M2]), lambda k: provider.restore(k, 1, [M1])):
            with pytest.raises(InputError, match="is reserved"):
                call(key)
    assert names_under(kms, alias + "/") == {f"{alias}/v1": version_key_ids(kms, alias)[1]}  # nothing made under those names
    failed = run_module("kms_key", dict(key_id=alias + "/v2", allowed_measurements=[M1]), moto_url, tmp_dir=tmp_path)
    assert failed["_rc"] != 0 and "its segment 'v2' is reserved" in failed["msg"] and "Traceback" not in str(failed), failed

    # A key under the name with a free segment lives beside it, and both keys rotate and roll back.
    nested = f"{alias}/team"
    provider.create_key(nested, [M1])
    provider.create_key(alias + "/v2x", [M1])
    for key in (alias, nested):
        provider.acquire_lock(key, "alice", 600)
        provider.save_snapshot(key, {"primary_version": 1, "allowed_measurements": [M1]})
        provider.create_version(key, 2)
        provider.set_allowed_measurements(key, [M1, M2])
        provider.set_primary(key, 2)
    for key in (alias, nested):
        provider.restore(key, 1, [M1])
        state = provider.describe_key(key)
        assert state["primary_version"] == 1 and [v["version"] for v in state["versions"]] == [1, 2]
        assert state["lock"]["owner"] == "alice" and state["snapshot"]["primary_version"] == 1
        assert provider.release_lock(key, "alice") is True


def test_key_made_before_the_fix_in_another_keys_namespace_is_a_clear_error(provider, alias, kms):
    provider.create_key(alias, [M1])
    legacy = alias + "/v2"  # a key alfred.tee_kms made before such key ids were refused
    kid = foreign_key(kms, **{"alfred:tee_kms:key_id": legacy, "alfred:tee_kms:version": "1"})
    kms.create_alias(AliasName=legacy + "/v1", TargetKeyId=kid)
    kms.create_alias(AliasName=legacy, TargetKeyId=kid)
    before = names_under(kms, alias + "/")
    with pytest.raises(ProviderError, match=f"Could not create a version of key '{alias}': alias {legacy} is key '{legacy}' of "
                                            "alfred.tee_kms, made before key ids in another key's namespace were refused, and it "
                                            f"would be version 2 of this key: move the users of '{legacy}' to a key under another "
                                            f"name, then delete the alias {legacy}"):
        provider.create_version(alias, 2)
    assert names_under(kms, alias + "/") == before  # nothing deleted, nothing made


def test_replay_cache_never_deletes_aliases_of_another_key_under_its_prefix(provider_for, strict_kms, alias):
    world = NitroWorld(dt.datetime.now(dt.timezone.utc))
    strict_kms.set_root(world.root_pem.decode())
    through, kms = provider_for(strict_kms.url), raw_client(strict_kms.url)
    through.create_key(alias, [M1], attestation_trust={"root_certificate": world.root_pem.decode(), "nitro_pcrs": [0]})
    ct = through.encrypt(alias, b"tokens", {"k": "v"})
    # A key made before the fix as '<alias>/tee-kms-seen/legacy', with its version alias, and
    # names that only look like this key's: none of them is this key's, all are a day old.
    other = foreign_key(kms)
    planted = [f"{alias}/tee-kms-seen/legacy", f"{alias}/tee-kms-seen/legacy/v1", f"{alias}/tee-kms-seen/n{'0' * 30}",
               f"{alias}/tee-kms-seen/n{'0' * 31}/v1", f"{alias}/v02", f"{alias}/tee-kms-lock/007", f"{alias}/tee-kms-snapshot/v1"]
    for name in planted:
        kms.create_alias(AliasName=name, TargetKeyId=other)
        strict_kms.age_alias(name, DAY)
    pcrs = {i: bytes([i + 1]) * 48 for i in range(16)}
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    def attestation():
        nonce = bytes.fromhex(purpose_nonce(decrypt_purpose(alias)))
        return {"format": "nitro", "document": world.document(pcrs={**pcrs, 0: bytes.fromhex(M1)}, nonce=nonce, public_key=public)}

    assert isinstance(through.decrypt(alias, ct, {"k": "v"}, attestation=attestation()), RecipientCiphertext)
    own = [n for n in names_under(kms, alias + "/tee-kms-seen/") if n not in planted]
    assert len(own) == 1
    # The cache's own entry, once expired, is dropped by the next decrypt; the others stay.
    strict_kms.age_alias(own[0], DAY)
    assert isinstance(through.decrypt(alias, ct, {"k": "v"}, attestation=attestation()), RecipientCiphertext)
    found = names_under(kms, alias + "/")
    assert all(found.get(name) == other for name in planted), found
    assert own[0] not in found and len([n for n in found if n.startswith(alias + "/tee-kms-seen/") and n not in planted]) == 1
    # Those aliases are not this key's: it still rotates.
    through.create_version(alias, 2)
    assert [v["version"] for v in through.describe_key(alias)["versions"]] == [1, 2]


@pytest.mark.parametrize("suffix", [f"tee-kms-seen/d{hashlib.sha256(b'x').hexdigest()[:31]}", "tee-kms-snapshot"])
def test_alias_in_a_keys_own_namespace_targeting_another_kms_key_stops_every_action(provider, alias, kms, suffix):
    provider.create_key(alias, [M1])
    kid1 = version_key_ids(kms, alias)[1]
    provider.save_snapshot(alias, {"primary_version": 1, "allowed_measurements": [M1]})
    # Someone points the name at a key of their own, with a record of their choosing on it.
    other = foreign_key(kms)
    provider._put_record(other, {}, "snapshot", {"primary_version": 1, "allowed_measurements": [M2]}, "x", "y")
    name = f"{alias}/{suffix}"
    if suffix == "tee-kms-snapshot":
        kms.update_alias(AliasName=name, TargetKeyId=other)
    else:
        kms.create_alias(AliasName=name, TargetKeyId=other)
    for action, call in (("read", lambda: provider.get_snapshot(alias)), ("restore", lambda: provider.restore(alias, 1, [M1])),
                         ("acquire the rotation lock on", lambda: provider.acquire_lock(alias, "alice", 60))):
        with pytest.raises(ProviderError, match=f"Could not {action} key '{alias}': alias {name} targets KMS key {other}, which "
                                                f"is not one of its versions \\(no alias {alias}/v<n> targets it\\); alfred.tee_kms "
                                                "never makes such an alias: confirm nobody relies on it, then delete it"):
            call()
    assert names_under(kms, name) == {name: other}  # never deleted, never followed
    assert kid1 in names_under(kms, alias + "/v1").values()
