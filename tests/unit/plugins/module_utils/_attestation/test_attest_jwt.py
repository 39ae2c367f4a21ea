# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""JWT verifier: every algorithm, then the negative matrix, with tokens signed here."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import jwt
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import (
    AttestationError, VerifyOptions, result_row, verify)

from attest_testlib import JwtWorld, Offset, b64url

NOW = int(dt.datetime.now(dt.timezone.utc).timestamp())
ALL = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


@pytest.fixture(scope="module")
def world():
    return JwtWorld()


def _options(world, **kwargs):
    kwargs.setdefault("now", dt.datetime.fromtimestamp(NOW, dt.timezone.utc))
    kwargs.setdefault("jwks", world.jwks)
    kwargs.setdefault("issuer", "https://attest.example")
    kwargs.setdefault("audience", "alfred-tee-kms")
    return VerifyOptions(**kwargs)


def _refusal(token, options) -> AttestationError:
    with pytest.raises(AttestationError) as info:
        verify(token, "jwt", options)
    return info.value


@pytest.mark.parametrize("alg", ALL)
def test_every_algorithm_verifies(world, alg):
    evidence = verify(world.token(alg, now=NOW), "jwt", _options(world, nonce="n0nce"))
    assert evidence.format == "jwt"
    assert evidence.measurement == "ab" * 48  # hex normalised to lowercase
    assert evidence.details["alg"] == alg


@pytest.mark.parametrize("alg", ALL)
def test_every_algorithm_without_kid_tries_fitting_keys(world, alg):
    assert verify(world.token(alg, now=NOW, kid=False), "jwt", _options(world)).format == "jwt"


def test_detected_and_base64_forms(world):
    token = world.token("ES256", now=NOW)
    assert verify(token, None, _options(world)).format == "jwt"
    assert verify(base64.b64encode(token.encode()).decode(), None, _options(world)).format == "jwt"
    assert verify((token + "\n").encode(), None, _options(world)).format == "jwt"


# --------------------------------------------------------------------------- algorithm attacks

@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_refused(world, alg):
    head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps(world.claims(NOW)).encode())
    for token in (f"{head}.{body}.", f"{head}.{body}.{b64url(b'x')}"):
        exc = _refusal(token, _options(world))
        assert exc.check == "signature" and "never accepted" in exc.detail


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_with_public_key_as_secret_refused(world, alg):
    # The classic confusion attack: the RSA public key (as PEM and as JWK n) used as an HMAC secret.
    from cryptography.hazmat.primitives import serialization

    secret = world.rsa.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head = b64url(json.dumps({"alg": alg, "kid": "rsa1"}).encode())
    body = b64url(json.dumps(world.claims(NOW)).encode())
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    for key in (secret, world.jwks["keys"][0]["n"].encode()):
        mac = hmac.new(key, f"{head}.{body}".encode(), digest).digest()
        exc = _refusal(f"{head}.{body}.{b64url(mac)}", _options(world))
        assert exc.check == "signature"
    # Even a JWKS that holds an "oct" key never turns into an HMAC verifier.
    jwks = {"keys": [{"kty": "oct", "k": b64url(secret), "kid": "rsa1"}]}
    mac = hmac.new(secret, f"{head}.{body}".encode(), digest).digest()
    assert _refusal(f"{head}.{body}.{b64url(mac)}", _options(world, jwks=jwks)).check == "signature"


def test_algorithm_allow_list(world):
    token = world.token("RS256", now=NOW)
    exc = _refusal(token, _options(world, algorithms=["ES256"]))
    assert exc.check == "signature" and "not in the allowed list" in exc.detail
    assert verify(token, "jwt", _options(world, algorithms=["RS256"])).format == "jwt"


def test_unknown_algorithm_refused(world):
    assert _refusal(world.token("ES256", now=NOW, header={"alg": "ES256K"}), _options(world)).check == "signature"


def test_key_type_must_fit_algorithm(world):
    # An RS256 header pointing at the EC key: refused without trying.
    token = world.token("RS256", now=NOW, header={"kid": "ec256"})
    exc = _refusal(token, _options(world))
    assert exc.check == "signature" and "fits algorithm" in exc.detail
    # ES384 signed by P-384 but the kid points at the P-256 key.
    assert _refusal(world.token("ES384", now=NOW, header={"kid": "ec256"}), _options(world)).check == "signature"


