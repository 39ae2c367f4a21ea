# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Nitro verifier: the genuine AWS vectors, then a generated chain for the negative matrix."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import nitro
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import nitro_root as _nitro_root
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import (
    AttestationError, VerifyOptions, parse_time, result_row, verify)

from attest_testlib import NitroWorld, make_cert

PCR0 = "e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a"
CAPTURED = parse_time("2024-09-07T14:37:39.545Z")
DEBUG_CAPTURED = parse_time("2024-09-07T14:38:06.508Z")


@pytest.fixture(scope="module")
def production_b64(nitro_vectors):
    return (nitro_vectors / "nitro_attestation.b64").read_text()


@pytest.fixture(scope="module")
def production_raw(production_b64):
    return base64.b64decode(production_b64)


def _refusal(document, options, allowed=None) -> AttestationError:
    with pytest.raises(AttestationError) as info:
        verify(document, "nitro", options, allowed)
    return info.value


# --------------------------------------------------------------------------- genuine vectors

def test_production_document_verifies_at_capture_time_with_pinned_root(production_b64):
    evidence = verify(production_b64, None, VerifyOptions(now=CAPTURED))
    assert evidence.format == "nitro"
    assert evidence.measurement == PCR0
    assert evidence.issued_at == dt.datetime(2024, 9, 7, 14, 37, 39, 545000, tzinfo=dt.timezone.utc)
    assert evidence.details["module_id"] == "i-0a22e5c5f24d22174-enc0191cceb4289903f"


def test_production_document_refused_four_hours_later(production_b64):
    exc = _refusal(production_b64, VerifyOptions(now=CAPTURED + dt.timedelta(hours=4)))
    assert exc.check == "expired"
    assert "leaf certificate expired at 2024-09-07T17:37:39Z" in exc.detail
    assert exc.measurement == PCR0


def test_production_document_refused_before_its_leaf_existed(production_b64):
    assert _refusal(production_b64, VerifyOptions(now=CAPTURED - dt.timedelta(minutes=1))).check == "not_yet_valid"


def test_debug_document_refused(nitro_vectors):
    exc = _refusal((nitro_vectors / "nitro_attestation_debug.b64").read_text(), VerifyOptions(now=DEBUG_CAPTURED))
    assert exc.check == "debug_enclave"
    assert exc.measurement == "0" * 96


def test_raw_and_base64_forms_both_accepted(production_b64, production_raw):
    options = VerifyOptions(now=CAPTURED)
    assert verify(production_raw, None, options).measurement == PCR0
    assert verify(production_b64, None, options).measurement == PCR0
    assert verify(production_b64.encode(), None, options).measurement == PCR0  # base64 bytes (a file)
    assert verify("".join(production_b64.split()), "nitro", options).measurement == PCR0


def test_flipped_payload_byte_refused(production_raw):
    cose = cbor2.loads(production_raw)
    payload = bytearray(cose[2])
    offset = payload.index(b"\x01" * 64)  # inside user_data/nonce: still well-formed CBOR
    payload[offset + 10] ^= 0x02
    tampered = cbor2.dumps([cose[0], cose[1], bytes(payload), cose[3]])
    assert _refusal(tampered, VerifyOptions(now=CAPTURED)).check == "signature"


@pytest.mark.parametrize("index", [0, 47, 48, 95])
def test_flipped_signature_byte_refused(production_raw, index):
    cose = cbor2.loads(production_raw)
    signature = bytearray(cose[3])
    signature[index] ^= 0x01
    tampered = cbor2.dumps([cose[0], cose[1], cose[2], bytes(signature)])
    assert _refusal(tampered, VerifyOptions(now=CAPTURED)).check == "signature"


def test_any_flipped_byte_of_the_document_is_refused(production_raw):
    # Every 97th byte across the whole document: whatever it hits, the document must not verify.
    for offset in range(0, len(production_raw), 97):
        data = bytearray(production_raw)
        data[offset] ^= 0x40
        row = result_row("t", bytes(data), "nitro", VerifyOptions(now=CAPTURED))
        assert row["verified"] is False, offset
        assert row["check"] in ("malformed", "signature", "chain", "expired", "not_yet_valid", "debug_enclave"), row


def test_another_root_refused(production_b64):
    key = ec.generate_private_key(ec.SECP384R1())
    now = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    other = make_cert("aws.nitro-enclaves", key, None, key, now, now + dt.timedelta(days=3650), True)
    from cryptography.hazmat.primitives import serialization

    exc = _refusal(production_b64, VerifyOptions(now=CAPTURED, root_certificate_pem=other.public_bytes(serialization.Encoding.PEM)))
    assert exc.check == "chain"


