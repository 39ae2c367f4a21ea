# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writing an evidence bundle (controller only): directory, hash-chained events, manifest, signature.

Private plugin_utils: the API may change without notice between releases. The *file format*
(plugins/module_utils/_evidence/format.py, docs/evidence.md) is a public contract.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import os
import re

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.format import (
    MANIFEST,
    SIGNATURE,
    ZERO_HASH,
    EvidenceError,
    ed25519_backend,
    bundle_files,
    check_json_safe,
    compact,
    event_hash,
    iso,
    sha256_file,
    utc_now,
)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_component(value, fallback: str) -> str:
    text = _SAFE_NAME.sub("_", str(value or "")).strip("._") or fallback
    return text[:64]


def create_bundle_dir(evidence_dir: str, env: str, action: str, when: _dt.datetime) -> str:
    """Create ``<evidence_dir>/<env>-<action>-<YYYYmmddTHHMMSSZ>`` (suffix ``.N`` on collision)."""
    base = f"{safe_component(env, 'unknown')}-{safe_component(action, 'all')}-{compact(when)}"
    try:
        os.makedirs(evidence_dir, mode=0o750, exist_ok=True)
    except OSError as exc:
        raise EvidenceError(f"Could not create evidence directory '{evidence_dir}': {exc.strerror or exc}") from None
    for attempt in range(1000):
        name = base if attempt == 0 else f"{base}.{attempt}"
        path = os.path.join(evidence_dir, name)
        try:
            os.mkdir(path, 0o750)
            return os.path.abspath(path)
        except FileExistsError:
            continue
        except OSError as exc:
            raise EvidenceError(f"Could not create evidence bundle '{path}': {exc.strerror or exc}") from None
    raise EvidenceError(f"Could not create evidence bundle under '{evidence_dir}': too many bundles named {base}")


class ChainWriter:
    """Appends hash-chained events to ``events.jsonl``, one flushed line per event."""

    def __init__(self, path: str, fsync: bool = False):
        self.path = path
        self._fsync = fsync
        self.seq = -1
        self.head = ZERO_HASH
        try:
            self._handle = open(path, "a", encoding="utf-8", newline="\n")
        except OSError as exc:
            raise EvidenceError(f"Could not open evidence chain '{path}': {exc.strerror or exc}") from None

    def append(self, event_type: str, data: dict | None = None, ts: str | None = None) -> dict:
        record = dict(data or {})
        for reserved in ("seq", "ts", "type", "prev", "hash"):
            record.pop(reserved, None)
        record.update(seq=self.seq + 1, ts=ts or iso(utc_now()), type=event_type, prev=self.head)
        record["hash"] = event_hash(record)
        line = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        self._handle.write(line + "\n")
        self._handle.flush()
        if self._fsync:
            os.fsync(self._handle.fileno())
        self.seq = record["seq"]
        self.head = record["hash"]
        return record

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.flush()
            try:
                os.fsync(self._handle.fileno())
            except OSError:  # pragma: no cover - e.g. special filesystems
                pass
            self._handle.close()

    @property
    def closed(self) -> bool:
        return self._handle.closed


def write_json(path: str, data) -> None:
    text = json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    check_json_safe(data)
    write_text(path, text)


def write_text(path: str, text: str) -> None:
    """Write a bundle file atomically (temporary file, fsync, rename)."""
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_manifest(bundle: str) -> str:
    """Write ``MANIFEST.sha256`` over every file except the manifest and its signature."""
    lines = []
    for name in bundle_files(bundle):
        if name in (MANIFEST, SIGNATURE) or name.endswith(".tmp"):
            continue
        lines.append(f"{sha256_file(os.path.join(bundle, name))}  {name}\n")
    path = os.path.join(bundle, MANIFEST)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.writelines(lines)
        handle.flush()
        os.fsync(handle.fileno())
    return path


def load_private_key(path: str, passphrase: str | None = None):
    serialization, ed25519, dummy = ed25519_backend()
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise EvidenceError(f"Could not read evidence signing key '{path}': {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=passphrase.encode() if passphrase else None)
    except (ValueError, TypeError) as exc:
        cause = "it is encrypted and no passphrase was given" if "encrypted" in str(exc).lower() else "not a PEM private key"
        raise EvidenceError(f"Could not load evidence signing key '{path}': {cause}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise EvidenceError(f"Could not load evidence signing key '{path}': it is not an Ed25519 key")
    return key


def public_key_b64(private_key) -> str:
    serialization, dummy, dummy = ed25519_backend()
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def sign_manifest(bundle: str, private_key) -> str:
    with open(os.path.join(bundle, MANIFEST), "rb") as handle:
        data = handle.read()
    signature = base64.b64encode(private_key.sign(data)).decode("ascii")
    path = os.path.join(bundle, SIGNATURE)
    with open(path, "w", encoding="ascii", newline="\n") as handle:
        handle.write(signature + "\n")
    return path
