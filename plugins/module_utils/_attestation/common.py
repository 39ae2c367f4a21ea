# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One interface over the attestation evidence formats (alfred, nitro, jwt).

Private module_utils: the API may change without notice between releases.

Each format lives in its own ``_attest_<format>.py`` file exposing
``verify(document: bytes, options: VerifyOptions) -> Evidence`` that raises
AttestationError naming the failed check. This file dispatches, detects formats and turns
outcomes into the result rows that modules and the evidence bundle record. Raw documents
never leave this layer: results carry only their SHA-256 digest.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import re
from dataclasses import dataclass, field

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import MissingLibraryError
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.printable import escape_controls

FORMATS = ("alfred", "nitro", "jwt")

# The names of the checks a refusal can name. Stable: they appear in results and evidence.
CHECKS = (
    "malformed",        # not parseable as the format (CBOR/JSON/JWS structure)
    "unknown_format",   # no verifier recognises the document
    "signature",        # signature does not verify under any trusted key
    "chain",            # certificate chain does not lead to the trusted root
    "expired",          # evidence or a certificate is past its validity
    "not_yet_valid",    # evidence or a certificate is not valid yet
    "stale",            # evidence older than max_age
    "nonce_mismatch",   # evidence not bound to the nonce/challenge we sent
    "replay",           # evidence seen before in this run
    "debug_enclave",    # all-zero measurement: debug mode enclave
    "measurement_not_allowed",
    "claims",           # issuer, audience or another required claim is wrong
    "trust",            # no usable trust anchor configured for the format
    "fetch",            # the enclave could not be reached or answered an error
)


# Deepest JSON nesting any evidence or JWKS may have. Real documents nest two or three levels;
# json.loads recurses once per level, so a hostile enclave's 100000 '[' would otherwise raise
# RecursionError (not ValueError) and escape the per-row handling.
MAX_NESTING = 32
# Most arrays and objects any of them may hold (a JWKS of ten keys has about twenty). Parsing a
# megabyte of small arrays builds hundreds of thousands of objects (about 0.5 s); counting them
# first refuses it in the time of the nesting check.
MAX_CONTAINERS = 4096
# One JSON string, escapes included. It also matches a string left open to the end of the input
# (the parser would read the rest as that string), so it never fails once it has started: each
# quote starts at most one match and the scan stays linear. A pattern that must find the closing
# quote backtracks at every later quote of an unterminated string: quadratic (issue 22: 31 s for
# 64 KiB, hours for 1 MiB).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_TO_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class AttestationError(Exception):
    """Evidence was refused; ``check`` is one of CHECKS."""

    def __init__(self, check: str, detail: str):
        self.check = check
        # Details quote what enclaves sent (certificate names, claims, key ids): never a raw control character.
        self.detail = escape_controls(detail, lines=False)
        super().__init__(f"{check}: {self.detail}")


def _skeleton(raw: bytes) -> bytes:
    """The brackets of the JSON text ``raw`` outside its strings, ``{}`` read as ``[]``."""
    return _JSON_STRING.sub(b"", raw).translate(_TO_BRACKETS, _NOT_BRACKETS)


def nesting_depth(raw: bytes, cap: int = MAX_NESTING) -> int:
    """How deep the JSON text ``raw`` nests arrays and objects, found without parsing it; ``cap + 1``
    for anything deeper than ``cap``."""
    return _depth(_skeleton(raw), cap)


def _depth(skeleton: bytes, cap: int) -> int:
    """Linear in the input and at most ``cap`` passes of C code, whatever it is: each pass removes the
    innermost ``[]`` pairs, so a balanced skeleton is empty after as many passes as it nests. What
    remains of an unbalanced one (not JSON: json.loads refuses it after recursing at most that far)
    counts as one level per open bracket.
    """
    if b"[" * (cap + 1) in skeleton:
        return cap + 1
    depth = 0
    while skeleton and depth < cap:
        reduced = skeleton.replace(b"[]", b"")
        if len(reduced) == len(skeleton):
            break
        skeleton, depth = reduced, depth + 1
    if b"[]" in skeleton:
        return cap + 1
    return min(depth + skeleton.count(b"["), cap + 1)