def test_nonce_matches_and_mismatch_refused(production_b64):
    assert verify(production_b64, "nitro", VerifyOptions(now=CAPTURED, nonce="01" * 1024)).measurement == PCR0
    assert _refusal(production_b64, VerifyOptions(now=CAPTURED, nonce="01" * 1023 + "02")).check == "nonce_mismatch"
    assert _refusal(production_b64, VerifyOptions(now=CAPTURED, nonce="not-hex")).check == "nonce_mismatch"


def test_max_age_against_timestamp(production_b64):
    later = CAPTURED + dt.timedelta(minutes=10)
    assert verify(production_b64, "nitro", VerifyOptions(now=later, max_age=3600)).measurement == PCR0
    assert _refusal(production_b64, VerifyOptions(now=later, max_age=300)).check == "stale"


def test_several_pcrs_measure_sha384_of_concatenation(production_raw):
    pcrs = cbor2.loads(cbor2.loads(production_raw)[2])["pcrs"]
    evidence = verify(production_raw, "nitro", VerifyOptions(now=CAPTURED, nitro_pcrs=[0, 1, 2]))
    assert evidence.measurement == hashlib.sha384(pcrs[0] + pcrs[1] + pcrs[2]).hexdigest()
    reordered = verify(production_raw, "nitro", VerifyOptions(now=CAPTURED, nitro_pcrs=[2, 1, 0]))
    assert reordered.measurement != evidence.measurement
    assert verify(production_raw, "nitro", VerifyOptions(now=CAPTURED, nitro_pcrs=[4])).measurement == pcrs[4].hex()


def test_configured_zero_pcr_is_debug(production_raw):
    # PCR3 is zero in the production vector (no IAM role): configuring it is refused as debug.
    assert _refusal(production_raw, VerifyOptions(now=CAPTURED, nitro_pcrs=[0, 3])).check == "debug_enclave"


def test_allow_list(production_raw):
    assert verify(production_raw, "nitro", VerifyOptions(now=CAPTURED), [PCR0]).measurement == PCR0
    exc = _refusal(production_raw, VerifyOptions(now=CAPTURED), ["ab" * 48])
    assert exc.check == "measurement_not_allowed"


def test_pinned_root_fingerprint_equals_the_shared_pem(nitro_vectors):
    shared = x509.load_pem_x509_certificate((nitro_vectors / "AWS_NitroEnclaves_Root-G1.pem").read_bytes())
    pinned = _nitro_root.load_root()
    assert pinned.fingerprint(hashes.SHA256()) == shared.fingerprint(hashes.SHA256())
    assert pinned.fingerprint(hashes.SHA256()).hex().upper() == _nitro_root.AWS_NITRO_ROOT_G1_SHA256


def test_pinned_root_fingerprint_is_checked(monkeypatch):
    key = ec.generate_private_key(ec.SECP384R1())
    now = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    from cryptography.hazmat.primitives import serialization

    impostor = make_cert("aws.nitro-enclaves", key, None, key, now, now + dt.timedelta(days=1), True)
    monkeypatch.setattr(_nitro_root, "AWS_NITRO_ROOT_G1_PEM", impostor.public_bytes(serialization.Encoding.PEM))
    _nitro_root.load_root.cache_clear()
    try:
        with pytest.raises(_nitro_root.PinnedRootError):
            _nitro_root.load_root()
    finally:
        monkeypatch.undo()
        _nitro_root.load_root.cache_clear()
    assert _nitro_root.load_root().fingerprint(hashes.SHA256()).hex().upper() == _nitro_root.AWS_NITRO_ROOT_G1_SHA256


# --------------------------------------------------------------------------- generated chain

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


@pytest.fixture(scope="module")
def world():
    return NitroWorld(NOW)


def _options(world, **kwargs):
    kwargs.setdefault("now", NOW + dt.timedelta(seconds=5))
    return VerifyOptions(root_certificate_pem=world.root_pem, **kwargs)


def test_generated_document_verifies_untagged_and_tagged(world):
    pcr0 = bytes([1]) * 48
    assert verify(world.document(), "nitro", _options(world)).measurement == pcr0.hex()
    assert verify(world.document(tag=True), None, _options(world)).measurement == pcr0.hex()


def test_generated_document_refused_under_pinned_aws_root(world):
    assert _refusal(world.document(), VerifyOptions(now=NOW)).check == "chain"


