# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""CiphertextForRecipient reading, against envelopes made by an independent CMS
implementation (the openssl command) and against what AWS would never send."""

from __future__ import annotations

import datetime
import random
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.aws import recipient_answer
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.aws_recipient import EnvelopeError, open_envelope, parse
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import ProviderError

from hang_guard import run_with_hang_guard

PLAINTEXT = b"a canary of thirty-two bytes...."


@pytest.fixture(scope="module")
def recipient(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.fail("the openssl command is needed: it is the independent CMS implementation these tests compare with")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "enclave")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("cms")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "data").write_bytes(PLAINTEXT)
    return key, folder


def openssl_envelope(folder, *options) -> bytes:
    """``options``: cipher and recipient-id flags, then the recipient's -keyopt flags."""
    out = folder / "env.der"
    split = options.index("-keyopt") if "-keyopt" in options else len(options)
    subprocess.run(["openssl", "cms", "-encrypt", "-binary", "-outform", "DER", "-in", str(folder / "data"), "-out", str(out),
                    *options[:split], "-recip", str(folder / "cert.pem"), *options[split:]], check=True, capture_output=True)
    return out.read_bytes()


AWS_LIKE = ("-aes256", "-keyid", "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256", "-keyopt", "rsa_mgf1_md:sha256")


def test_opens_what_aws_sends(recipient):
    key, folder = recipient
    envelope = openssl_envelope(folder, *AWS_LIKE)
    assert open_envelope(envelope, key) == PLAINTEXT
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(EnvelopeError, match="does not unwrap"):
        open_envelope(envelope, other)


@pytest.mark.parametrize("options, cause", [
    (("-aes256", "-keyid"), "not RSAES-OAEP"),                                           # PKCS#1 v1.5 key transport
    (("-aes256", "-keyid", "-keyopt", "rsa_padding_mode:oaep"), "not SHA-256 with MGF1-SHA-256"),  # OAEP with SHA-1
    (("-aes128", "-keyid") + AWS_LIKE[2:], "not AES-256-CBC"),
    (AWS_LIKE[:1] + AWS_LIKE[2:], "identified by subjectKeyIdentifier"),                 # issuerAndSerialNumber
])
def test_refuses_envelopes_aws_does_not_send(recipient, options, cause):
    dummy, folder = recipient
    with pytest.raises(EnvelopeError, match=cause):
        parse(openssl_envelope(folder, *options))


def test_refuses_damaged_envelopes(recipient):
    dummy, folder = recipient
    good = openssl_envelope(folder, *AWS_LIKE)
    for damaged, cause in ((good[:-5], "runs past the end"), (good + b"\0", "trailing bytes"), (b"", "empty"),
                           (b"\x30\x03\x06\x01\x00", "does not hold envelopedData")):
        with pytest.raises(EnvelopeError, match=cause):
            parse(damaged)


def test_recipient_answer_checks(recipient):
    dummy, folder = recipient
    good = openssl_envelope(folder, *AWS_LIKE)
    assert recipient_answer({"CiphertextForRecipient": good, "KeyId": "k"}, "obj", "KMS").envelope == good
    for answer, cause in (({"Plaintext": PLAINTEXT, "CiphertextForRecipient": good}, "with Plaintext"),
                          ({"KeyId": "k"}, "without CiphertextForRecipient"),
                          ({"CiphertextForRecipient": good[:-1]}, "not the CMS envelope KMS sends")):
        with pytest.raises(ProviderError, match=f"Could not decrypt obj: KMS answered .*{cause}"):
            recipient_answer(answer, "obj", "KMS")


# --------------------------------------------------------------------------- issue 22, item 7b

def _mutations(good: bytes):
    """Every truncation, and every byte of the envelope set to a few values that matter to DER."""
    for end in range(len(good)):
        yield good[:end]
    for pos in range(len(good)):
        for value in (0x00, 0x01, 0x30, 0x80, 0x84, 0xFF, good[pos] ^ 0x01):
            if value != good[pos]:
                yield good[:pos] + bytes([value]) + good[pos + 1:]


def test_malformed_cms_envelopes_from_a_hostile_kms_give_envelope_error(recipient):
    key, folder = recipient
    good = openssl_envelope(folder, *AWS_LIKE)
    unexpected, refused = [], 0
    for damaged in _mutations(good):
        try:
            open_envelope(damaged, key)
        except EnvelopeError:
            refused += 1
        except Exception as exc:  # noqa: BLE001 - the finding: IndexError, ValueError, ... escaped the reader
            unexpected.append(f"{exc.__class__.__name__} at {len(damaged)} bytes: {exc}")
    assert not unexpected, f"{len(unexpected)} damaged envelopes raised other errors, e.g. {unexpected[:3]}"
    assert refused > len(good)


def test_malformed_cms_envelope_is_a_named_provider_error_in_the_recipient_flow(recipient):
    dummy, folder = recipient
    good = openssl_envelope(folder, *AWS_LIKE)
    for damaged in _mutations(good):
        if not damaged:
            continue  # an empty answer has no CiphertextForRecipient at all (test_recipient_answer_checks)
        try:
            recipient_answer({"CiphertextForRecipient": damaged, "KeyId": "k"}, "obj", "KMS")
        except ProviderError as exc:
            assert str(exc).startswith("Could not decrypt obj: KMS answered a CiphertextForRecipient that is not"), exc


def test_randomly_damaged_cms_envelopes_give_envelope_error(recipient):
    key, folder = recipient
    good = openssl_envelope(folder, *AWS_LIKE)
    rng = random.Random(22)
    unexpected = []
    for dummy in range(3000):
        damaged = bytearray(good)
        for dummy_byte in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        if rng.random() < 0.3:
            damaged = damaged[:rng.randrange(len(damaged))]
        try:
            open_envelope(bytes(damaged), key)
        except EnvelopeError:
            pass
        except Exception as exc:  # noqa: BLE001
            unexpected.append(f"{exc.__class__.__name__}: {exc}")
    assert not unexpected, unexpected[:3]


def test_a_huge_object_identifier_in_a_cms_envelope_is_refused_quickly():
    # A ContentInfo whose contentType is a 256 KiB OID: shifting it in 7 bits at a time is quadratic.
    oid = b"\x2a" + b"\xff" * (256 * 1024) + b"\x01"
    inner = b"\x06\x84" + len(oid).to_bytes(4, "big") + oid + b"\xa0\x00"
    envelope = b"\x30\x84" + len(inner).to_bytes(4, "big") + inner
    with pytest.raises(EnvelopeError, match="OBJECT IDENTIFIER of"):
        run_with_hang_guard(parse, envelope)
