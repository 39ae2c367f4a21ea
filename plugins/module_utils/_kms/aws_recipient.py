# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading KMS ``CiphertextForRecipient``: a CMS EnvelopedData (RFC 5652 section 6) addressed
to the RSA key the enclave put in its attestation document.

Private module_utils: the API may change without notice between releases. Plain Python with
no Ansible imports: the enclave simulator opens envelopes with the same code, and the
controller only checks their structure (it never holds the private key).

What AWS KMS sends a Nitro enclave: one KeyTransRecipientInfo whose content-encryption key is
wrapped with RSAES-OAEP (SHA-256, MGF1-SHA-256; RFC 3560), content encrypted with
AES-256-CBC (RFC 3565). cryptography's pkcs7 helpers decrypt only PKCS#1 v1.5 recipients
identified by certificate, so this is a small DER reader for exactly that shape; anything
else is refused with the part that did not match.
"""

from __future__ import annotations

try:
    from cryptography.hazmat.primitives import hashes, padding as sym_padding
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
except ImportError:  # the provider checks its requirements (cryptography) before use
    pass

OID_ENVELOPED_DATA = "1.2.840.113549.1.7.3"
OID_DATA = "1.2.840.113549.1.7.1"
OID_RSAES_OAEP = "1.2.840.113549.1.1.7"
OID_MGF1 = "1.2.840.113549.1.1.8"
OID_SHA256 = "2.16.840.1.101.3.4.2.1"
OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"
_MAX_OID_BYTES = 32


class EnvelopeError(ValueError):
    """The envelope is not the CMS EnvelopedData KMS sends, or it does not open."""


def _tlv(data: bytes, pos: int, end: int | None = None):
    """(tag, start of value, end of value) of the DER item at ``pos``, which must end by ``end``."""
    end = len(data) if end is None else end
    if pos + 2 > end:
        raise EnvelopeError("truncated DER item")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > end:
            raise EnvelopeError("unsupported or truncated DER length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > end:
        raise EnvelopeError("DER item runs past the end of the envelope" if end == len(data) else "DER items overrun their container")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int, what: str, at_most: int) -> list:
    """The DER items inside ``data[start:end]``, at most ``at_most`` of them (more: EnvelopeError naming
    ``what``, raised at the first extra one, so that a megabyte of empty items is never listed)."""
    out = []
    while start < end:
        if len(out) == at_most:
            raise EnvelopeError(f"{what} holds more than {at_most} items")
        tag, vstart, vend = _tlv(data, start, end)
        out.append((tag, vstart, vend))
        start = vend
    return out


def _oid(raw: bytes) -> str:
    if not raw:
        raise EnvelopeError("empty OBJECT IDENTIFIER")
    if len(raw) > _MAX_OID_BYTES:
        # Each arc is shifted in 7 bits at a time: a megabyte-long arc would cost quadratic time.
        raise EnvelopeError(f"OBJECT IDENTIFIER of {len(raw)} bytes (the ones KMS uses have at most 9)")
    parts = [raw[0] // 40, raw[0] % 40]
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


def _expect(item, tag: int, what: str):
    if item[0] != tag:
        raise EnvelopeError(f"{what}: expected DER tag 0x{tag:02x}, found 0x{item[0]:02x}")
    return item


def _algorithm(data: bytes, item, what: str):
    """(oid, parameter items) of an AlgorithmIdentifier."""
    parts = _children(data, item[1], item[2], what, 2)
    if not parts:
        raise EnvelopeError(f"{what}: the AlgorithmIdentifier is empty")
    oid = _oid(data[_expect(parts[0], 0x06, what)[1]:parts[0][2]])
    return oid, parts[1:]


def parse(envelope: bytes) -> dict:
    """Structure of the envelope: {rid, encrypted_key, iv, encrypted_content}; raises EnvelopeError."""
    if not isinstance(envelope, bytes) or not envelope:
        raise EnvelopeError("the envelope is empty")
    top = _expect(_tlv(envelope, 0), 0x30, "ContentInfo")
    if top[2] != len(envelope):
        raise EnvelopeError("trailing bytes after the ContentInfo")
    info = _children(envelope, top[1], top[2], "ContentInfo", 2)
    if len(info) != 2 or _oid(envelope[_expect(info[0], 0x06, "contentType")[1]:info[0][2]]) != OID_ENVELOPED_DATA:
        raise EnvelopeError("the ContentInfo does not hold envelopedData")
    explicit = _expect(info[1], 0xA0, "content [0]")
    enveloped = _children(envelope, explicit[1], explicit[2], "content [0]", 1)
    if not enveloped:
        raise EnvelopeError("content [0] is empty")
    seq = _expect(enveloped[0], 0x30, "EnvelopedData")
    fields = _children(envelope, seq[1], seq[2], "EnvelopedData", 3)
    if len(fields) != 3:
        raise EnvelopeError("EnvelopedData must hold version, recipientInfos and encryptedContentInfo only")
    recipients = _children(envelope, _expect(fields[1], 0x31, "recipientInfos")[1], fields[1][2],
                           "recipientInfos (KMS sends exactly one recipient)", 1)
    if not recipients:
        raise EnvelopeError("expected exactly one recipient, found 0")
    ktri = _children(envelope, _expect(recipients[0], 0x30, "KeyTransRecipientInfo")[1], recipients[0][2],
                     "KeyTransRecipientInfo", 4)
    if len(ktri) != 4 or ktri[1][0] != 0x80:
        raise EnvelopeError("the recipient is not a KeyTransRecipientInfo identified by subjectKeyIdentifier")
    oid, params = _algorithm(envelope, _expect(ktri[2], 0x30, "keyEncryptionAlgorithm"), "keyEncryptionAlgorithm")
    if oid != OID_RSAES_OAEP or not params:
        raise EnvelopeError(f"key encryption algorithm {oid} is not RSAES-OAEP")
    oaep = _children(envelope, _expect(params[0], 0x30, "RSAES-OAEP-params")[1], params[0][2], "RSAES-OAEP-params", 3)
    hash_oid = mgf = mgf_hash = None
    for tag, start, end in oaep:
        inner = _children(envelope, start, end, "an RSAES-OAEP parameter", 1)
        if not inner:
            raise EnvelopeError("an RSAES-OAEP parameter is empty")
        inner = inner[0]
        if tag == 0xA0:
            hash_oid = _algorithm(envelope, inner, "hashFunc")[0]
        elif tag == 0xA1:
            mgf, mgf_params = _algorithm(envelope, inner, "maskGenFunc")
            mgf_hash = _algorithm(envelope, mgf_params[0], "MGF1 hash")[0] if mgf_params else None
        else:
            raise EnvelopeError("RSAES-OAEP-params with a pSource other than the default")
    if hash_oid != OID_SHA256 or mgf != OID_MGF1 or mgf_hash != OID_SHA256:
        raise EnvelopeError("RSAES-OAEP parameters are not SHA-256 with MGF1-SHA-256 (RSAES_OAEP_SHA_256)")
    eci = _children(envelope, _expect(fields[2], 0x30, "EncryptedContentInfo")[1], fields[2][2], "EncryptedContentInfo", 3)
    if len(eci) != 3 or eci[2][0] != 0x80:
        raise EnvelopeError("EncryptedContentInfo lacks its encryptedContent")
    cea, cea_params = _algorithm(envelope, _expect(eci[1], 0x30, "contentEncryptionAlgorithm"), "contentEncryptionAlgorithm")
    if cea != OID_AES256_CBC or len(cea_params) != 1 or cea_params[0][0] != 0x04 or cea_params[0][2] - cea_params[0][1] != 16:
        raise EnvelopeError("content encryption is not AES-256-CBC with a 16-byte IV")
    return {"rid": envelope[ktri[1][1]:ktri[1][2]],
            "encrypted_key": envelope[_expect(ktri[3], 0x04, "encryptedKey")[1]:ktri[3][2]],
            "iv": envelope[cea_params[0][1]:cea_params[0][2]],
            "encrypted_content": envelope[eci[2][1]:eci[2][2]]}


def open_envelope(envelope: bytes, private_key) -> bytes:
    """The plaintext inside; EnvelopeError when the structure is wrong or it was not for this key."""
    parts = parse(envelope)
    try:
        cek = private_key.decrypt(parts["encrypted_key"], padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    except ValueError:
        raise EnvelopeError("the content key does not unwrap with this enclave's private key") from None
    if len(cek) != 32 or len(parts["encrypted_content"]) % 16:
        raise EnvelopeError("the content key or the encrypted content has the wrong size")
    decryptor = Cipher(algorithms.AES(cek), modes.CBC(parts["iv"])).decryptor()
    padded = decryptor.update(parts["encrypted_content"]) + decryptor.finalize()
    unpadder = sym_padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise EnvelopeError("the content does not decrypt (bad padding)") from None
