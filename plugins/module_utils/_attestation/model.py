# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every attestation format shares: the refusal, the options of one verification, the verdict.

Private module_utils: the API may change without notice between releases.

A leaf of the ``_attestation`` import graph: the format files (``alfred.py``, ``nitro.py``,
``jwt.py``, ...) import it and nothing of the dispatch (``common.py``) or the registry, so the
registry can import the formats without a cycle. ``common.py`` re-exports these names.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.printable import escape_controls

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
    # The validated trust itself: a format registered after the fields above reads its own trust options here
    # (AttestationFormat.trust_options), so adding one never adds a field to this class.
    trust: dict = field(default_factory=dict)


@dataclass
class Evidence:
    """What a verified document proves. ``details`` holds only non-secret facts."""

    format: str
    measurement: str
    issued_at: datetime.datetime | None = None
    nonce: str | None = None
    details: dict = field(default_factory=dict)
