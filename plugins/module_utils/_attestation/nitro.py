# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Verifier for AWS Nitro Enclaves attestation documents.

Private module_utils: the API may change without notice between releases.

A document is a CBOR COSE_Sign1 (RFC 9052), untagged or with tag 18:
``[protected: bstr, unprotected: map, payload: bstr, signature: bstr]``. The protected
header must say ``alg: ES384`` (-35). The signature is raw ``r||s`` (96 bytes) over the
Sig_structure ``["Signature1", protected, h'', payload]`` made with the key of the payload's
``certificate``, which must chain through ``cabundle`` to the trusted root (the pinned AWS
Nitro Enclaves Root-G1 unless another root is configured). The chain is validated at
``options.now``: callers verifying archived evidence set it to the time of capture.

Measurement: with one configured PCR (``options.nitro_pcrs``, default ``[0]``) it is the
lowercase hex of that PCR. With several it is the lowercase hex SHA-384 of the PCR values
concatenated in the configured order (so ``[0, 1, 2]`` and ``[2, 1, 0]`` differ; allow-lists
must be built with the same list).

Debug enclaves: AWS reports all-zero PCR0-PCR2 in debug mode. A document whose PCR0, PCR1 or
PCR2 is all zero, or whose configured PCR is all zero, is refused as ``debug_enclave``.
Consequence: do not configure PCRs that are legitimately zero (PCR3 without an IAM role,
PCR8 for an unsigned image).
"""

from __future__ import annotations

import datetime
import hashlib
import io
from collections.abc import Mapping

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.base import AttestationFormat
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.model import AttestationError, Evidence, VerifyOptions
from ansible_collections.alfred.tee_kms.plugins.module_utils._common import deps

# Libraries this verifier needs, checked by common.verify() before it is used (the format's requirements).
REQUIREMENTS = (deps.CRYPTOGRAPHY, deps.CBOR2)

COSE_ALG_ES384 = -35
COSE_SIGN1_TAG = 18
_PCR_LENGTHS = (32, 48, 64)
_MAX_CHAIN = 10
_DEBUG_PCRS = (0, 1, 2)


def _fail(check: str, detail: str, measurement: str | None = None):
    exc = AttestationError(check, detail)
    if measurement is not None:
        exc.measurement = measurement
    return exc


# --------------------------------------------------------------------------- parsing

# What a Nitro document may hold (AWS NSM API: a COSE_Sign1, a payload map of about ten fields, up
# to 32 PCRs and a cabundle of a few certificates): far more than that is refused before decoding.
_CBOR_MAX_ITEMS = 4096
_CBOR_MAX_DEPTH = 8
_MAX_CABUNDLE = _MAX_CHAIN


def check_cbor_shape(data: bytes, what: str, tag: int | None = None) -> None:
    """Walk one CBOR item without decoding it; AttestationError('malformed') unless it is plain data.

    Plain data: definite lengths only, no tag (but ``tag`` on the outermost item), at most
    _CBOR_MAX_ITEMS items nested at most _CBOR_MAX_DEPTH deep, nothing after the item. Byte and text
    strings are skipped by their length, so the walk costs at most _CBOR_MAX_ITEMS steps whatever the
    size. cbor2 then decodes only what passed: its semantic tags (decimal fractions of a huge bignum,
    regular expressions, MIME messages, dates...) run attacker-chosen conversions, some super-linear.
    """
    pos, end, items = 0, len(data), 0
    pending = [1]  # items still expected at each open level
    while pending:
        if pending[-1] == 0:
            pending.pop()
            continue
        if pos >= end:
            raise _fail("malformed", f"{what} is not valid CBOR (truncated)")
        head = data[pos]
        pos += 1
        major, info = head >> 5, head & 0x1F
        pending[-1] -= 1
        items += 1
        if items > _CBOR_MAX_ITEMS:
            raise _fail("malformed", f"{what} holds more than {_CBOR_MAX_ITEMS} CBOR items")
        if info < 24:
            arg = info
        elif info < 28:
            size = 1 << (info - 24)
            if pos + size > end:
                raise _fail("malformed", f"{what} is not valid CBOR (truncated)")
            arg = int.from_bytes(data[pos:pos + size], "big")
            pos += size
        elif info == 31:
            raise _fail("malformed", f"{what} uses an indefinite-length CBOR item; a Nitro document has none")
        else:
            raise _fail("malformed", f"{what} is not valid CBOR (reserved additional information {info})")
        if major in (2, 3):
            if arg > end - pos:
                raise _fail("malformed", f"{what} is not valid CBOR (truncated)")
            pos += arg
        elif major in (4, 5, 6):
            if major == 6 and not (items == 1 and arg == tag):
                expected = f"none or {tag}" if tag is not None else "none"
                raise _fail("malformed", f"{what} has CBOR tag {arg}, expected {expected}")
            count = 1 if major == 6 else arg * (2 if major == 5 else 1)
            if count > end - pos:  # every item takes at least one byte
                raise _fail("malformed", f"{what} is not valid CBOR (truncated)")
            if len(pending) >= _CBOR_MAX_DEPTH:
                raise _fail("malformed", f"{what} nests CBOR deeper than {_CBOR_MAX_DEPTH} levels")
            pending.append(count)
    if pos != end:
        raise _fail("malformed", f"{what} has {end - pos} trailing bytes after the CBOR item")


def _cbor_loads_exact(data: bytes, what: str, tag: int | None = None):
    import cbor2

    check_cbor_shape(data, what, tag)
    stream = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(stream).decode()
    except Exception as exc:  # cbor2 raises several types for truncated/invalid input
        raise _fail("malformed", f"{what} is not valid CBOR ({exc.__class__.__name__})") from None
    if stream.tell() != len(data):
        raise _fail("malformed", f"{what} has {len(data) - stream.tell()} trailing bytes after the CBOR item")
    return value


def _map_entries(encoded: bytes) -> int:
    """How many entries the CBOR map at the start of ``encoded`` declares (definite length only)."""
    head = encoded[0]
    if head >> 5 != 5:
        return -1
    info = head & 0x1F
    if info < 24:
        return info
    if info in (24, 25, 26, 27):
        size = 1 << (info - 24)
        return int.from_bytes(encoded[1:1 + size], "big")
    return -1  # indefinite length: refused, a protected header has a fixed shape


def parse_cose_sign1(document: bytes):
    """Return (protected_bytes, payload_bytes, signature_bytes, protected_map)."""
    import cbor2

    outer = _cbor_loads_exact(document, "nitro document", tag=COSE_SIGN1_TAG)
    if isinstance(outer, cbor2.CBORTag):
        if outer.tag != COSE_SIGN1_TAG:
            raise _fail("malformed", f"nitro document has CBOR tag {outer.tag}, expected none or 18 (COSE_Sign1)")
        outer = outer.value
    if not isinstance(outer, (list, tuple)) or len(outer) != 4:
        raise _fail("malformed", "nitro document is not a COSE_Sign1 array of 4 items")
    protected, unprotected, payload, signature = outer
    if not isinstance(protected, bytes) or not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise _fail("malformed", "COSE_Sign1 protected header, payload and signature must be byte strings")
    if not isinstance(unprotected, Mapping):
        raise _fail("malformed", "COSE_Sign1 unprotected header is not a map")
    header = _cbor_loads_exact(protected, "COSE protected header") if protected else {}
    if not isinstance(header, Mapping):
        raise _fail("malformed", "COSE protected header is not a map")
    if protected and _map_entries(protected) != len(header):
        # cbor2 keeps the last of duplicate keys; a verifier and a signer could then read
        # different algorithms from the same bytes (RFC 9052 section 3: labels are unique).
        raise _fail("malformed", "COSE protected header repeats a key")
    alg = header.get(1)
    if alg != COSE_ALG_ES384:
        raise _fail("signature", f"COSE algorithm {repr(alg)[:40]} is not ES384 (-35), the only one Nitro uses")
    if 1 in unprotected:
        raise _fail("malformed", "COSE algorithm must be in the protected header only")
    if 2 in header:  # crit: we understand no extension header parameters
        raise _fail("malformed", "COSE protected header lists critical parameters this verifier does not understand")
    return protected, payload, signature, header


def _check_bytes(payload: dict, name: str, optional: bool, min_len: int = 1, max_len: int = 1024):
    value = payload.get(name)
    if value is None:
        if optional:
            return None
        raise _fail("malformed", f"nitro payload lacks {name}")
    if not isinstance(value, bytes) or not min_len <= len(value) <= max_len:
        raise _fail("malformed", f"nitro payload field {name} must be a byte string of {min_len}..{max_len} bytes")
    return value


def parse_payload(payload_bytes: bytes) -> dict:
    """Decode and type-check the attestation payload (AWS NSM API, section 3.2)."""
    payload = _cbor_loads_exact(payload_bytes, "nitro payload")
    if not isinstance(payload, Mapping):
        raise _fail("malformed", "nitro payload is not a map")
    module_id = payload.get("module_id")
    if not isinstance(module_id, str) or not module_id:
        raise _fail("malformed", "nitro payload module_id must be a non-empty text string")
    if payload.get("digest") != "SHA384":
        raise _fail("malformed", "nitro payload digest must be 'SHA384'")
    timestamp = payload.get("timestamp")
    # Up to the end of year 9999: a larger one does not fit a datetime (OverflowError, not a refusal).
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or not 0 < timestamp < 253402300800000:
        raise _fail("malformed", "nitro payload timestamp must be a positive integer (milliseconds) before year 10000")
    pcrs = payload.get("pcrs")
    if not isinstance(pcrs, Mapping) or not 1 <= len(pcrs) <= 32:
        raise _fail("malformed", "nitro payload pcrs must be a map of 1..32 entries")
    for index, value in pcrs.items():
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 32:
            raise _fail("malformed", "nitro payload pcrs keys must be integers 0..31")
        if not isinstance(value, bytes) or len(value) not in _PCR_LENGTHS:
            raise _fail("malformed", f"nitro payload PCR{index} must be 32, 48 or 64 bytes")
    _check_bytes(payload, "certificate", optional=False)
    cabundle = payload.get("cabundle")
    if not isinstance(cabundle, (list, tuple)) or not 1 <= len(cabundle) <= _MAX_CABUNDLE:
        raise _fail("malformed", f"nitro payload cabundle must be an array of 1..{_MAX_CABUNDLE} certificates")
    for cert in cabundle:
        if not isinstance(cert, bytes) or not 1 <= len(cert) <= 1024:
            raise _fail("malformed", "nitro payload cabundle entries must be byte strings of 1..1024 bytes")
    _check_bytes(payload, "public_key", optional=True)
    _check_bytes(payload, "user_data", optional=True, min_len=0, max_len=512 * 1024)
    _check_bytes(payload, "nonce", optional=True, min_len=0, max_len=512 * 1024)
    return payload


def measurement_of(pcrs: dict, wanted) -> str:
    wanted = list(wanted or [0])
    missing = [i for i in wanted if i not in pcrs]
    if missing:
        raise _fail("malformed", f"nitro payload lacks PCR{', PCR'.join(str(i) for i in missing)}")
    if len(wanted) == 1:
        return pcrs[wanted[0]].hex()
    return hashlib.sha384(b"".join(pcrs[i] for i in wanted)).hexdigest()


# --------------------------------------------------------------------------- chain

def _load_roots(options: VerifyOptions):
    from cryptography import x509

    if options.root_certificate_pem is None:
        from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.nitro_root import load_root

        return [load_root()]
    pem = options.root_certificate_pem
    if isinstance(pem, str):
        pem = pem.encode("ascii", "replace")
    try:
        roots = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise _fail("trust", "the configured nitro root certificate is not a PEM certificate") from None
    if not roots:
        raise _fail("trust", "no nitro root certificate configured")
    return roots


def _validity(cert, when: datetime.datetime, role: str, measurement: str):
    if when < cert.not_valid_before_utc:
        raise _fail("not_yet_valid", f"{role} certificate is valid only from "
                    f"{cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}", measurement)
    if when > cert.not_valid_after_utc:
        raise _fail("expired", f"{role} certificate expired at {cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}", measurement)


def verify_chain(leaf, bundle: list, roots: list, when: datetime.datetime, measurement: str):
    """Validate leaf -> bundle -> one of roots at ``when``; raise expired/not_yet_valid/chain.

    First the certificates on the issuer-name path from the leaf are checked for validity at
    ``when`` (so an out-of-date certificate is reported as such), then cryptography's
    RFC 5280 path validation (signatures, CA basic constraints, path length, key usage,
    validity) builds and checks the path, in whatever order the bundle lists it.
    """
    from cryptography.x509 import verification

    subjects = set()
    for cert in bundle:
        if cert.subject in subjects:
            # The path builder tries every certificate whose name fits, and backtracks: a bundle of a
            # few same-named CAs cross-signing each other made it search exponentially many paths
            # (2 x 2 certificates: 5 s; 2 x 3: more than 5 minutes). One certificate per name keeps
            # it to one candidate per step. AWS's cabundle names each CA once.
            raise _fail("chain", f"the cabundle holds two certificates named '{_common_name(cert)[:64]}'", measurement)
        subjects.add(cert.subject)
    _validity(leaf, when, "leaf", measurement)
    root_names = {root.subject for root in roots}
    current, seen = leaf, 0
    while current.issuer not in root_names and seen < _MAX_CHAIN:
        parents = [c for c in bundle if c.subject == current.issuer and c is not current]
        if not parents:
            break
        current = parents[0]
        seen += 1
        _validity(current, when, f"CA '{_common_name(current)}'", measurement)

    builder = (verification.PolicyBuilder()
               .store(verification.Store(roots))
               .time(when)
               .max_chain_depth(_MAX_CHAIN)
               .extension_policies(ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
                                   ee_policy=leaf_policy()))
    try:
        chain = builder.build_client_verifier().verify(leaf, bundle).chain
    except verification.VerificationError as exc:
        text = str(exc).split(" (encountered", 1)[0]
        raise _fail("chain", f"certificate chain does not lead to the trusted root ({text})", measurement) from None
    return chain


def _leaf_key_usage(_policy, _cert, usage):
    if usage is None or not usage.digital_signature:
        raise ValueError("the leaf certificate's key usage does not include digitalSignature")


def _leaf_not_ca(_policy, _cert, constraints):
    if constraints is not None and constraints.ca:
        raise ValueError("the leaf certificate is a CA certificate")


def leaf_policy():
    """The COSE signer: a non-CA certificate whose key usage includes digitalSignature.

    Other extensions are permitted: AWS leaves carry none beyond these, and the Web PKI end-entity
    defaults (subjectAltName, extendedKeyUsage) do not apply to an enclave's signing certificate.
    """
    from cryptography import x509
    from cryptography.x509 import verification

    agnostic = verification.Criticality.AGNOSTIC
    return (verification.ExtensionPolicy.permit_all()
            .require_present(x509.KeyUsage, agnostic, _leaf_key_usage)
            .may_be_present(x509.BasicConstraints, agnostic, _leaf_not_ca))


def _common_name(cert) -> str:
    from cryptography.x509.oid import NameOID

    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


# --------------------------------------------------------------------------- signature

def verify_signature(leaf, protected: bytes, payload: bytes, signature: bytes, measurement: str):
    import cbor2
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise _fail("signature", "leaf certificate key is not an EC P-384 key as ES384 needs", measurement)
    if len(signature) != 96:
        raise _fail("signature", f"ES384 signature must be 96 bytes (r||s), got {len(signature)}", measurement)
    der = encode_dss_signature(int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big"))
    sig_structure = cbor2.dumps(["Signature1", protected, b"", payload])
    try:
        key.verify(der, sig_structure, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise _fail("signature", "COSE_Sign1 ES384 signature does not verify under the leaf certificate key",
                    measurement) from None


def _expected_nonce(nonce: str) -> bytes:
    try:
        return bytes.fromhex(nonce)
    except ValueError:
        return nonce.encode("utf-8")


# --------------------------------------------------------------------------- verify

def verify(document: bytes, options: VerifyOptions) -> Evidence:
    from cryptography import x509

    protected, payload_bytes, signature, _header = parse_cose_sign1(document)
    payload = parse_payload(payload_bytes)
    pcrs = payload["pcrs"]
    wanted = list(options.nitro_pcrs or [0])
    measurement = measurement_of(pcrs, wanted)

    try:
        leaf = x509.load_der_x509_certificate(payload["certificate"])
        bundle = [x509.load_der_x509_certificate(der) for der in payload["cabundle"]]
    except ValueError:
        raise _fail("malformed", "nitro certificate or cabundle entry is not a DER certificate", measurement) from None

    when = options.now
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    roots = _load_roots(options)
    verify_chain(leaf, bundle, roots, when, measurement)
    verify_signature(leaf, protected, payload_bytes, signature, measurement)

    # Only signed content from here on.
    zero = [i for i in sorted(set(wanted) | set(_DEBUG_PCRS)) if i in pcrs and not any(pcrs[i])]
    if zero:
        raise _fail("debug_enclave", f"PCR{', PCR'.join(str(i) for i in zero)} all zero: the enclave runs in "
                    "debug mode", measurement)

    if options.nonce is not None:
        got = payload.get("nonce")
        if got is None:
            raise _fail("nonce_mismatch", "document carries no nonce but one was expected", measurement)
        if got != _expected_nonce(options.nonce):
            raise _fail("nonce_mismatch", "document nonce differs from the nonce that was sent", measurement)

    issued = datetime.datetime.fromtimestamp(payload["timestamp"] / 1000, datetime.timezone.utc)
    skew = datetime.timedelta(seconds=options.clock_skew)
    if issued > when + skew:
        raise _fail("not_yet_valid", f"document timestamp {issued:%Y-%m-%dT%H:%M:%SZ} lies in the future", measurement)
    if options.max_age is not None:
        age = (when - issued).total_seconds()
        if age > options.max_age:
            raise _fail("stale", f"document is {int(age)}s old, max_age is {options.max_age}s", measurement)

    return Evidence(
        format="nitro",
        measurement=measurement,
        issued_at=issued,
        nonce=payload["nonce"].hex() if payload.get("nonce") is not None else None,
        details={"module_id": payload["module_id"], "pcrs": wanted,
                 "leaf_subject": _common_name(leaf)},
    )


class NitroFormat(AttestationFormat):
    """AWS Nitro Enclaves documents, chained to the pinned AWS root unless the trust gives its own."""

    name = "nitro"
    description = "a COSE_Sign1 (nitro)"
    requirements = REQUIREMENTS
    anchor = "root_certificate"
    anchor_options = {"root_certificate": dict(type="str")}
    measurement_options = {"nitro_pcrs": dict(type="list", elements="int")}
    flat_options = ("root_certificate", "nitro_pcrs")
    has_builtin_root = True

    @classmethod
    def sniff(cls, document: bytes) -> bool:
        return document.lstrip()[:1] in (b"\x84", b"\xd2")  # CBOR array of 4 (COSE_Sign1), or tag 18

    @classmethod
    def verify(cls, document: bytes, options: VerifyOptions) -> Evidence:
        return verify(document, options)
