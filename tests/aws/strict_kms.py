# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A KMS for tests that is as strict as AWS KMS about Nitro attestation, in front of moto.

Written from the AWS KMS API reference (Decrypt, GenerateDataKey, GenerateRandom: the
``Recipient`` parameter and ``CiphertextForRecipient``) and the developer guide's condition
keys for Nitro Enclaves, not from the collection: nothing here imports it.

- Key-scoped data calls (Decrypt, Encrypt, GenerateDataKey*, ReEncrypt, CreateGrant) are
  decided by the key policy with its own small evaluator below: explicit Deny wins, then an
  Allow is needed. The request context holds ``kms:RecipientAttestation:ImageSha384`` and
  ``kms:RecipientAttestation:PCR<n>`` only when a Recipient document verified. Anything the
  evaluator does not understand counts against the caller (an Allow does not apply, a Deny
  does), so it is never more lenient than AWS.
- A ``Recipient`` document must be a COSE_Sign1 (ES384) signed by a leaf certificate that
  chains through ``cabundle`` to the test root, at most five minutes old, and carry an RSA
  ``public_key``. Otherwise: ValidationException.
- With a Recipient the answer is as AWS documents it: no ``Plaintext``, and
  ``CiphertextForRecipient`` = CMS EnvelopedData, RSAES-OAEP-SHA-256 key transport to that
  public key, AES-256-CBC content.
- Aliases as AWS keeps them and moto does not: ``ListAliases`` entries carry ``CreationDate``
  and ``LastUpdatedDate`` (moto omits both), and an ``AliasName`` over 256 characters is a
  ValidationException. The dates are kept here; an alias this front never saw created (made
  directly on moto) is dated when first listed, which can only make it look younger.
  ``age_alias`` moves an alias's dates into the past, as a test's injected clock.
- Everything else passes through to moto, which stays the real KMS API underneath.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import hashlib
import http.client
import json
import os
import threading
import time

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding as sym_padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from aws_support import KmsFrontHandler, LoopbackFront

MAX_DOCUMENT_AGE = dt.timedelta(minutes=5)
MAX_ALIAS_NAME = 256
ALIAS_CALLS = ("CreateAlias", "UpdateAlias", "DeleteAlias", "ListAliases")
RECIPIENT_CALLS = {"Decrypt": "kms:Decrypt", "GenerateDataKey": "kms:GenerateDataKey",
                   "GenerateRandom": "kms:GenerateRandom"}
KEY_CALLS = {"Decrypt": "kms:Decrypt", "Encrypt": "kms:Encrypt", "GenerateDataKey": "kms:GenerateDataKey",
             "GenerateDataKeyPair": "kms:GenerateDataKeyPair",
             "GenerateDataKeyWithoutPlaintext": "kms:GenerateDataKeyWithoutPlaintext",
             "GenerateDataKeyPairWithoutPlaintext": "kms:GenerateDataKeyPairWithoutPlaintext",
             "CreateGrant": "kms:CreateGrant"}


