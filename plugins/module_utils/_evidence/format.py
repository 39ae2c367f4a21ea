# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Evidence bundle format: file names, canonical JSON, event hashes, time stamps.

Private module_utils: the API may change without notice between releases. The *file
format* it writes is a public contract (see docs/evidence.md and DESIGN.md section 7).

A bundle is a directory holding ``run.log``, ``events.jsonl``, ``summary.json``,
``MANIFEST.sha256`` and optionally ``MANIFEST.sig``:

* every ``events.jsonl`` line is one JSON object with ``seq`` (0, 1, ...), ``ts``, ``type``,
  ``prev`` (previous line's ``hash``, 64 zeros for the first) and ``hash`` = hex SHA-256 of
  the canonical JSON (:func:`canonical_json`) of the object without ``hash``;
* ``summary.json`` records the chain head (``chain_head``: ``seq`` and ``hash`` of the last
  line), so a truncated chain is detected even if the manifest was recomputed;
* ``MANIFEST.sha256`` is ``sha256sum`` output for every other file except ``MANIFEST.sig``;
* ``MANIFEST.sig`` is the **base64** (standard alphabet, one line, trailing newline)
  Ed25519 signature over the exact bytes of ``MANIFEST.sha256``.

Verification lives in ``verify.py``, the audit record protocol in ``audit.py``; writing a
bundle is controller-only code (``plugins/plugin_utils/_evidence_bundle.py``).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os

ZERO_HASH = "0" * 64
EVENTS = "events.jsonl"
SUMMARY = "summary.json"
RUN_LOG = "run.log"
MANIFEST = "MANIFEST.sha256"
SIGNATURE = "MANIFEST.sig"
REQUIRED_FILES = (RUN_LOG, EVENTS, SUMMARY)
SCHEMA = "alfred.tee_kms.evidence/v1"


class EvidenceError(Exception):
    """An expected failure while writing, reading or verifying evidence (message is safe to show)."""


# --------------------------------------------------------------------------------------
# Canonical JSON and time
# --------------------------------------------------------------------------------------
def check_json_safe(obj, path: str = "$") -> None:
    """Raise EvidenceError if ``obj`` holds a float or a non-JSON type (canonical form needs neither)."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return
    if isinstance(obj, float):
        raise EvidenceError(f"Could not canonicalise evidence value at {path}: floats are not allowed (use integers)")
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                raise EvidenceError(f"Could not canonicalise evidence value at {path}: key {key!r} is not a string")
            check_json_safe(value, f"{path}.{key}")
        return
    if isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            check_json_safe(value, f"{path}[{index}]")
        return
    raise EvidenceError(f"Could not canonicalise evidence value at {path}: type {type(obj).__name__} is not JSON")


def to_plain(obj, _depth: int = 0):
    """Convert arbitrary data (tagged strings, sets, floats, objects) to plain JSON-safe types.

    Floats become integers when integral, otherwise strings (events hold no floats).
    """
    if _depth > 50:
        return "<too deep>"
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return int(obj) if obj.is_integer() else repr(obj)
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, dict) or hasattr(obj, "items"):
        try:
            return {str(k): to_plain(v, _depth + 1) for k, v in obj.items()}
        except Exception:  # pragma: no cover - exotic mapping
            return str(obj)
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_plain(v, _depth + 1) for v in obj]
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    return str(obj)


def canonical_json(obj) -> bytes:
    """Canonical bytes of ``obj``: sorted keys, no whitespace, UTF-8, no floats."""
    check_json_safe(obj)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def event_hash(record: dict) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def iso(ts: _dt.datetime) -> str:
    """UTC ISO 8601 with millisecond precision, e.g. ``2026-02-16T10:00:00.123Z``."""
    ts = ts.astimezone(_dt.timezone.utc)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def compact(ts: _dt.datetime) -> str:
    """``YYYYmmddTHHMMSSZ`` as used in bundle directory names."""
    return ts.astimezone(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundle_files(bundle: str) -> list[str]:
    """Relative POSIX names of every regular file of the bundle (recursive), sorted."""
    names = []
    for root, dirs, files in os.walk(bundle):
        dirs.sort()
        for name in files:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, bundle).replace(os.sep, "/")
            names.append(rel)
    return sorted(names)


def ed25519_backend():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - cryptography is a hard requirement
        raise EvidenceError("Could not use Ed25519 signatures: the Python library 'cryptography' is not installed") from None
    return serialization, ed25519, InvalidSignature