def test_cabundle_in_either_order(world):
    from cryptography.hazmat.primitives import serialization

    der = serialization.Encoding.DER
    reversed_bundle = world.payload(cabundle=[world.inter.public_bytes(der), world.root.public_bytes(der)])
    without_root = world.payload(cabundle=[world.inter.public_bytes(der)])
    assert verify(world.document(payload=reversed_bundle), "nitro", _options(world)).format == "nitro"
    assert verify(world.document(payload=without_root), "nitro", _options(world)).format == "nitro"


def test_missing_intermediate_is_chain(world):
    from cryptography.hazmat.primitives import serialization

    payload = world.payload(cabundle=[world.root.public_bytes(serialization.Encoding.DER)])
    assert _refusal(world.document(payload=payload), _options(world)).check == "chain"


def test_intermediate_without_ca_flag_is_chain():
    bad = NitroWorld(NOW, intermediate_is_ca=False)
    exc = _refusal(bad.document(), VerifyOptions(now=NOW + dt.timedelta(seconds=5), root_certificate_pem=bad.root_pem))
    assert exc.check == "chain"


def test_expired_intermediate_is_expired(world):
    assert _refusal(world.document(), _options(world, now=NOW + dt.timedelta(days=25))).check == "expired"


def test_signature_by_a_key_the_leaf_does_not_vouch_for(world):
    rogue = ec.generate_private_key(ec.SECP384R1())
    assert _refusal(world.document(signer=rogue), _options(world)).check == "signature"


def test_leaf_on_wrong_curve_refused():
    p256 = NitroWorld(NOW, leaf_curve=ec.SECP256R1)
    exc = _refusal(p256.document(), VerifyOptions(now=NOW + dt.timedelta(seconds=5), root_certificate_pem=p256.root_pem))
    assert exc.check == "signature"


@pytest.mark.parametrize("alg", [-7, -36, None, "ES384"])
def test_protected_alg_must_be_es384(world, alg):
    protected = cbor2.dumps({1: alg} if alg is not None else {})
    assert _refusal(world.document(protected=protected), _options(world)).check == "signature"


def test_nonce_bound_and_absent(world):
    doc = world.document(nonce=bytes.fromhex("aa" * 32))
    assert verify(doc, "nitro", _options(world, nonce="aa" * 32)).nonce == "aa" * 32
    assert _refusal(doc, _options(world, nonce="bb" * 32)).check == "nonce_mismatch"
    assert _refusal(world.document(), _options(world, nonce="aa" * 32)).check == "nonce_mismatch"
    text_nonce = world.document(nonce=b"hello-nonce")
    assert verify(text_nonce, "nitro", _options(world, nonce="hello-nonce")).format == "nitro"


def test_future_timestamp_refused(world):
    future = int((NOW + dt.timedelta(minutes=30)).timestamp() * 1000)
    assert _refusal(world.document(timestamp=future), _options(world)).check == "not_yet_valid"


def test_pcr0_zero_is_debug_even_when_measuring_another_pcr(world):
    pcrs = {i: bytes([i + 1]) * 48 for i in range(16)}
    pcrs[0] = bytes(48)
    exc = _refusal(world.document(pcrs=pcrs), _options(world, nitro_pcrs=[4]))
    assert exc.check == "debug_enclave"


@pytest.mark.parametrize("mutation", [
    {"module_id": ""}, {"module_id": 7}, {"digest": "SHA256"}, {"timestamp": "1"}, {"timestamp": -1},
    {"pcrs": {}}, {"pcrs": {0: b"\x01" * 47}}, {"pcrs": {"0": b"\x01" * 48}}, {"certificate": None},
    {"certificate": "pem"}, {"cabundle": []}, {"cabundle": ["x"]}, {"nonce": "text"}, {"user_data": 5},
    {"public_key": b""},
])
def test_payload_type_checks(world, mutation):
    payload = world.payload()
    payload.update(mutation)
    assert _refusal(world.document(payload=payload), _options(world)).check == "malformed"


def test_payload_missing_field_and_missing_pcr(world):
    payload = world.payload()
    del payload["digest"]
    assert _refusal(world.document(payload=payload), _options(world)).check == "malformed"
    assert _refusal(world.document(), _options(world, nitro_pcrs=[20])).check == "malformed"


def test_garbage_certificate_is_malformed(world):
    assert _refusal(world.document(payload=world.payload(certificate=b"\x30\x03abc")), _options(world)).check == "malformed"


