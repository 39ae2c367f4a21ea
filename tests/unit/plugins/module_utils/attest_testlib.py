# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Evidence factories for the attestation tests: real keys, real signatures, no mocks."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import uuid

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

UTC = dt.timezone.utc


class Offset:
    """A time given as seconds from the test's own clock, so parametrize ids stay the same
    whenever the suite is collected (xdist workers collect at different seconds)."""

    def __init__(self, seconds: int):
        self.seconds = seconds

    def __repr__(self) -> str:
        return f"now{self.seconds:+d}s"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --------------------------------------------------------------------------- nitro

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(cn, key, issuer_cert, issuer_key, not_before, not_after, ca, path_length=None):
    builder = (x509.CertificateBuilder().subject_name(_name(cn))
               .issuer_name(issuer_cert.subject if issuer_cert is not None else _name(cn))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    builder = builder.add_extension(x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False), critical=True)
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()), critical=False)
    return builder.sign(issuer_key, hashes.SHA384())


class NitroWorld:
    """A root -> intermediate -> leaf chain shaped like AWS's, and a document factory."""

    def __init__(self, now: dt.datetime, leaf_curve=ec.SECP384R1, intermediate_is_ca=True):
        self.now = now
        day = dt.timedelta(days=1)
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root = make_cert("root", self.root_key, None, self.root_key, now - 30 * day, now + 3650 * day, True)
        self.inter_key = ec.generate_private_key(ec.SECP384R1())
        self.inter = make_cert("intermediate", self.inter_key, self.root, self.root_key, now - 10 * day,
                               now + 20 * day, intermediate_is_ca, 0 if intermediate_is_ca else None)
        self.leaf_key = ec.generate_private_key(leaf_curve())
        self.leaf = make_cert("leaf", self.leaf_key, self.inter, self.inter_key, now - dt.timedelta(minutes=5),
                              now + dt.timedelta(hours=3), False)

    @property
    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def payload(self, pcrs=None, nonce=None, timestamp=None, **overrides) -> dict:
        der = serialization.Encoding.DER
        payload = {
            "module_id": "i-0test-enc0000000000000000",
            "digest": "SHA384",
            "timestamp": timestamp if timestamp is not None else int(self.now.timestamp() * 1000),
            "pcrs": pcrs if pcrs is not None else {i: bytes([i + 1]) * 48 for i in range(16)},
            "certificate": self.leaf.public_bytes(der),
            "cabundle": [self.root.public_bytes(der), self.inter.public_bytes(der)],
            "public_key": None,
            "user_data": None,
            "nonce": nonce,
        }
        payload.update(overrides)
        return payload

    def document(self, payload=None, protected=None, signer=None, tag=False, raw_payload=None, **kwargs) -> bytes:
        protected = cbor2.dumps({1: -35}) if protected is None else protected
        body = raw_payload if raw_payload is not None else cbor2.dumps(payload if payload is not None else self.payload(**kwargs))
        signer = signer or self.leaf_key
        r, s = decode_dss_signature(signer.sign(cbor2.dumps(["Signature1", protected, b"", body]), ec.ECDSA(hashes.SHA384())))
        size = (signer.curve.key_size + 7) // 8
        cose = [protected, {}, body, r.to_bytes(size, "big") + s.to_bytes(size, "big")]
        return cbor2.dumps(cbor2.CBORTag(18, cose) if tag else cose)


# --------------------------------------------------------------------------- jwt

class JwtWorld:
    """One key per algorithm family and the JWKS that publishes them."""

    def __init__(self):
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = {256: ec.generate_private_key(ec.SECP256R1()), 384: ec.generate_private_key(ec.SECP384R1()),
                   521: ec.generate_private_key(ec.SECP521R1())}
        self.ed = ed25519.Ed25519PrivateKey.generate()
        n = self.rsa.public_key().public_numbers()
        keys = [{"kty": "RSA", "kid": "rsa1", "use": "sig", "n": b64url(n.n.to_bytes(256, "big")), "e": b64url(n.e.to_bytes(3, "big"))}]
        for bits, crv in ((256, "P-256"), (384, "P-384"), (521, "P-521")):
            nums = self.ec[bits].public_key().public_numbers()
            size = (bits + 7) // 8
            keys.append({"kty": "EC", "crv": crv, "kid": f"ec{bits}", "x": b64url(nums.x.to_bytes(size, "big")),
                         "y": b64url(nums.y.to_bytes(size, "big"))})
        raw = self.ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        keys.append({"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "x": b64url(raw)})
        self.jwks = {"keys": keys}

    KID = {"RS": "rsa1", "PS": "rsa1", "ES256": "ec256", "ES384": "ec384", "ES512": "ec521", "EdDSA": "ed1"}

    def claims(self, now: int, **overrides) -> dict:
        claims = {"iss": "https://attest.example", "aud": "alfred-tee-kms", "iat": now, "nbf": now, "exp": now + 300,
                  "eat_nonce": "n0nce", "measurement": "AB" * 48, "jti": uuid.uuid4().hex}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, alg: str, signing_input: bytes) -> bytes:
        from cryptography.hazmat.primitives.asymmetric import padding

        if alg == "EdDSA":
            return self.ed.sign(signing_input)
        digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
        if alg.startswith("RS"):
            return self.rsa.sign(signing_input, padding.PKCS1v15(), digest)
        if alg.startswith("PS"):
            return self.rsa.sign(signing_input, padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size), digest)
        key = self.ec[{"256": 256, "384": 384, "512": 521}[alg[2:]]]
        size = (key.curve.key_size + 7) // 8
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(digest)))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    def token(self, alg="ES256", claims=None, header=None, now=None, kid=True, signature=None) -> str:
        now = now if now is not None else int(dt.datetime.now(UTC).timestamp())
        head = {"alg": alg, "typ": "JWT"}
        if kid:
            head["kid"] = self.KID.get(alg, self.KID.get(alg[:2]))
        head.update(header or {})
        head = {k: v for k, v in head.items() if v is not None}
        body = claims if claims is not None else self.claims(now)
        signing_input = (b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(body).encode())).encode()
        sig = signature if signature is not None else self.sign(alg, signing_input)
        return signing_input.decode() + "." + b64url(sig)


# --------------------------------------------------------------------------- alfred

SIGNED_FIELDS = ("runtime", "measurement", "challenge_nonce", "issued_at", "expires_at",
                 "operation_purpose", "request_id", "evidence_issued_at")


class AlfredWorld:
    def __init__(self):
        self.key = ed25519.Ed25519PrivateKey.generate()
        raw = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.public_b64 = base64.b64encode(raw).decode()
        self.public_raw = raw

    @staticmethod
    def challenge(now: int, window: int = 300) -> dict:
        return {"challenge_nonce": secrets.token_hex(32), "issued_at": now, "expires_at": now + window,
                "operation_purpose": "test", "request_id": str(uuid.uuid4())}

    def evidence(self, challenge: dict, measurement="cd" * 48, evidence_issued_at=None, key=None, **overrides) -> dict:
        doc = dict(challenge)
        doc.update(runtime="alfred-runtime/1", measurement=measurement,
                   evidence_issued_at=evidence_issued_at if evidence_issued_at is not None else challenge["issued_at"] + 1)
        doc.update(overrides)
        message = "|".join(str(doc[f]) for f in SIGNED_FIELDS).encode()
        doc["signature"] = base64.b64encode((key or self.key).sign(message)).decode()
        return doc

    @staticmethod
    def to_bytes(doc: dict) -> bytes:
        return json.dumps(doc).encode()
