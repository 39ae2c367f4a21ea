"""Attestation tokens in the shape of Azure Attestation / Intel Trust Authority: compact JWS.

RS256 (RSASSA-PKCS1-v1_5 SHA-256) and ES256 (ECDSA P-256, raw r||s per RFC 7518 3.4), base64url
without padding (RFC 7515). Claims carry the measurement under a neutral name and under the
Azure SEV-SNP name, so verifiers can test their `measurement_claim` option.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from sim_trust import JWT_AUDIENCE, TrustMaterial, b64url

SUPPORTED_ALGS = ("RS256", "ES256")
TOKEN_LIFETIME_SECONDS = 300


def _compact(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode("utf-8")


class JwtIssuer:
    """Signs attestation tokens with the process's JWKS keys (or untrusted twins)."""

    def __init__(self, trust: TrustMaterial, *, issuer: str) -> None:
        self._trust = trust
        self.issuer = issuer
        # Without alg=, tokens alternate so both key types get exercised by plain callers.
        self._alternate = itertools.cycle(SUPPORTED_ALGS)
        self._alternate_lock = threading.Lock()

    def pick_alg(self, requested: str | None) -> str:
        if requested is None:
            with self._alternate_lock:
                return next(self._alternate)
        if requested not in SUPPORTED_ALGS:
            raise ValueError(f"unsupported alg {requested!r}; use one of {', '.join(SUPPORTED_ALGS)}")
        return requested

    def build(self, *, enclave_name: str, measurement: str, issued_at: int, nonce: str | None,
              alg: str, rogue_signature: bool = False, audience: str = JWT_AUDIENCE,
              lifetime: int = TOKEN_LIFETIME_SECONDS) -> str:
        header = {"alg": alg, "typ": "JWT", "kid": self._trust.jwk_kid(alg)}
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "sub": enclave_name,
            "jti": uuid.uuid4().hex,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + lifetime,
            "measurement": measurement,
            "x-ms-attestation-type": "sevsnpvm",
            "x-ms-sevsnpvm-launchmeasurement": measurement,
        }
        if nonce is not None:
            claims["eat_nonce"] = nonce
        signing_input = (b64url(_compact(header)) + "." + b64url(_compact(claims))).encode("ascii")
        return signing_input.decode("ascii") + "." + b64url(self._sign(alg, signing_input, rogue_signature))

    def _sign(self, alg: str, data: bytes, rogue: bool) -> bytes:
        if alg == "RS256":
            key = self._trust.rogue_jwt_rsa_key if rogue else self._trust.jwt_rsa_key
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        key = self._trust.rogue_jwt_ec_key if rogue else self._trust.jwt_ec_key
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
