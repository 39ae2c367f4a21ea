# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One interface over the attestation evidence formats (those of ``registry.py``).

Private module_utils: the API may change without notice between releases.

Each format lives in its own file, a ``base.AttestationFormat`` subclass whose
``verify(document: bytes, options: VerifyOptions) -> Evidence`` raises AttestationError naming
the failed check. This file dispatches through the registry, detects formats and turns outcomes
into the result rows that modules and the evidence bundle record. Raw documents never leave this
layer: results carry only their SHA-256 digest.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import registry
# The shared types live in model.py (the format files import them from there, not from here, so
# that there is no import cycle); they are re-exported for the callers of this interface.
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.model import (  # noqa: F401 pylint: disable=unused-import
    CHECKS, MAX_CONTAINERS, MAX_NESTING, AttestationError, Evidence, VerifyOptions, loads_json, nesting_depth, utcnow)
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import MissingLibraryError

# The format names, in registry order (registry.py lists the formats).
FORMATS = registry.names()


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
    """Guess the format from the bytes (each format's ``sniff``, in registry order): JSON object -> alfred,
    CBOR array -> nitro, JWS -> jwt."""
    return registry.detect(document)


def digest(document: bytes) -> str:
    return "sha256:" + hashlib.sha256(document).hexdigest()


def verify(document, fmt: str | None, options: VerifyOptions, allowed_measurements=None) -> Evidence:
    """Verify one document; raise AttestationError when it must be refused."""
    raw = decode_document(document)
    if not raw:
        raise AttestationError("malformed", "empty document")
    fmt = fmt or detect_format(raw)
    verifier = registry.attestation_format(fmt)
    if options.formats is not None and fmt not in options.formats:
        raise AttestationError("trust", f"the trust does not accept {fmt} evidence (it accepts {', '.join(options.formats) or 'none'})")
    for requirement in verifier.requirements:  # MissingLibraryError: reported as missing_required_lib
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