def test_jwk_alg_use_and_key_ops_restrict_a_key(world):
    token = world.token("RS256", now=NOW)
    for restriction in ({"alg": "PS256"}, {"use": "enc"}, {"key_ops": ["encrypt"]}):
        keys = [dict(k, **restriction) if k["kid"] == "rsa1" else k for k in world.jwks["keys"]]
        assert _refusal(token, _options(world, jwks={"keys": keys})).check == "signature"


def test_wrong_kid_refused(world):
    exc = _refusal(world.token("ES256", now=NOW, header={"kid": "nobody"}), _options(world))
    assert exc.check == "signature" and "no key with kid" in exc.detail


def test_signature_by_an_untrusted_key_refused(world):
    other = JwtWorld()
    for alg in ("RS256", "ES256", "EdDSA", "PS384"):
        token = other.token(alg, now=NOW)
        assert _refusal(token, _options(world)).check == "signature", alg


def test_flipped_signature_and_payload_refused(world):
    token = world.token("ES384", now=NOW)
    head, body, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[5] ^= 1
    assert _refusal(f"{head}.{body}.{b64url(bytes(raw))}", _options(world)).check == "signature"
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["measurement"] = "ef" * 48
    assert _refusal(f"{head}.{b64url(json.dumps(claims).encode())}.{sig}", _options(world)).check == "signature"


