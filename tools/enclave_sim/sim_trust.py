"""Trust material of one simulator process: generated fresh at start, private keys in memory only.

One process plays one "attestation world": every enclave it serves signs alfred evidence with
the same Ed25519 runtime key, chains its Nitro leaf to the same root, and signs JWTs with the
same JWKS. Each trusted key has an untrusted twin used by the `bad-signature` mode, so a
verifier sees a well-formed document whose signature simply does not check out.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

JWT_AUDIENCE = "alfred-tee-kms"
# The audience of the tokens an enclave presents to its KMS's login (Vault/OpenBao JWT auth):
# the enclave asks its attestation service for one inside itself and never hands it out. Its
# public document endpoint only ever issues JWT_AUDIENCE tokens, which that login refuses.
JWT_LOGIN_AUDIENCE = "alfred-tee-kms-login"

# AWS intermediates live for weeks and the root for decades; the leaf is per document
# (see nitro_document.py). Backdating by a day lets `stale` evidence (2 h old) still chain.
_CA_BACKDATE = dt.timedelta(days=1)
_ROOT_LIFETIME = dt.timedelta(days=3650)
_INTERMEDIATE_LIFETIME = dt.timedelta(days=30)


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Alfred enclave simulator"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "sim"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )


def issue_certificate(*, subject: str, public_key, issuer_cert, issuer_key,
                      not_before: dt.datetime, not_after: dt.datetime,
                      ca: bool, path_length: int | None) -> x509.Certificate:
    """Issue an X.509 certificate shaped like the AWS Nitro chain (ES384, critical BC/KU).

    The extensions are those a strict RFC 5280 / Web PKI CA policy requires (SKI everywhere,
    AKI below the root), so verifiers can use cryptography's stock CA policy on our chain.
    """
    subject_name = _name(subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject_name)
        .issuer_name(issuer_cert.subject if issuer_cert is not None else subject_name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if ca:
        builder = builder.add_extension(_ca_key_usage(), critical=True)
    else:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False,
        ), critical=True)
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA384())


def _rfc7638_thumbprint(jwk: dict) -> str:
    """JWK thumbprint (RFC 7638): a stable, content-derived `kid`."""
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}[jwk["kty"]]
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def rsa_public_jwk(public_key: rsa.RSAPublicKey) -> dict:
    numbers = public_key.public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    jwk = {"kty": "RSA", "n": b64url(n), "e": b64url(e)}
    jwk.update({"kid": _rfc7638_thumbprint(jwk), "use": "sig", "alg": "RS256"})
    return jwk


def ec_public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict:
    numbers = public_key.public_numbers()
    jwk = {
        "kty": "EC", "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }
    jwk.update({"kid": _rfc7638_thumbprint(jwk), "use": "sig", "alg": "ES256"})
    return jwk


class TrustMaterial:
    """Keys and certificates of the simulated attestation world (public parts exportable)."""

    def __init__(self, now: dt.datetime | None = None) -> None:
        now = now or dt.datetime.now(dt.timezone.utc)

        # alfred runtime contract: one Ed25519 runtime signing key.
        self.alfred_key = ed25519.Ed25519PrivateKey.generate()
        self.rogue_alfred_key = ed25519.Ed25519PrivateKey.generate()

        # Nitro: root CA -> intermediate CA -> per-document leaf, all EC P-384 like AWS.
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root_cert = issue_certificate(
            subject="root.sim.nitro-enclaves", public_key=self.root_key.public_key(),
            issuer_cert=None, issuer_key=self.root_key,
            not_before=now - _CA_BACKDATE, not_after=now + _ROOT_LIFETIME,
            ca=True, path_length=None,
        )
        self.intermediate_key = ec.generate_private_key(ec.SECP384R1())
        self.intermediate_cert = issue_certificate(
            subject="intermediate.sim.nitro-enclaves",
            public_key=self.intermediate_key.public_key(),
            issuer_cert=self.root_cert, issuer_key=self.root_key,
            not_before=now - _CA_BACKDATE, not_after=now + _INTERMEDIATE_LIFETIME,
            ca=True, path_length=0,
        )
        # Signs COSE documents in bad-signature mode: a key no certificate vouches for.
        self.rogue_nitro_key = ec.generate_private_key(ec.SECP384R1())

        # JWT attestation service: RS256 and ES256 keys published in the JWKS.
        self.jwt_rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwt_ec_key = ec.generate_private_key(ec.SECP256R1())
        self.rogue_jwt_rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rogue_jwt_ec_key = ec.generate_private_key(ec.SECP256R1())
        self.jwks = {"keys": [
            rsa_public_jwk(self.jwt_rsa_key.public_key()),
            ec_public_jwk(self.jwt_ec_key.public_key()),
        ]}

    @property
    def alfred_public_key_b64(self) -> str:
        raw = self.alfred_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode("ascii")

    @property
    def root_pem(self) -> str:
        return self.root_cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def jwk_kid(self, alg: str) -> str:
        wanted = {"RS256": "RSA", "ES256": "EC"}[alg]
        return next(k["kid"] for k in self.jwks["keys"] if k["kty"] == wanted)

    def public_document(self, *, base_url: str) -> dict:
        """Everything a verifier needs to trust this simulator: the content of trust.json."""
        return {
            "alfred_public_keys": [self.alfred_public_key_b64],
            "nitro_root_certificate": self.root_pem,
            "jwks": self.jwks,
            "jwks_url": base_url + "/.well-known/jwks.json",
            "jwt_issuer": base_url,
            "jwt_audience": JWT_AUDIENCE,
            "jwt_login_audience": JWT_LOGIN_AUDIENCE,
        }