@pytest.mark.parametrize("document", [
    cbor2.dumps([1, 2, 3]),
    cbor2.dumps({"a": 1}),
    cbor2.dumps(cbor2.CBORTag(17, [b"", {}, b"", b""])),
    cbor2.dumps([b"", {}, b"", b""]),
    b"\x84\x41",
    cbor2.dumps([cbor2.dumps({1: -35}), {}, b"\xff\xff", b"\x00" * 96]),
    cbor2.dumps([cbor2.dumps({1: -35}), [], b"", b"\x00" * 96]),
])
def test_malformed_envelopes(world, document):
    exc = _refusal(document, _options(world))
    assert exc.check in ("malformed", "signature")
    row = result_row("t", document, "nitro", _options(world))
    assert row["verified"] is False and row["check"] == exc.check


def test_trailing_bytes_refused(world):
    assert _refusal(world.document() + b"\x00", _options(world)).check == "malformed"


def test_crit_header_refused(world):
    assert _refusal(world.document(protected=cbor2.dumps({1: -35, 2: [99]})), _options(world)).check == "malformed"


def test_bad_root_pem_is_trust(world):
    assert _refusal(world.document(), VerifyOptions(now=NOW, root_certificate_pem=b"not a pem")).check == "trust"


def test_short_signature_refused(world):
    cose = cbor2.loads(world.document())
    short = cbor2.dumps([cose[0], cose[1], cose[2], cose[3][:95]])
    assert _refusal(short, _options(world)).check == "signature"


def test_verifier_module_direct_call(world):
    assert nitro.verify(world.document(), _options(world)).details["leaf_subject"] == "leaf"


# --------------------------------------------------------------------------- issue 13, item 7: the leaf policy

def _leaf(world, *, ca=False, digital_signature=True, key_usage=True):
    """A leaf under the world's intermediate with the extensions the reproduction names."""
    from cryptography.hazmat.primitives import serialization

    key = ec.generate_private_key(ec.SECP384R1())
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "leaf")]))
               .issuer_name(world.inter.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - dt.timedelta(minutes=5)).not_valid_after(NOW + dt.timedelta(hours=3))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(world.inter.public_key()), critical=False))
    if key_usage:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=digital_signature, content_commitment=not digital_signature, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=False, encipher_only=False,
            decipher_only=False), critical=True)
    cert = builder.sign(world.inter_key, hashes.SHA384())
    return cert.public_bytes(serialization.Encoding.DER), key


@pytest.mark.parametrize("shape", [dict(ca=True), dict(digital_signature=False), dict(key_usage=False)],
                         ids=["ca_leaf", "no_digital_signature", "no_key_usage"])
def test_nitro_leaf_certificate_is_unconstrained(world, shape):
    der, key = _leaf(world, **shape)
    document = world.document(payload=world.payload(certificate=der), signer=key)
    exc = _refusal(document, _options(world))
    assert exc.check == "chain"
    row = result_row("t", document, "nitro", _options(world))
    assert row["verified"] is False and row["check"] == "chain"


def test_nitro_leaf_policy_accepts_a_proper_signing_leaf(world):
    der, key = _leaf(world)
    assert verify(world.document(payload=world.payload(certificate=der), signer=key), "nitro", _options(world))


def test_nitro_duplicate_protected_header_keys_refused(world):
    # {1: -7, 1: -35}: cbor2 keeps the last key, so the header would read as ES384.
    protected = b"\xa2" + cbor2.dumps(1) + cbor2.dumps(-7) + cbor2.dumps(1) + cbor2.dumps(-35)
    exc = _refusal(world.document(protected=protected), _options(world))
    assert exc.check == "malformed" and "repeats a key" in exc.detail


def test_nitro_indefinite_protected_header_refused(world):
    protected = b"\xbf" + cbor2.dumps(1) + cbor2.dumps(-35) + b"\xff"
    assert _refusal(world.document(protected=protected), _options(world)).check == "malformed"


def test_simulator_nitro_leaf_satisfies_the_leaf_policy():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[5] / "tools" / "enclave_sim"))
    try:
        from sim_trust import issue_certificate
    finally:
        sys.path.pop(0)
    root_key, leaf_key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
    root = issue_certificate(subject="root", public_key=root_key.public_key(), issuer_cert=None, issuer_key=root_key,
                             not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=1), ca=True, path_length=1)
    leaf = issue_certificate(subject="leaf", public_key=leaf_key.public_key(), issuer_cert=root, issuer_key=root_key,
                             not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=1), ca=False, path_length=None)
    assert nitro.verify_chain(leaf, [], [root], NOW, "m")[0] == leaf