def loads_json(raw, what: str, check: str = "malformed"):
    """``json.loads`` with the nesting and the number of arrays and objects capped before parsing (both in
    linear time); AttestationError(``check``) otherwise."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    skeleton = _skeleton(raw)
    if _depth(skeleton, MAX_NESTING) > MAX_NESTING:
        raise AttestationError(check, f"{what} nests deeper than {MAX_NESTING} levels")
    if skeleton.count(b"[") > MAX_CONTAINERS:
        raise AttestationError(check, f"{what} holds more than {MAX_CONTAINERS} arrays and objects")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise AttestationError(check, f"{what} is not JSON ({exc.__class__.__name__})") from None


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


@dataclass
class VerifyOptions:
    """Trust anchors and freshness rules for one verification."""

    now: datetime.datetime = field(default_factory=utcnow)
    formats: list | None = None        # the formats the trust accepts; None: any (attestation_verify's format decides)
    nonce: str | None = None           # expected nonce (hex for nitro bytes; the string for alfred/jwt)
    max_age: int | None = None         # seconds since the evidence was issued
    request: dict | None = None        # alfred: the challenge request we sent (echo check)
    public_keys: list = field(default_factory=list)   # alfred: raw 32-byte Ed25519 public keys
    root_certificate_pem: bytes | None = None          # nitro: None means the pinned AWS root
    nitro_pcrs: list = field(default_factory=lambda: [0])
    jwks: dict | None = None
    issuer: str | None = None
    audience: str | None = None
    login_audience: str | None = None  # jwt: a KMS login audience, never acceptable in evidence (refused)
    algorithms: list | None = None
    measurement_claim: str = "measurement"
    clock_skew: int = 60               # seconds tolerated between clocks


@dataclass
class Evidence:
    """What a verified document proves. ``details`` holds only non-secret facts."""

    format: str
    measurement: str
    issued_at: datetime.datetime | None = None
    nonce: str | None = None
    details: dict = field(default_factory=dict)


def _verifier(fmt: str):
    # Explicit imports (not importlib by name): Ansible packs into a module's payload only the
    # module_utils it can see imported, and they import this file, hence the lazy form.
    if fmt == "alfred":
        from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import alfred as verifier
    elif fmt == "nitro":
        from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import nitro as verifier
    elif fmt == "jwt":
        from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import jwt as verifier
    else:
        raise AttestationError("unknown_format", f"format '{fmt}' is not one of {', '.join(FORMATS)}")
    return verifier


def decode_document(document) -> bytes:
    """Accept raw CBOR/JSON/JWT bytes or text, or base64 of any of them."""
    if isinstance(document, dict):
        return json.dumps(document, sort_keys=True).encode("utf-8")
    if isinstance(document, str):
        text = document.strip()
        if text.startswith("{") or text.count(".") == 2:
            return text.encode("utf-8")
        compact = "".join(text.split())
        try:
            return base64.b64decode(compact + "=" * (-len(compact) % 4), altchars=b"-_" if ("-" in compact or "_" in compact) else None, validate=True)
        except (binascii.Error, ValueError):
            return text.encode("utf-8")
    data = bytes(document)
    # Bytes read from a file may hold base64 text rather than the raw document.
    try:
        detect_format(data)
        return data
    except AttestationError:
        pass
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return data
    return decode_document(text) if text.strip() else data


def detect_format(document: bytes) -> str:
    """Guess the format from the bytes: JSON object -> alfred, JWS -> jwt, CBOR array -> nitro."""
    head = document.lstrip()[:1]
    if head == b"{":
        return "alfred"
    if head[:1] in (b"\x84", b"\xd2"):  # CBOR array of 4 (COSE_Sign1), or tag 18
        return "nitro"
    if document.count(b".") == 2 and document.startswith(b"eyJ"):
        return "jwt"
    raise AttestationError("unknown_format", "document is neither alfred JSON, a COSE_Sign1 (nitro) nor a JWS (jwt)")


def digest(document: bytes) -> str:
    return "sha256:" + hashlib.sha256(document).hexdigest()


def verify(document, fmt: str | None, options: VerifyOptions, allowed_measurements=None) -> Evidence:
    """Verify one document; raise AttestationError when it must be refused."""
    raw = decode_document(document)
    if not raw:
        raise AttestationError("malformed", "empty document")
    fmt = fmt or detect_format(raw)
    verifier = _verifier(fmt)
    if options.formats is not None and fmt not in options.formats:
        raise AttestationError("trust", f"the trust does not accept {fmt} evidence (it accepts {', '.join(options.formats) or 'none'})")
    for requirement in verifier.REQUIREMENTS:  # MissingLibraryError: reported as missing_required_lib
        requirement.check(f"the {fmt} attestation verifier")
    evidence = verifier.verify(raw, options)
    exc = None
    if set(evidence.measurement) == {"0"}:
        exc = AttestationError("debug_enclave", "all-zero measurement (debug-mode enclave)")
    elif allowed_measurements is not None and evidence.measurement not in set(allowed_measurements):
        exc = AttestationError("measurement_not_allowed", f"measurement {evidence.measurement[:16]}... is not in the allow-list")
    if exc is not None:
        exc.measurement = evidence.measurement
        raise exc
    return evidence


def result_row(source: str, document, fmt: str | None, options: VerifyOptions, allowed_measurements=None) -> dict:
    """Verify and return the row modules and evidence record; never raises for bad evidence."""
    raw = decode_document(document) if document is not None else b""
    row = {"source": source, "format": fmt, "digest": digest(raw) if raw else None,
           "verified": False, "measurement": None, "reason": None}
    try:
        evidence = verify(raw, fmt, options, allowed_measurements)
    except AttestationError as exc:
        row["reason"] = str(exc)
        row["check"] = exc.check
        # Where the document parsed far enough to say what it measures, report it: it tells
        # the operator which image a refused enclave runs.
        row["measurement"] = getattr(exc, "measurement", None)
        if fmt is None:
            try:
                row["format"] = detect_format(raw)
            except AttestationError:
                pass
        return row
    except (ImportError, MissingLibraryError):
        raise  # a broken installation must surface as such, not as one enclave's bad evidence
    except Exception as exc:  # noqa: BLE001 pylint: disable=broad-exception-caught
        # Hostile input that slipped past a verifier's own checks (RecursionError included):
        # refuse this row, without a traceback, and let the other rows be verified.
        row["reason"] = f"malformed: evidence could not be processed ({exc.__class__.__name__})"
        row["check"] = "malformed"
        return row
    row.update(verified=True, measurement=evidence.measurement, format=evidence.format, reason="verified")
    if evidence.issued_at is not None:
        row["issued_at"] = evidence.issued_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return row


def parse_time(value) -> datetime.datetime:
    """ISO 8601 (with Z or offset) or unix seconds -> aware UTC datetime."""
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.astimezone(datetime.timezone.utc)
