# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Verifier for the ``alfred`` enclave runtime attestation contract.

Private module_utils: the API may change without notice between releases.

The enclave answers ``POST /v1/attestation/challenge`` by echoing the challenge and adding
``runtime``, ``measurement``, ``evidence_issued_at`` and a base64 Ed25519 ``signature`` over
``runtime|measurement|challenge_nonce|issued_at|expires_at|operation_purpose|request_id|evidence_issued_at``.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import uuid

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.base import AttestationFormat
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.model import AttestationError, Evidence, VerifyOptions, loads_json
from ansible_collections.alfred.tee_kms.plugins.module_utils._common import deps

# Libraries this verifier needs, checked by common.verify() before it is used (the format's requirements).
REQUIREMENTS = (deps.CRYPTOGRAPHY,)

SIGNED_FIELDS = ("runtime", "measurement", "challenge_nonce", "issued_at", "expires_at",
                 "operation_purpose", "request_id", "evidence_issued_at")
ECHOED_FIELDS = ("challenge_nonce", "issued_at", "expires_at", "operation_purpose", "request_id")
_INT_FIELDS = ("issued_at", "expires_at", "evidence_issued_at")


def signed_message(doc: dict) -> bytes:
    return "|".join(str(doc[name]) for name in SIGNED_FIELDS).encode("utf-8")


def _load_keys(public_keys):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys = []
    for raw in public_keys:
        if isinstance(raw, str):
            raw = base64.b64decode(raw)
        keys.append(Ed25519PublicKey.from_public_bytes(raw))
    return keys


def parse(document: bytes) -> dict:
    doc = loads_json(document, "alfred evidence")
    if not isinstance(doc, dict):
        raise AttestationError("malformed", "alfred evidence is not a JSON object")
    missing = [name for name in SIGNED_FIELDS + ("signature",) if name not in doc]
    if missing:
        raise AttestationError("malformed", f"alfred evidence lacks {', '.join(missing)}")
    for name in _INT_FIELDS:
        if not isinstance(doc[name], int) or isinstance(doc[name], bool):
            raise AttestationError("malformed", f"alfred evidence field {name} is not an integer")
    for name in SIGNED_FIELDS:
        if name not in _INT_FIELDS and (not isinstance(doc[name], str) or "|" in doc[name]):
            raise AttestationError("malformed", f"alfred evidence field {name} is not a string without '|'")
    return doc


def verify(document: bytes, options: VerifyOptions) -> Evidence:
    doc = parse(document)
    try:
        return _verify_parsed(doc, options)
    except AttestationError as exc:
        # The claimed measurement tells the operator which image a refused enclave runs.
        exc.measurement = _normalise(doc["measurement"])
        raise


def _normalise(measurement: str) -> str:
    return measurement.lower() if _is_hex(measurement) else measurement


def _verify_parsed(doc: dict, options: VerifyOptions) -> Evidence:
    if not options.public_keys:
        raise AttestationError("trust", "no Ed25519 public key configured for alfred evidence (public_keys)")
    try:
        signature = base64.b64decode(doc["signature"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise AttestationError("malformed", "alfred signature is not base64") from None
    from cryptography.exceptions import InvalidSignature

    message = signed_message(doc)
    for key in _load_keys(options.public_keys):
        try:
            key.verify(signature, message)
            break
        except InvalidSignature:
            continue
    else:
        raise AttestationError("signature", "Ed25519 signature does not verify under any trusted public key")

    # Only signed fields are trusted from here on.
    if options.request is not None:
        for name in ECHOED_FIELDS:
            if name in options.request and options.request[name] != doc[name]:
                check = "nonce_mismatch" if name == "challenge_nonce" else "replay"
                raise AttestationError(check, f"evidence {name} does not echo the challenge that was sent")
    if options.nonce is not None and doc["challenge_nonce"] != options.nonce:
        raise AttestationError("nonce_mismatch", "evidence challenge_nonce differs from the expected nonce")

    now = int(options.now.timestamp())
    skew = options.clock_skew
    if doc["expires_at"] <= doc["issued_at"]:
        raise AttestationError("malformed", "challenge expires_at is not after issued_at")
    if now > doc["expires_at"] + skew:
        raise AttestationError("expired", "challenge window has expired")
    if now + skew < doc["issued_at"]:
        raise AttestationError("not_yet_valid", "challenge issued_at is in the future")
    issued = doc["evidence_issued_at"]
    if not doc["issued_at"] - skew <= issued <= doc["expires_at"] + skew:
        raise AttestationError("stale", "evidence_issued_at lies outside the challenge window")
    if issued > now + skew:
        raise AttestationError("not_yet_valid", "evidence_issued_at is in the future")
    if options.max_age is not None and now - issued > options.max_age:
        raise AttestationError("stale", f"evidence is {now - issued}s old, max_age is {options.max_age}s")

    return Evidence(
        format="alfred",
        measurement=_normalise(doc["measurement"]),
        issued_at=datetime.datetime.fromtimestamp(issued, datetime.timezone.utc),
        nonce=doc["challenge_nonce"],
        details={"runtime": doc["runtime"], "operation_purpose": doc["operation_purpose"], "request_id": doc["request_id"]},
    )


def _is_hex(value: str) -> bool:
    try:
        int(value, 16)
    except ValueError:
        return False
    return len(value) in (64, 96)


class AlfredFormat(AttestationFormat):
    """The enclave runtime's own contract: a signed answer to a challenge, verified with Ed25519 keys."""

    name = "alfred"
    description = "alfred JSON"
    requirements = REQUIREMENTS
    anchor = "public_keys"
    anchor_options = {"public_keys": dict(type="list", elements="str", no_log=False)}
    flat_options = ("public_keys",)
    echoes_challenge = True
    purpose_claim = "operation_purpose"

    @classmethod
    def sniff(cls, document: bytes) -> bool:
        return document.lstrip()[:1] == b"{"

    @classmethod
    def verify(cls, document: bytes, options: VerifyOptions) -> Evidence:
        return verify(document, options)

    @classmethod
    def live_request(cls, nonce: str, issued_at: int, window: int, operation_purpose: str) -> dict:
        return {"challenge_nonce": nonce, "issued_at": issued_at, "expires_at": issued_at + int(window),
                "operation_purpose": operation_purpose, "request_id": str(uuid.uuid4())}

    @classmethod
    def bind(cls, attestation: dict, request: dict) -> dict:
        attestation["request"] = request
        return attestation