class Refused(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- attestation

def verify_document(raw: bytes, root_der: bytes, now: dt.datetime) -> dict:
    """The payload of a Nitro attestation document that verifies, else Refused."""
    try:
        item = cbor2.loads(raw)
        if isinstance(item, cbor2.CBORTag) and item.tag == 18:
            item = item.value
        protected, dummy, payload_raw, signature = item
        if cbor2.loads(protected) != {1: -35}:
            raise ValueError("protected header is not {alg: ES384}")
        payload = cbor2.loads(payload_raw)
        leaf = x509.load_der_x509_certificate(payload["certificate"])
        bundle = [x509.load_der_x509_certificate(c) for c in payload["cabundle"]]
    except Exception as exc:  # noqa: BLE001 - every malformed document is one answer
        raise Refused("ValidationException", f"The attestation document is malformed ({exc})") from None
    if bundle[0].public_bytes(serialization.Encoding.DER) != root_der:
        raise Refused("ValidationException", "The attestation document does not chain to the Nitro root")
    chain = bundle + [leaf]
    for issuer, cert in zip(chain, chain[1:]):
        try:
            cert.verify_directly_issued_by(issuer)
        except Exception:  # noqa: BLE001
            raise Refused("ValidationException", "The attestation document's certificate chain does not verify") from None
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise Refused("ValidationException", "A certificate of the attestation document is not valid now")
    if len(signature) != 96:
        raise Refused("ValidationException", "The attestation document's signature is not ES384 r||s")
    der = encode_dss_signature(int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big"))
    try:
        leaf.public_key().verify(der, cbor2.dumps(["Signature1", protected, b"", payload_raw]), ec.ECDSA(hashes.SHA384()))
    except Exception:  # noqa: BLE001
        raise Refused("ValidationException", "The attestation document's signature does not verify") from None
    taken = dt.datetime.fromtimestamp(payload["timestamp"] / 1000, dt.timezone.utc)
    if not now - MAX_DOCUMENT_AGE <= taken <= now + dt.timedelta(seconds=30):
        raise Refused("ValidationException", "The attestation document is expired")
    try:
        public_key = serialization.load_der_public_key(payload.get("public_key") or b"")
    except ValueError:
        public_key = None
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < 2048:
        raise Refused("ValidationException", "The attestation document has no RSA public key to encrypt the response to")
    return payload


def attestation_context(payload: dict) -> dict:
    context = {f"kms:recipientattestation:pcr{i}": value.hex() for i, value in payload["pcrs"].items()}
    context["kms:recipientattestation:imagesha384"] = payload["pcrs"][0].hex()
    return context


# --------------------------------------------------------------------------- key policy

def _list(value):
    return value if isinstance(value, list) else [value]


def _principal_matches(statement: dict, account: str, effect: str) -> bool:
    if "NotPrincipal" in statement:
        return effect == "Deny"  # not understood: against the caller
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return effect == "Deny"
    names = [str(p) for p in _list(principal.get("AWS", []))]
    return any(p in ("*", account, f"arn:aws:iam::{account}:root") for p in names)


def _action_matches(statement: dict, action: str) -> bool:
    if "NotAction" in statement:
        return not any(fnmatch.fnmatchcase(action.lower(), str(a).lower()) for a in _list(statement["NotAction"]))
    return any(fnmatch.fnmatchcase(action.lower(), str(a).lower()) for a in _list(statement.get("Action", [])))


def _one(operator: str, values: list, present) -> bool | None:
    """One condition test, or None when the operator is not one this evaluator knows."""
    base = operator[:-len("IfExists")] if operator.endswith("IfExists") else operator
    if base == "Null":
        return (present is None) == (str(values[0]).lower() == "true")
    if present is None:
        return True if operator.endswith("IfExists") else base.startswith("StringNot")
    fold = (lambda v: v.lower()) if base.endswith("IgnoreCase") else (lambda v: v)
    wanted = [fold(str(v)) for v in values]
    if base in ("StringEquals", "StringEqualsIgnoreCase"):
        return fold(present) in wanted
    if base in ("StringNotEquals", "StringNotEqualsIgnoreCase"):
        return fold(present) not in wanted
    if base == "StringLike":
        return any(fnmatch.fnmatchcase(present, w) for w in wanted)
    if base == "StringNotLike":
        return not any(fnmatch.fnmatchcase(present, w) for w in wanted)
    return None


def _conditions_hold(statement: dict, context: dict, effect: str) -> bool:
    for operator, tests in (statement.get("Condition") or {}).items():
        for key, values in tests.items():
            outcome = _one(operator, _list(values), context.get(key.lower()))
            if outcome is None:
                return effect == "Deny"
            if not outcome:
                return False
    return True


def policy_allows(policy: dict, action: str, context: dict, account: str) -> bool:
    allowed = False
    for statement in _list(policy.get("Statement", [])):
        effect = statement.get("Effect")
        if not _action_matches(statement, action) or not _principal_matches(statement, account, effect):
            continue
        if not _conditions_hold(statement, context, effect):
            continue
        if effect == "Deny":
            return False
        allowed = allowed or effect == "Allow"
    return allowed


# --------------------------------------------------------------------------- envelope

def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(raw)]) + raw + body


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytes([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        out += bytes(reversed(chunk))
    return _der(0x06, out)


def _seq(*items: bytes) -> bytes:
    return _der(0x30, b"".join(items))


def envelope_for(plaintext: bytes, public_key_der: bytes) -> bytes:
    """CMS EnvelopedData (RFC 5652) to the enclave's key: RSAES-OAEP-SHA-256, AES-256-CBC."""
    public_key = serialization.load_der_public_key(public_key_der)
    cek, iv = os.urandom(32), os.urandom(16)
    wrapped = public_key.encrypt(cek, padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    padder = sym_padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(cek), modes.CBC(iv)).encryptor()
    content = encryptor.update(padder.update(plaintext) + padder.finalize()) + encryptor.finalize()
    sha256 = _seq(_oid("2.16.840.1.101.3.4.2.1"))
    oaep = _seq(_oid("1.2.840.113549.1.1.7"), _seq(_der(0xA0, sha256), _der(0xA1, _seq(_oid("1.2.840.113549.1.1.8"), sha256))))
    ski = hashlib.sha1(public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)).digest()  # noqa: S324 - RFC 5280 key id
    recipient = _seq(_der(0x02, b"\x02"), _der(0x80, ski), oaep, _der(0x04, wrapped))
    encrypted = _seq(_oid("1.2.840.113549.1.7.1"), _seq(_oid("2.16.840.1.101.3.4.1.42"), _der(0x04, iv)), _der(0x80, content))
    enveloped = _seq(_der(0x02, b"\x02"), _der(0x31, recipient), encrypted)
    return _seq(_oid("1.2.840.113549.1.7.3"), _der(0xA0, enveloped))


# --------------------------------------------------------------------------- server

class StrictKms(LoopbackFront):
    """Loopback HTTP front of moto; ``url`` is what clients use as their KMS endpoint."""

    def __init__(self, upstream: str, account: str = "123456789012"):
        self.upstream = upstream.replace("http://", "")
        self.root_der = None  # set_root() before any Recipient request: until then all are refused
        self.account = account
        self.decisions = []  # (operation, outcome) for tests that want to see what happened
        # Deliberate misbehaviour for the client's error tests: "no_envelope" drops
        # CiphertextForRecipient, "garbled" sends bytes that are no CMS envelope.
        self.tamper = None
        self.alias_dates = {}  # alias name -> [CreationDate, LastUpdatedDate], epoch seconds
        self._lock = threading.Lock()
        kms = self

        class Handler(KmsFrontHandler):
            def do_POST(self):
                body = self.read_body()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
                target = self.headers.get("X-Amz-Target", "")
                operation = target.rsplit(".", 1)[-1] if target.startswith("TrentService.") else None
                try:
                    status, answer_headers, data = kms.handle(operation, self.path, headers, body)
                except Refused as exc:
                    kms.record(operation, exc.code)
                    return self.error_reply(400, exc.code, str(exc))
                self.relay(status, answer_headers.items(), data)

            do_GET = do_POST

        self.serve(Handler)

    def set_root(self, root_pem: str) -> None:
        self.root_der = x509.load_pem_x509_certificate(root_pem.encode()).public_bytes(serialization.Encoding.DER)

    def age_alias(self, name: str, seconds: float) -> None:
        """Date the alias ``name`` ``seconds`` earlier, as if it had been made that long ago."""
        with self._lock:
            dates = self.alias_dates.setdefault(name, [time.time()] * 2)
            dates[:] = [value - seconds for value in dates]

    def record(self, operation, outcome):
        with self._lock:
            self.decisions.append((operation, outcome))

    # -- upstream ----------------------------------------------------------------------------
    def _moto(self, path, headers, body: bytes):
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            conn.request("POST", path, body=body, headers=dict(headers, **{"Content-Length": str(len(body))}))
            answer = conn.getresponse()
            return answer.status, dict(answer.getheaders()), answer.read()
        finally:
            conn.close()

    def _call(self, operation: str, headers, request: dict) -> dict:
        status, dummy, data = self._moto("/", dict(headers, **{"X-Amz-Target": f"TrentService.{operation}"}),
                                         json.dumps(request).encode())
        if status != 200:
            raise Refused(json.loads(data).get("__type", "KMSInternalException"), f"{operation} failed upstream")
        return json.loads(data)

    def _allowed(self, headers, key_id: str, action: str, context: dict) -> None:
        key_id = self._call("DescribeKey", headers, {"KeyId": key_id})["KeyMetadata"]["KeyId"]  # aliases, ARNs
        policy = json.loads(self._call("GetKeyPolicy", headers, {"KeyId": key_id, "PolicyName": "default"})["Policy"])
        if not policy_allows(policy, action, context, self.account):
            raise Refused("AccessDeniedException", f"User: arn:aws:iam::{self.account}:user/test is not authorized to perform: "
                          f"{action} on resource {key_id} because of the key policy")

    # -- decisions ---------------------------------------------------------------------------
    def _alias_call(self, operation, path, headers, body: bytes):
        name = json.loads(body or b"{}").get("AliasName") or ""
        if operation in ("CreateAlias", "UpdateAlias") and len(name) > MAX_ALIAS_NAME:
            raise Refused("ValidationException", f"1 validation error detected: Value '{name}' at 'aliasName' failed to satisfy "
                          f"constraint: Member must have length less than or equal to {MAX_ALIAS_NAME}")
        status, answer_headers, data = self._moto(path, headers, body)
        if status != 200:
            return status, answer_headers, data
        now = time.time()
        with self._lock:
            if operation == "CreateAlias":
                self.alias_dates[name] = [now, now]
            elif operation == "UpdateAlias":
                self.alias_dates.setdefault(name, [now, now])[1] = now
            elif operation == "DeleteAlias":
                self.alias_dates.pop(name, None)
            else:
                answer = json.loads(data)
                for entry in answer.get("Aliases", []):
                    entry["CreationDate"], entry["LastUpdatedDate"] = self.alias_dates.setdefault(entry["AliasName"], [now, now])
                data = json.dumps(answer).encode()
        return status, answer_headers, data

    def handle(self, operation, path, headers, body: bytes):
        if operation in ALIAS_CALLS:
            return self._alias_call(operation, path, headers, body)
        if operation not in KEY_CALLS and operation != "ReEncrypt" and operation != "GenerateRandom":
            return self._moto(path, headers, body)
        request = json.loads(body or b"{}")
        recipient = request.pop("Recipient", None)
        context, payload = {}, None
        if recipient is not None:
            if operation not in RECIPIENT_CALLS:
                raise Refused("ValidationException", f"{operation} does not take a Recipient")
            if recipient.get("KeyEncryptionAlgorithm") != "RSAES_OAEP_SHA_256":
                raise Refused("ValidationException", "KeyEncryptionAlgorithm must be RSAES_OAEP_SHA_256")
            try:
                raw = base64.b64decode(recipient.get("AttestationDocument") or "", validate=True)
            except ValueError:
                raise Refused("ValidationException", "AttestationDocument is not base64") from None
            payload = verify_document(raw, self.root_der, dt.datetime.now(dt.timezone.utc))
            context = attestation_context(payload)
        if operation == "GenerateRandom":
            answer = self._call(operation, headers, request)
        elif operation == "ReEncrypt":
            self._allowed(headers, request.get("DestinationKeyId", ""), "kms:ReEncryptTo", context)
            answer = self._call(operation, headers, request)
            self._allowed(headers, answer["SourceKeyId"], "kms:ReEncryptFrom", context)
        elif request.get("KeyId"):
            self._allowed(headers, request["KeyId"], KEY_CALLS[operation], context)
            answer = self._call(operation, headers, request)
        else:  # Decrypt of a symmetric ciphertext names its key only inside the blob
            answer = self._call(operation, headers, request)
            self._allowed(headers, answer["KeyId"], KEY_CALLS[operation], context)
        if payload is not None:
            plaintext = base64.b64decode(answer.pop("Plaintext"))
            envelope = envelope_for(plaintext, payload["public_key"])
            if self.tamper == "garbled":
                envelope = envelope[:40] + os.urandom(8) + envelope[48:-7]
            if self.tamper != "no_envelope":
                answer["CiphertextForRecipient"] = base64.b64encode(envelope).decode()
        self.record(operation, "recipient" if payload is not None else "allowed")
        return 200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(answer).encode()
