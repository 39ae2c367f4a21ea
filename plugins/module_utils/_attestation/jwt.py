# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Verifier for attestation tokens: compact JWS (RFC 7515) checked against a JWKS (RFC 7517).

Private module_utils: the API may change without notice between releases.

Covers the tokens of Azure Attestation, Intel Trust Authority and GCP Confidential Space.
Only asymmetric algorithms exist here: RS256/384/512, PS256/384/512, ES256/384/512 (raw
``r||s`` signatures, RFC 7518 section 3.4) and EdDSA (Ed25519, Ed448). ``none`` and every
HMAC algorithm are refused before any key is looked at, so a public key can never be used
as an HMAC secret. The header's ``kid`` selects the key; without one, every key whose
``kty``/``crv`` fits the algorithm is tried. The key type must fit the algorithm.

Claims: ``exp`` is required; ``nbf`` and ``iat`` are honoured with ``clock_skew``; ``iss``,
``aud`` (string or list) and the nonce (``eat_nonce`` or ``nonce``, string or list) are
checked when configured. The measurement is read from ``options.measurement_claim``, a
dotted path into the claims (``submods.container.image_digest``), or a claim named exactly
so (``x-ms-sevsnpvm-launchmeasurement``).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.base import AttestationFormat
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.model import AttestationError, Evidence, VerifyOptions, loads_json
from ansible_collections.alfred.tee_kms.plugins.module_utils._common import deps

# Libraries this verifier needs, checked by common.verify() before it is used (the format's requirements).
REQUIREMENTS = (deps.CRYPTOGRAPHY,)

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_HASH_BITS = {"256": "SHA256", "384": "SHA384", "512": "SHA512"}
_EC_CURVES = {"ES256": ("P-256", "secp256r1", 32), "ES384": ("P-384", "secp384r1", 48), "ES512": ("P-521", "secp521r1", 66)}
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]*$")
_MIN_RSA_BITS = 2048
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def _fail(check: str, detail: str, measurement: str | None = None):
    exc = AttestationError(check, detail)
    if measurement is not None:
        exc.measurement = measurement
    return exc


def b64url_decode(segment: str) -> bytes:
    if not _SEGMENT.match(segment):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


# --------------------------------------------------------------------------- parsing

def parse(document: bytes):
    """Split a compact JWS; return (header, claims, signing_input, signature)."""
    try:
        text = document.decode("ascii").strip()
    except UnicodeDecodeError:
        raise _fail("malformed", "token is not ASCII") from None
    parts = text.split(".")
    if len(parts) != 3:
        raise _fail("malformed", f"token has {len(parts)} segments, a compact JWS has 3")
    try:
        header_raw, payload_raw, signature = (b64url_decode(p) for p in parts)
    except (ValueError, binascii.Error):
        raise _fail("malformed", "token segment is not base64url") from None
    header = _json_object(header_raw, "header")
    claims = _json_object(payload_raw, "payload")
    return header, claims, (parts[0] + "." + parts[1]).encode("ascii"), signature


def _json_object(raw: bytes, what: str) -> dict:
    value = loads_json(raw, f"token {what}")
    if not isinstance(value, dict):
        raise _fail("malformed", f"token {what} is not a JSON object")
    return value


# --------------------------------------------------------------------------- keys

def _b64_int(value) -> int:
    if not isinstance(value, str):
        raise ValueError("JWK member is not a string")
    return int.from_bytes(b64url_decode(value), "big")