def test_ecdsa_der_signature_refused(world):
    # ES signatures are raw r||s; a DER-encoded one must not be accepted.
    from cryptography.hazmat.primitives import hashes

    token = world.token("ES256", now=NOW)
    head, body, _sig = token.split(".")
    der = world.ec[256].sign(f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    assert _refusal(f"{head}.{body}.{b64url(der)}", _options(world)).check == "signature"


def test_no_jwks_is_trust(world):
    assert _refusal(world.token("ES256", now=NOW), _options(world, jwks=None)).check == "trust"
    assert _refusal(world.token("ES256", now=NOW), _options(world, jwks={"nokeys": 1})).check == "trust"


def test_weak_rsa_key_not_used():
    from cryptography.hazmat.primitives.asymmetric import rsa

    weak = JwtWorld()
    weak.rsa = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    n = weak.rsa.public_key().public_numbers()
    weak.jwks = {"keys": [{"kty": "RSA", "kid": "rsa1", "n": b64url(n.n.to_bytes(128, "big")), "e": b64url(n.e.to_bytes(3, "big"))}]}
    exc = _refusal(weak.token("RS256", now=NOW), _options(weak))
    assert exc.check == "trust"


def test_single_jwk_and_json_text_accepted(world):
    token = world.token("EdDSA", now=NOW)
    ed = next(k for k in world.jwks["keys"] if k["kid"] == "ed1")
    assert verify(token, "jwt", _options(world, jwks=ed)).format == "jwt"
    assert verify(token, "jwt", _options(world, jwks=json.dumps(world.jwks))).format == "jwt"


# --------------------------------------------------------------------------- claims

@pytest.mark.parametrize("overrides, check", [
    ({"iss": "https://evil.example"}, "claims"),
    ({"iss": None}, "claims"),
    ({"aud": "someone-else"}, "claims"),
    ({"aud": ["a", "b"]}, "claims"),
    ({"aud": None}, "claims"),
    ({"exp": Offset(-120)}, "expired"),
    ({"exp": None}, "claims"),
    ({"exp": "tomorrow"}, "claims"),
    ({"exp": True}, "claims"),
    ({"nbf": Offset(600)}, "not_yet_valid"),
    ({"iat": Offset(600)}, "not_yet_valid"),
    ({"eat_nonce": "other"}, "nonce_mismatch"),
    ({"eat_nonce": None}, "nonce_mismatch"),
    ({"eat_nonce": ["x", "y"]}, "nonce_mismatch"),
    ({"measurement": None}, "claims"),
    ({"measurement": ""}, "claims"),
    ({"measurement": {"nested": 1}}, "claims"),
])
def test_claims_matrix(world, overrides, check):
    overrides = {k: NOW + v.seconds if isinstance(v, Offset) else v for k, v in overrides.items()}
    token = world.token("ES256", claims=world.claims(NOW, **overrides), now=NOW)
    exc = _refusal(token, _options(world, nonce="n0nce"))
    assert exc.check == check, exc


def test_audience_list_and_nonce_forms(world):
    claims = world.claims(NOW, aud=["other", "alfred-tee-kms"], eat_nonce=None, nonce=["a", "n0nce"])
    assert verify(world.token("ES256", claims=claims, now=NOW), "jwt", _options(world, nonce="n0nce")).format == "jwt"


def test_clock_skew_tolerated(world):
    token = world.token("ES256", claims=world.claims(NOW, exp=NOW - 30), now=NOW)
    assert verify(token, "jwt", _options(world)).format == "jwt"
    assert _refusal(token, _options(world, clock_skew=0)).check == "expired"


def test_max_age_on_iat(world):
    old = world.token("ES256", claims=world.claims(NOW, iat=NOW - 1000, nbf=NOW - 1000, exp=NOW + 100), now=NOW)
    assert _refusal(old, _options(world, max_age=300)).check == "stale"
    assert verify(old, "jwt", _options(world, max_age=3000)).format == "jwt"
    no_iat = world.token("ES256", claims=world.claims(NOW, iat=None), now=NOW)
    assert _refusal(no_iat, _options(world, max_age=300)).check == "claims"


def test_issuer_and_audience_not_checked_when_unset(world):
    token = world.token("ES256", claims=world.claims(NOW, iss="anyone", aud="anything"), now=NOW)
    assert verify(token, "jwt", _options(world, issuer=None, audience=None)).format == "jwt"


def test_measurement_claim_paths(world):
    claims = world.claims(NOW, measurement=None, submods={"container": {"image_digest": "sha256:ABCDEF"}})
    claims["x-ms-sevsnpvm-launchmeasurement"] = "CD" * 48
    claims["dotted.name"] = "opaque-id"
    token = world.token("RS256", claims=claims, now=NOW)
    assert verify(token, "jwt", _options(world, measurement_claim="submods.container.image_digest")).measurement == "sha256:ABCDEF"
    assert verify(token, "jwt", _options(world, measurement_claim="x-ms-sevsnpvm-launchmeasurement")).measurement == "cd" * 48
    assert verify(token, "jwt", _options(world, measurement_claim="dotted.name")).measurement == "opaque-id"
    assert _refusal(token, _options(world, measurement_claim="submods.container.missing")).check == "claims"


def test_refusal_after_signature_reports_measurement(world):
    token = world.token("ES256", claims=world.claims(NOW, exp=NOW - 1000), now=NOW)
    row = result_row("t", token, None, _options(world))
    assert row["check"] == "expired" and row["measurement"] == "ab" * 48 and row["format"] == "jwt"


# --------------------------------------------------------------------------- malformed

@pytest.mark.parametrize("token", [
    "a.b", "a.b.c.d", "", "....", "eyJ!.e30.", "e30.e30.", "W10.e30.", "eyJhbGciOiJFUzI1NiJ9.W10.",
    "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.", "eyJ0eXAiOiJKV1QifQ.e30.",
])
def test_malformed_tokens(world, token):
    row = result_row("t", token, "jwt", _options(world))
    assert row["verified"] is False
    assert row["check"] in ("malformed", "signature")
    assert "Traceback" not in row["reason"]


def test_crit_header_refused(world):
    assert _refusal(world.token("ES256", now=NOW, header={"crit": ["b64"], "b64": False}), _options(world)).check == "malformed"


def test_non_ascii_token(world):
    assert _refusal("é.é.é".encode("utf-8"), _options(world)).check == "malformed"


def test_claim_at():
    claims = {"a": {"b": {"c": 1}}, "a.b": 2}
    assert jwt.claim_at(claims, "a.b") == 2
    assert jwt.claim_at(claims, "a.b.c") == 1
    assert jwt.claim_at(claims, "a.x") is None


def test_a_token_carrying_the_kms_login_audience_is_refused_as_evidence(world):
    """A public endpoint that hands out a Vault login token gives away KMS access: refused wherever it is verified."""
    claims = world.claims(NOW, aud=["alfred-tee-kms", "tee-kms-login"])
    token = world.token("ES256", claims=claims, now=NOW)
    assert verify(token, "jwt", _options(world)).format == "jwt"  # the trust names no login audience
    refused = _refusal(token, _options(world, login_audience="tee-kms-login"))
    assert refused.check == "claims" and "KMS login audience" in refused.detail
    plain = world.token("ES256", claims=world.claims(NOW), now=NOW)
    assert verify(plain, "jwt", _options(world, login_audience="tee-kms-login")).format == "jwt"
