# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The strict test KMS answers like AWS KMS: CiphertextForRecipient that OpenSSL opens, and
refusals for every document or caller AWS would refuse; the simulator's canary endpoint
decrypts through it as a Nitro enclave does."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from aws_support import M1, M2, REGION, REPO, aws_env

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.aws_recipient import open_envelope

sys.path.insert(0, str(REPO / "tools" / "enclave_sim"))
from fleet import SimulatorFleet  # noqa: E402
from nitro_document import NitroDocumentIssuer  # noqa: E402
from sim_trust import TrustMaterial  # noqa: E402


@pytest.fixture(scope="module")
def world():
    trust = TrustMaterial()
    return trust, NitroDocumentIssuer(trust)


@pytest.fixture
def strict(strict_kms, world):
    strict_kms.set_root(world[0].root_pem)
    return strict_kms


def client(url):
    return boto3.client("kms", region_name=REGION, endpoint_url=url, aws_access_key_id="testing",
                        aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))


def recipient_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def document(issuer, measurement, public_der, **kw):
    return issuer.build(enclave_name="e1", measurement=measurement, timestamp_ms=kw.pop("timestamp_ms", int(time.time() * 1000)),
                        nonce=os.urandom(32), public_key=public_der, **kw)


def recipient(doc):
    return {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": doc}


def code(call):
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


@pytest.fixture
def sealed(provider, alias, kms):
    provider.create_key(alias, [M1])
    blob = kms.encrypt(KeyId=alias, Plaintext=b"the canary", EncryptionContext={"k": "v"})["CiphertextBlob"]
    return alias, blob


def test_recipient_decrypt_is_an_envelope_that_openssl_opens(strict, world, sealed, tmp_path):
    alias, blob = sealed
    key, public_der = recipient_key()
    answer = client(strict.url).decrypt(CiphertextBlob=blob, EncryptionContext={"k": "v"},
                                        Recipient=recipient(document(world[1], M1, public_der)))
    assert answer.get("Plaintext") is None and answer["KeyId"]
    envelope = answer["CiphertextForRecipient"]
    # An independent CMS implementation opens it with the enclave's private key.
    (tmp_path / "env.der").write_bytes(envelope)
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    opened = subprocess.run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in", str(tmp_path / "env.der"),
                             "-inkey", str(tmp_path / "key.pem")], capture_output=True, check=False)
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout == b"the canary" == open_envelope(envelope, key)
    # Another key cannot open it.
    with pytest.raises(ValueError, match="does not unwrap"):
        open_envelope(envelope, recipient_key()[0])
    # GenerateDataKey and GenerateRandom with a Recipient answer the same way.
    data_key = client(strict.url).generate_data_key(KeyId=alias, KeySpec="AES_256",
                                                    Recipient=recipient(document(world[1], M1, public_der)))
    assert data_key.get("Plaintext") is None and len(open_envelope(data_key["CiphertextForRecipient"], key)) == 32
    rnd = client(strict.url).generate_random(NumberOfBytes=24, Recipient=recipient(document(world[1], M1, public_der)))
    assert rnd.get("Plaintext") is None and len(open_envelope(rnd["CiphertextForRecipient"], key)) == 24


def test_every_caller_aws_would_refuse_is_refused(strict, world, sealed):
    alias, blob = sealed
    kms = client(strict.url)
    trust, issuer = world
    dummy, public_der = recipient_key()

    def decrypt(doc):
        return lambda: kms.decrypt(CiphertextBlob=blob, EncryptionContext={"k": "v"}, Recipient=recipient(doc))
    assert code(lambda: kms.decrypt(CiphertextBlob=blob, EncryptionContext={"k": "v"})) == "AccessDeniedException"
    assert code(decrypt(document(issuer, M2, public_der))) == "AccessDeniedException"  # not on the allow-list
    assert code(decrypt(document(issuer, M1, public_der, debug=True))) == "AccessDeniedException"
    assert code(decrypt(document(issuer, M1, public_der, rogue_signature=True))) == "ValidationException"
    stale = int((time.time() - 600) * 1000)
    assert code(decrypt(document(issuer, M1, public_der, timestamp_ms=stale))) == "ValidationException"
    assert code(decrypt(document(issuer, M1, None))) == "ValidationException"  # nothing to encrypt the answer to
    other = NitroDocumentIssuer(TrustMaterial())
    assert code(decrypt(document(other, M1, public_der))) == "ValidationException"  # another root
    assert code(decrypt(b"\xa0" + document(issuer, M1, public_der))) == "ValidationException"
    # The operations that take no Recipient and would reach the plaintext.
    other_key = kms.create_key()["KeyMetadata"]["KeyId"]
    assert code(lambda: kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"k": "v"},
                                       DestinationKeyId=other_key)) == "AccessDeniedException"
    assert code(lambda: kms.generate_data_key_without_plaintext(KeyId=alias, KeySpec="AES_256")) == "AccessDeniedException"
    assert code(lambda: kms.create_grant(KeyId=alias, GranteePrincipal="arn:aws:iam::123456789012:role/x",
                                         Operations=["Decrypt"])) == "AccessDeniedException"
    assert kms.encrypt(KeyId=alias, Plaintext=b"x")["CiphertextBlob"]  # encrypting needs no attestation


