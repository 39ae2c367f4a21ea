# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""alfred verifier: evidence signed here with real Ed25519 keys, and its negative matrix."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import (
    AttestationError, VerifyOptions, result_row, verify)

from attest_testlib import AlfredWorld, Offset

NOW = int(dt.datetime.now(dt.timezone.utc).timestamp())


@pytest.fixture(scope="module")
def world():
    return AlfredWorld()


def _options(world, at=NOW + 2, **kwargs):
    kwargs.setdefault("public_keys", [world.public_raw])
    return VerifyOptions(now=dt.datetime.fromtimestamp(at, dt.timezone.utc), **kwargs)


def _refusal(document, options) -> AttestationError:
    with pytest.raises(AttestationError) as info:
        verify(document, "alfred", options)
    return info.value


def test_valid_evidence_with_echo_check(world):
    challenge = world.challenge(NOW)
    doc = world.to_bytes(world.evidence(challenge, measurement="CD" * 48))
    evidence = verify(doc, None, _options(world, request=challenge, nonce=challenge["challenge_nonce"]))
    assert evidence.format == "alfred"
    assert evidence.measurement == "cd" * 48
    assert evidence.nonce == challenge["challenge_nonce"]


def test_base64_public_key_and_several_keys(world):
    challenge = world.challenge(NOW)
    doc = world.to_bytes(world.evidence(challenge))
    other = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    assert verify(doc, "alfred", _options(world, public_keys=[other, world.public_b64])).format == "alfred"


def test_wrong_key_refused(world):
    challenge = world.challenge(NOW)
    doc = world.to_bytes(world.evidence(challenge, key=ed25519.Ed25519PrivateKey.generate()))
    assert _refusal(doc, _options(world)).check == "signature"


def test_no_key_is_trust(world):
    doc = world.to_bytes(world.evidence(world.challenge(NOW)))
    assert _refusal(doc, _options(world, public_keys=[])).check == "trust"


# Time fields are given as offsets from the test's own clock (ids must not depend on the time of
# collection: two xdist workers collect at different seconds).
@pytest.mark.parametrize("field, value", [
    ("measurement", "ef" * 48), ("runtime", "other"), ("challenge_nonce", "00" * 32), ("issued_at", Offset(-1)),
    ("expires_at", Offset(301)), ("operation_purpose", "decrypt"), ("request_id", "x"),
    ("evidence_issued_at", Offset(2)),
], ids=str)
def test_tampered_field_refused(world, field, value):
    doc = world.evidence(world.challenge(NOW))
    doc[field] = NOW + value.seconds if isinstance(value, Offset) else value
    assert _refusal(world.to_bytes(doc), _options(world)).check == "signature"


def test_tampered_signature_refused(world):
    doc = world.evidence(world.challenge(NOW))
    sig = bytearray(base64.b64decode(doc["signature"]))
    sig[0] ^= 1
    doc["signature"] = base64.b64encode(bytes(sig)).decode()
    assert _refusal(world.to_bytes(doc), _options(world)).check == "signature"


def test_expired_window_refused(world):
    challenge = world.challenge(NOW - 1000, window=300)
    doc = world.to_bytes(world.evidence(challenge))
    exc = _refusal(doc, _options(world))
    assert exc.check == "expired"
    assert exc.measurement == "cd" * 48


def test_future_challenge_refused(world):
    challenge = world.challenge(NOW + 1000)
    assert _refusal(world.to_bytes(world.evidence(challenge)), _options(world)).check == "not_yet_valid"


def test_stale_evidence_refused(world):
    challenge = world.challenge(NOW)
    outside = world.to_bytes(world.evidence(challenge, evidence_issued_at=NOW - 7200))
    assert _refusal(outside, _options(world)).check == "stale"
    inside = world.to_bytes(world.evidence(challenge, evidence_issued_at=NOW))
    assert _refusal(inside, _options(world, at=NOW + 200, max_age=60)).check == "stale"
    assert verify(inside, "alfred", _options(world, at=NOW + 200, max_age=600)).format == "alfred"


def test_nonce_mismatch_refused(world):
    challenge = world.challenge(NOW)
    doc = world.to_bytes(world.evidence(challenge))
    assert _refusal(doc, _options(world, nonce="ab" * 32)).check == "nonce_mismatch"
    other = dict(challenge, challenge_nonce="ab" * 32)
    assert _refusal(doc, _options(world, request=other)).check == "nonce_mismatch"


@pytest.mark.parametrize("field", ["issued_at", "expires_at", "operation_purpose", "request_id"])
def test_echo_mismatch_refused(world, field):
    challenge = world.challenge(NOW)
    doc = world.to_bytes(world.evidence(challenge))
    sent = dict(challenge)
    sent[field] = sent[field] + 1 if isinstance(sent[field], int) else sent[field] + "-x"
    exc = _refusal(doc, _options(world, request=sent))
    assert exc.check == "replay"


def test_debug_measurement_refused(world):
    doc = world.to_bytes(world.evidence(world.challenge(NOW), measurement="0" * 96))
    assert _refusal(doc, _options(world)).check == "debug_enclave"


def test_allow_list(world):
    doc = world.to_bytes(world.evidence(world.challenge(NOW)))
    assert verify(doc, "alfred", _options(world), ["cd" * 48]).format == "alfred"
    with pytest.raises(AttestationError) as info:
        verify(doc, "alfred", _options(world), ["ef" * 48])
    assert info.value.check == "measurement_not_allowed"


@pytest.mark.parametrize("document", [
    b"{", b"[]", b"{}", b'"text"', b"\xff\xfe", json.dumps({"runtime": "x"}).encode(),
])
def test_malformed_json_refused(world, document):
    row = result_row("t", document, "alfred", _options(world))
    assert row["verified"] is False and row["check"] == "malformed"


@pytest.mark.parametrize("field, value", [
    ("issued_at", "1"), ("expires_at", True), ("evidence_issued_at", 1.5), ("runtime", 5), ("measurement", "a|b"),
])
def test_malformed_field_types(world, field, value):
    doc = world.evidence(world.challenge(NOW))
    doc[field] = value
    assert _refusal(world.to_bytes(doc), _options(world)).check == "malformed"


def test_non_base64_signature(world):
    doc = world.evidence(world.challenge(NOW))
    doc["signature"] = "***"
    assert _refusal(world.to_bytes(doc), _options(world)).check == "malformed"


def test_inverted_window_is_malformed(world):
    challenge = dict(world.challenge(NOW), expires_at=NOW - 1)
    assert _refusal(world.to_bytes(world.evidence(challenge)), _options(world)).check == "malformed"
