"""The alfred enclave-runtime challenge/response contract (DESIGN.md section 6).

The signature covers `runtime|measurement|challenge_nonce|issued_at|expires_at|
operation_purpose|request_id|evidence_issued_at`; since `|` separates the fields, requests whose
strings contain it are refused rather than signed ambiguously.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric import ed25519

CHALLENGE_FIELDS = ("challenge_nonce", "issued_at", "expires_at", "operation_purpose", "request_id")
_MAX_STRING = 1024


class ChallengeError(ValueError):
    """A malformed challenge: the message is safe to return to the caller."""


def _check_text(name: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise ChallengeError(f"'{name}' must be a non-empty string")
    if len(value) > _MAX_STRING:
        raise ChallengeError(f"'{name}' is longer than {_MAX_STRING} characters")
    if "|" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ChallengeError(f"'{name}' must not contain '|' or control characters")
    return value


def _check_unix_seconds(name: str, value) -> int:
    # bool is an int subclass in Python; JSON true must not pass as a timestamp.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ChallengeError(f"'{name}' must be a non-negative integer (unix seconds)")
    return value


def parse_challenge(body, *, now: int) -> dict:
    """Validate a challenge request body and return its five fields."""
    if not isinstance(body, dict):
        raise ChallengeError("challenge body must be a JSON object")
    missing = [f for f in CHALLENGE_FIELDS if f not in body]
    if missing:
        raise ChallengeError("challenge is missing " + ", ".join(f"'{f}'" for f in missing))
    challenge = {
        "challenge_nonce": _check_text("challenge_nonce", body["challenge_nonce"]),
        "issued_at": _check_unix_seconds("issued_at", body["issued_at"]),
        "expires_at": _check_unix_seconds("expires_at", body["expires_at"]),
        "operation_purpose": _check_text("operation_purpose", body["operation_purpose"]),
        "request_id": _check_text("request_id", body["request_id"]),
    }
    if challenge["expires_at"] <= challenge["issued_at"]:
        raise ChallengeError("'expires_at' must be later than 'issued_at'")
    # A runtime refuses to sign for a challenge its verifier already considers dead.
    if challenge["expires_at"] < now:
        raise ChallengeError(f"challenge expired at {challenge['expires_at']} (now {now})")
    return challenge


def signing_string(evidence: dict) -> bytes:
    return "|".join(str(evidence[k]) for k in (
        "runtime", "measurement", "challenge_nonce", "issued_at", "expires_at",
        "operation_purpose", "request_id", "evidence_issued_at",
    )).encode("utf-8")


def build_evidence(challenge: dict, *, runtime: str, measurement: str, evidence_issued_at: int,
                   key: ed25519.Ed25519PrivateKey) -> dict:
    """Echo the challenge, add runtime facts and sign them with the runtime key."""
    evidence = dict(challenge)
    evidence.update({
        "runtime": runtime,
        "measurement": measurement,
        "evidence_issued_at": evidence_issued_at,
    })
    evidence["signature"] = base64.b64encode(key.sign(signing_string(evidence))).decode("ascii")
    return evidence