def test_canary_endpoint_of_the_simulator(strict, provider, alias, kms, tmp_path):
    env = aws_env()
    with SimulatorFleet(tmp_path / "sim", enclaves=[{"name": "ok", "measurement": M1}, {"name": "other", "measurement": M2},
                                                    {"name": "off", "measurement": M1, "canary": False}],
                        kms_endpoint=strict.url, env=env) as fleet:
        strict.set_root(fleet.trust["nitro_root_certificate"])
        provider.create_key(alias, [M1])
        context = {"k": "v", "tee_kms_purpose": "canary"}
        blob = kms.encrypt(KeyId=alias, Plaintext=b"canary bytes", EncryptionContext=context)["CiphertextBlob"]
        nonce = os.urandom(32)
        body = {"ciphertext_blob": base64.b64encode(blob).decode(), "encryption_context": context, "nonce": nonce.hex()}

        def post(name, payload):
            request = urllib.request.Request(fleet.urls[name] + "/v1/kms/canary", data=json.dumps(payload).encode(),
                                             headers={"Content-Type": "application/json"}, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    return answer.status, json.loads(answer.read())
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read())
        status, answer = post("ok", body)
        assert status == 200 and answer["proof"] == hashlib.sha256(nonce + b"canary bytes").hexdigest()
        assert ("Decrypt", "recipient") in strict.decisions
        status, answer = post("other", body)
        assert status == 502 and answer["kms_error"] == "AccessDeniedException"
        assert post("off", body)[0] == 404
        fleet.configure("ok", mode="wrong-nonce")
        status, answer = post("ok", body)
        assert status == 200 and answer["proof"] != hashlib.sha256(nonce + b"canary bytes").hexdigest()
        assert post("ok", dict(body, nonce="zz"))[0] == 400
        # Not a canary (a real token's context): refused before KMS is asked, so no oracle on tokens.
        token = kms.encrypt(KeyId=alias, Plaintext=b"a token", EncryptionContext={"k": "v"})["CiphertextBlob"]
        asked = len(strict.decisions)
        status, answer = post("ok", dict(body, ciphertext_blob=base64.b64encode(token).decode(), encryption_context={"k": "v"}))
        assert status == 400 and "decrypts canaries only" in answer["error"] and len(strict.decisions) == asked


def test_strict_kms_dates_aliases_and_refuses_names_over_256_characters(strict_kms, kms, alias):
    """AWS answers ListAliases with CreationDate and LastUpdatedDate and refuses alias names over
    256 characters; moto does neither, so the replay cache's expiry and the lock's longest
    generation are tested through this front."""
    through = client(strict_kms.url)
    kid = through.create_key()["KeyMetadata"]["KeyId"]
    through.create_alias(AliasName=alias, TargetKeyId=kid)

    def entry(name):
        return next(a for a in through.list_aliases()["Aliases"] if a["AliasName"] == name)
    assert "CreationDate" not in next(a for a in kms.list_aliases()["Aliases"] if a["AliasName"] == alias)  # moto alone
    created = entry(alias)["CreationDate"]
    assert abs(created.timestamp() - time.time()) < 600 and entry(alias)["LastUpdatedDate"] == created
    strict_kms.age_alias(alias, 86400)
    assert abs(entry(alias)["CreationDate"].timestamp() - (created.timestamp() - 86400)) < 1
    longest = alias + "/" + "x" * (255 - len(alias))
    through.create_alias(AliasName=longest, TargetKeyId=kid)
    assert len(longest) == 256 and entry(longest)["TargetKeyId"] == kid
    assert code(lambda: through.create_alias(AliasName=longest + "x", TargetKeyId=kid)) == "ValidationException"
    through.delete_alias(AliasName=longest)
    assert longest not in strict_kms.alias_dates