def _public_key(jwk: dict):
    """Turn one public JWK into a cryptography key; None for symmetric or unknown keys."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    kty = jwk.get("kty")
    if kty == "RSA":
        numbers = rsa.RSAPublicNumbers(_b64_int(jwk.get("e")), _b64_int(jwk.get("n")))
        key = numbers.public_key()
        return key if key.key_size >= _MIN_RSA_BITS else None
    if kty == "EC":
        curve = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}.get(jwk.get("crv"))
        if curve is None:
            return None
        return ec.EllipticCurvePublicNumbers(_b64_int(jwk.get("x")), _b64_int(jwk.get("y")), curve()).public_key()
    if kty == "OKP":
        loader = {"Ed25519": ed25519.Ed25519PublicKey, "Ed448": ed448.Ed448PublicKey}.get(jwk.get("crv"))
        if loader is None or not isinstance(jwk.get("x"), str):
            return None
        return loader.from_public_bytes(b64url_decode(jwk["x"]))
    return None  # "oct" (HMAC secrets) and anything else are never verification keys here


def _fits(alg: str, jwk: dict) -> bool:
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if alg[:2] in ("RS", "PS"):
        ok = kty == "RSA"
    elif alg in _EC_CURVES:
        ok = kty == "EC" and crv == _EC_CURVES[alg][0]
    else:  # EdDSA
        ok = kty == "OKP" and crv in ("Ed25519", "Ed448")
    if not ok:
        return False
    if jwk.get("alg") not in (None, alg):
        return False
    if jwk.get("use") not in (None, "sig"):
        return False
    ops = jwk.get("key_ops")
    return ops is None or (isinstance(ops, list) and "verify" in ops)


def keys_from_jwks(jwks) -> list:
    if isinstance(jwks, (str, bytes)):
        jwks = loads_json(jwks, "the configured JWKS", check="trust")
    if isinstance(jwks, dict) and "keys" not in jwks and "kty" in jwks:
        jwks = {"keys": [jwks]}
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise _fail("trust", "the configured JWKS has no 'keys' list")
    return [k for k in jwks["keys"] if isinstance(k, dict)]


def _candidates(alg: str, kid, jwks) -> list:
    keys = keys_from_jwks(jwks)
    if kid is not None:
        keys = [k for k in keys if k.get("kid") == kid]
        if not keys:
            raise _fail("signature", f"no key with kid '{str(kid)[:64]}' in the trusted JWKS")
    fitting = [k for k in keys if _fits(alg, k)]
    if not fitting:
        raise _fail("signature", f"no trusted JWKS key fits algorithm {alg}" + (f" and kid '{str(kid)[:64]}'" if kid else ""))
    loaded = []
    for jwk in fitting:
        try:
            key = _public_key(jwk)
        except (ValueError, TypeError, binascii.Error):
            key = None
        if key is not None:
            loaded.append(key)
    if not loaded:
        raise _fail("trust", f"the trusted JWKS keys for {alg} are invalid or too weak")
    return loaded


def _verify_with(alg: str, key, signing_input: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    try:
        if alg == "EdDSA":
            key.verify(signature, signing_input)
            return True
        digest = getattr(hashes, _HASH_BITS[alg[2:]])()
        if alg.startswith("RS"):
            key.verify(signature, signing_input, padding.PKCS1v15(), digest)
        elif alg.startswith("PS"):
            key.verify(signature, signing_input, padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size), digest)
        else:
            size = _EC_CURVES[alg][2]
            if len(signature) != 2 * size:
                return False
            der = encode_dss_signature(int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big"))
            key.verify(der, signing_input, ec.ECDSA(digest))
        return True
    except InvalidSignature:
        return False


# --------------------------------------------------------------------------- claims

def claim_at(claims: dict, path: str):
    """The claim named exactly ``path``, else the dotted path into nested objects; None if absent."""
    if path in claims:
        return claims[path]
    node = claims
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _numeric(claims: dict, name: str, required: bool = False):
    value = claims.get(name)
    if value is None:
        if required:
            raise _fail("claims", f"token lacks the required '{name}' claim")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail("claims", f"token claim '{name}' is not a NumericDate")
    return value


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _measurement(claims: dict, path: str) -> str:
    value = claim_at(claims, path)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise _fail("claims", f"token has no usable measurement claim '{path}'")
    value = str(value).strip()
    return value.lower() if _HEX.match(value) else value


def verify(document: bytes, options: VerifyOptions) -> Evidence:
    header, claims, signing_input, signature = parse(document)
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise _fail("malformed", "token header has no 'alg'")
    if alg.lower() == "none" or alg.upper().startswith("HS"):
        raise _fail("signature", f"algorithm '{alg[:16]}' is never accepted for attestation tokens")
    allowed = list(options.algorithms) if options.algorithms else list(ALGORITHMS)
    if alg not in ALGORITHMS or alg not in allowed:
        raise _fail("signature", f"algorithm '{alg[:16]}' is not in the allowed list ({', '.join(allowed)})")
    if "crit" in header:
        raise _fail("malformed", "token header lists critical extensions this verifier does not understand")
    measurement = None
    try:
        measurement = _measurement(claims, options.measurement_claim or "measurement")
    except AttestationError:
        pass  # reported as a claims failure after the signature is known to be good

    if options.jwks is None:
        raise _fail("trust", "no JWKS configured for jwt evidence (jwks or jwks_url)", measurement)
    try:
        keys = _candidates(alg, header.get("kid"), options.jwks)
    except AttestationError as exc:
        if measurement is not None:
            exc.measurement = measurement
        raise
    if not any(_verify_with(alg, key, signing_input, signature) for key in keys):
        raise _fail("signature", f"{alg} signature does not verify under any trusted JWKS key", measurement)

    # Signed claims only from here on.
    now = options.now.timestamp()
    skew = options.clock_skew
    exp = _numeric(claims, "exp", required=True)
    nbf = _numeric(claims, "nbf")
    iat = _numeric(claims, "iat")
    if now > exp + skew:
        raise _fail("expired", f"token expired at {_iso(exp)}", measurement)
    if nbf is not None and now + skew < nbf:
        raise _fail("not_yet_valid", f"token is not valid before {_iso(nbf)}", measurement)
    if iat is not None and now + skew < iat:
        raise _fail("not_yet_valid", f"token issued in the future ({_iso(iat)})", measurement)
    if options.issuer is not None and claims.get("iss") != options.issuer:
        raise _fail("claims", f"token issuer '{str(claims.get('iss'))[:128]}' is not the trusted issuer", measurement)
    if options.audience is not None and options.audience not in _as_list(claims.get("aud")):
        raise _fail("claims", "token audience does not include the expected audience", measurement)
    if options.login_audience is not None and options.login_audience in _as_list(claims.get("aud")):
        # An enclave that hands out login tokens to whoever asks gives away its KMS access.
        raise _fail("claims", "token audience includes the KMS login audience: an enclave must never hand a login token to a caller",
                    measurement)
    if options.nonce is not None:
        got = claims.get("eat_nonce", claims.get("nonce"))
        if got is None:
            raise _fail("nonce_mismatch", "token carries no nonce (eat_nonce or nonce) but one was expected", measurement)
        if options.nonce not in _as_list(got):
            raise _fail("nonce_mismatch", "token nonce differs from the nonce that was sent", measurement)
    if options.max_age is not None:
        if iat is None:
            raise _fail("claims", "token lacks 'iat', which max_age needs", measurement)
        if now - iat > options.max_age:
            raise _fail("stale", f"token is {int(now - iat)}s old, max_age is {options.max_age}s", measurement)
    measurement = _measurement(claims, options.measurement_claim or "measurement")

    issued = iat if iat is not None else nbf
    token_nonce = claims.get("eat_nonce", claims.get("nonce"))
    return Evidence(
        format="jwt",
        measurement=measurement,
        issued_at=datetime.datetime.fromtimestamp(issued, datetime.timezone.utc) if issued is not None else None,
        # The token's own nonce (what a decrypt gate binds and remembers) when it is one string;
        # a list of nonces is no single challenge answer, and none is reported.
        nonce=token_nonce if isinstance(token_nonce, str) else None,
        details={"alg": alg, "kid": header.get("kid"), "iss": claims.get("iss")},
    )


def _iso(value) -> str:
    try:
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(value)


class JwtFormat(AttestationFormat):
    """Attestation tokens (Azure Attestation, Intel Trust Authority, GCP Confidential Space) verified against a JWKS."""

    name = "jwt"
    description = "a JWS (jwt)"
    requirements = REQUIREMENTS
    anchor = "jwks"
    anchor_options = {"jwks": dict(type="raw"), "jwks_url": dict(type="str")}
    check_options = {"issuer": dict(type="str"), "audience": dict(type="str"), "login_audience": dict(type="str"),
                     "algorithms": dict(type="list", elements="str", choices=list(ALGORITHMS))}
    measurement_options = {"measurement_claim": dict(type="str")}
    flat_options = ("jwks", "jwks_url", "issuer", "audience", "algorithms", "measurement_claim")

    @classmethod
    def sniff(cls, document: bytes) -> bool:
        return document.count(b".") == 2 and document.startswith(b"eyJ")

    @classmethod
    def verify(cls, document: bytes, options: VerifyOptions) -> Evidence:
        return verify(document, options)
