# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Offline, read-only verification of an evidence bundle: chain, summary head, manifest, signature.

Private module_utils: the API may change without notice between releases.

The verifier reports the *first* problem, naming the file and line.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.format import (
    EVENTS,
    MANIFEST,
    REQUIRED_FILES,
    SIGNATURE,
    SUMMARY,
    ZERO_HASH,
    EvidenceError,
    canonical_json,
    ed25519_backend,
    bundle_files,
    event_hash,
    sha256_file,
)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MANIFEST_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


def load_public_key(spec: str):
    """Ed25519 public key from PEM text, a path to a PEM (or base64) file, or base64 of the 32 raw bytes."""
    serialization, ed25519, dummy = ed25519_backend()
    if not isinstance(spec, str) or not spec.strip():
        raise EvidenceError("Could not load the evidence public key: it is empty")
    text = spec.strip()
    origin = "the given public key"
    if "-----BEGIN" not in text and os.path.isfile(text):
        origin = f"public key file '{text}'"
        try:
            with open(text, "rb") as handle:
                text = handle.read().decode("utf-8", "replace").strip()
        except OSError as exc:
            raise EvidenceError(f"Could not read {origin}: {exc.strerror or exc}") from None
    if "-----BEGIN" in text:
        try:
            key = serialization.load_pem_public_key(text.encode("utf-8"))
        except ValueError:
            raise EvidenceError(f"Could not load {origin}: not a valid PEM public key") from None
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise EvidenceError(f"Could not load {origin}: it is not an Ed25519 public key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EvidenceError(f"Could not load {origin}: neither PEM nor base64, nor an existing file") from None
    if len(raw) != 32:
        raise EvidenceError(f"Could not load {origin}: base64 decodes to {len(raw)} bytes, an Ed25519 public key has 32")
    return ed25519.Ed25519PublicKey.from_public_bytes(raw)


def _decode_signature(blob: bytes) -> bytes | None:
    if len(blob) == 64:  # raw signature bytes are accepted too
        return blob
    try:
        raw = base64.b64decode(blob.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 64 else None


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------
def read_head(bundle: str) -> dict:
    """``{bundle, seq, hash}`` of the last complete line of ``events.jsonl`` (reads from the end)."""
    path = os.path.join(bundle, EVENTS)
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            chunk = 4096
            data = b""
            pos = size
            while pos > 0:
                step = min(chunk, pos)
                pos -= step
                handle.seek(pos)
                data = handle.read(step) + data
                complete = data[: data.rfind(b"\n") + 1] if b"\n" in data else b""
                lines = [ln for ln in complete.split(b"\n") if ln.strip()]
                # need a full last line: either we reached the file start or one more newline precedes it
                if lines and (pos == 0 or complete.count(b"\n") >= 2):
                    break
                chunk *= 2
    except OSError as exc:
        raise EvidenceError(f"Could not read evidence chain '{path}': {exc.strerror or exc}") from None
    complete = data[: data.rfind(b"\n") + 1] if b"\n" in data else b""
    lines = [ln for ln in complete.split(b"\n") if ln.strip()]
    if not lines:
        return {"bundle": bundle, "seq": None, "hash": None}
    try:
        record = json.loads(lines[-1].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise EvidenceError(f"Could not read the chain head of '{path}': the last line is not JSON") from None
    return {"bundle": bundle, "seq": record.get("seq"), "hash": record.get("hash")}


def verify_chain(path: str, name: str = EVENTS) -> tuple[int, dict | None, str | None, dict | None]:
    """Verify every link of an events file.

    Returns ``(count, head, reason, last_record)``; ``reason`` is None when the chain is intact.
    """
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return 0, None, f"{name}: missing", None
    except OSError as exc:
        return 0, None, f"{name}: cannot be read ({exc.strerror or exc})", None
    prev = ZERO_HASH
    count = 0
    head = None
    last = None
    with handle:
        data = handle.read()
    if data and not data.endswith(b"\n"):
        lines_total = data.count(b"\n") + 1
        return count, head, f"{name} line {lines_total}: incomplete last line (truncated or still being written)", None
    raw_lines = data.split(b"\n")[:-1] if data else []
    for index, raw in enumerate(raw_lines):
        lineno = index + 1
        if not raw.strip():
            return count, head, f"{name} line {lineno}: empty line inside the chain", last
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return count, head, f"{name} line {lineno}: not valid JSON", last
        if not isinstance(record, dict):
            return count, head, f"{name} line {lineno}: not a JSON object", last
        try:
            canonical = canonical_json(record)
        except EvidenceError as exc:
            return count, head, f"{name} line {lineno}: {exc}", last
        if raw != canonical:
            # The hash covers the parsed object, so bytes that parse to it in another form
            # (whitespace, key order, a duplicate key whose first value a reader could see)
            # would otherwise pass unnoticed.
            return count, head, (f"{name} line {lineno}: not in canonical form (sorted keys, no whitespace, "
                                 "no duplicate keys)"), last
        missing = [k for k in ("seq", "ts", "type", "prev", "hash") if k not in record]
        if missing:
            return count, head, f"{name} line {lineno}: missing field(s) {', '.join(missing)}", last
        if record["seq"] != index or isinstance(record["seq"], bool):
            return count, head, (
                f"{name} line {lineno}: seq is {record['seq']!r}, expected {index} "
                "(a line was deleted, inserted or reordered)"
            ), last
        if not isinstance(record["hash"], str) or not _HEX64.match(record["hash"]):
            return count, head, f"{name} line {lineno}: hash is not 64 lowercase hex characters", last
        if record["prev"] != prev:
            what = "is not 64 zeros" if index == 0 else f"does not match the hash of line {lineno - 1}"
            return count, head, f"{name} line {lineno}: prev {what}", last
        try:
            computed = event_hash(record)
        except EvidenceError as exc:
            return count, head, f"{name} line {lineno}: {exc}", last
        if computed != record["hash"]:
            return count, head, f"{name} line {lineno}: hash does not match its content", last
        prev = record["hash"]
        count += 1
        head = {"seq": record["seq"], "hash": record["hash"]}
        last = record
    if count == 0:
        return 0, None, f"{name}: no events", None
    return count, head, None, last


def parse_manifest(path: str) -> tuple[list[tuple[int, str, str]], str | None]:
    """Lines of a sha256sum manifest as ``(lineno, hexdigest, name)``; reason on the first problem."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return [], f"{MANIFEST}: missing (bundle not finalized, or manifest deleted)"
    except OSError as exc:
        return [], f"{MANIFEST}: cannot be read ({exc.strerror or exc})"
    entries = []
    seen = set()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [], f"{MANIFEST}: not UTF-8 text"
    if text and not text.endswith("\n"):
        return [], f"{MANIFEST} line {text.count(chr(10)) + 1}: incomplete last line"
    for lineno, line in enumerate(text.split("\n")[:-1] if text else [], start=1):
        match = _MANIFEST_LINE.match(line)
        if not match:
            return entries, f"{MANIFEST} line {lineno}: not a '<sha256>  <file>' line"
        digest, name = match.group(1), match.group(2)
        if name.startswith("/") or ".." in name.split("/") or "\\" in name:
            return entries, f"{MANIFEST} line {lineno}: unsafe file name '{name}'"
        if name in (MANIFEST, SIGNATURE):
            return entries, f"{MANIFEST} line {lineno}: must not list {name}"
        if name in seen:
            return entries, f"{MANIFEST} line {lineno}: '{name}' is listed twice"
        seen.add(name)
        entries.append((lineno, digest, name))
    return entries, None


def unsafe_entry(bundle: str) -> str | None:
    """The first entry of the bundle that is a symbolic link or neither a directory nor a
    regular file, as a reason; None when there is none. A link could bring in files the
    manifest does not cover, or make a listed name read content from outside the bundle."""
    for root, dirs, files in os.walk(bundle):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, bundle).replace(os.sep, "/")
            try:
                mode = os.lstat(full).st_mode
            except OSError as exc:
                return f"{rel}: cannot be examined ({exc.strerror or exc})"
            if stat.S_ISLNK(mode):
                return f"{rel}: is a symbolic link (a bundle holds only regular files and directories)"
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                return f"{rel}: is not a regular file (a bundle holds only regular files and directories)"
    return None


class VerifyResult(dict):
    """Result of :func:`verify_bundle` (a dict: verified, events, reason, chain_head, ...)."""

    @property
    def verified(self) -> bool:
        return bool(self["verified"])


def verify_bundle(bundle: str, public_key: str | None = None) -> VerifyResult:
    """Verify a bundle offline. Never raises for a bad bundle: returns ``verified=False`` and ``reason``.

    Checks, in order (the first problem is reported): the chain (every line, seq from 0,
    first prev zeros, every link and hash); ``summary.json`` parses and its ``chain_head``
    equals the last line; the manifest covers exactly the files present and every hash
    matches; the signature, which needs ``public_key`` when ``MANIFEST.sig`` is present. Every
    event line must be the canonical form of its object; symbolic links and entries that are
    not regular files or directories are refused.
    """
    result = VerifyResult(
        verified=False, path=bundle, events=0, chain_head=None, reason=None, signed=False,
        signature_verified=None, files=[],
    )

    def fail(reason: str) -> VerifyResult:
        result["reason"] = reason
        return result

    if not os.path.isdir(bundle):
        return fail(f"{bundle}: not a directory (no such evidence bundle)")
    reason = unsafe_entry(bundle)
    if reason:
        return fail(reason)

    key = None
    if public_key:
        try:
            key = load_public_key(public_key)
        except EvidenceError as exc:
            return fail(str(exc))

    count, head, reason, last = verify_chain(os.path.join(bundle, EVENTS))
    result["events"] = count
    result["chain_head"] = head
    if reason:
        return fail(reason)

    # summary.json: parseable, and commits to the chain head (catches truncation of the tail).
    summary_path = os.path.join(bundle, SUMMARY)
    try:
        with open(summary_path, "rb") as handle:
            summary = json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        return fail(f"{SUMMARY}: missing")
    except (UnicodeDecodeError, ValueError):
        return fail(f"{SUMMARY}: not valid JSON")
    if not isinstance(summary, dict):
        return fail(f"{SUMMARY}: not a JSON object")
    recorded = summary.get("chain_head")
    if not isinstance(recorded, dict) or "seq" not in recorded or "hash" not in recorded:
        return fail(f"{SUMMARY}: has no chain_head (seq and hash of the last event)")
    if recorded.get("seq") != head["seq"] or recorded.get("hash") != head["hash"]:
        return fail(
            f"{EVENTS} line {count}: chain ends at seq {head['seq']} but {SUMMARY} records head seq "
            f"{recorded.get('seq')!r} with another hash (events truncated, appended or replaced)"
        )
    if last is not None and last.get("type") != "end":
        return fail(f"{EVENTS} line {count}: last event is '{last.get('type')}', expected 'end' (chain truncated)")

    entries, reason = parse_manifest(os.path.join(bundle, MANIFEST))
    if reason:
        return fail(reason)
    listed = {name: (lineno, digest) for lineno, digest, name in entries}
    present = [n for n in bundle_files(bundle) if n not in (MANIFEST, SIGNATURE)]
    for name in present:
        if name not in listed:
            return fail(f"{name}: not listed in {MANIFEST} (file added, or its manifest line removed)")
    for lineno, digest, name in entries:
        full = os.path.join(bundle, name)
        if not os.path.isfile(full):
            return fail(f"{name}: listed in {MANIFEST} line {lineno} but missing from the bundle")
        if sha256_file(full) != digest:
            return fail(f"{name}: SHA-256 does not match {MANIFEST} line {lineno} (file modified)")
    for required in REQUIRED_FILES:
        if required not in listed:
            return fail(f"{required}: required file not covered by {MANIFEST}")
    result["files"] = sorted(listed)

    sig_path = os.path.join(bundle, SIGNATURE)
    result["signed"] = os.path.isfile(sig_path)
    if key is not None:
        if not result["signed"]:
            return fail(f"{SIGNATURE}: missing, but a public key was given (unsigned or signature deleted)")
        with open(sig_path, "rb") as handle:
            signature = _decode_signature(handle.read())
        if signature is None:
            return fail(f"{SIGNATURE}: not a base64 (or raw) 64-byte Ed25519 signature")
        with open(os.path.join(bundle, MANIFEST), "rb") as handle:
            manifest_bytes = handle.read()
        dummy, dummy, invalid_signature = ed25519_backend()
        try:
            key.verify(signature, manifest_bytes)
        except invalid_signature:
            result["signature_verified"] = False
            return fail(f"{SIGNATURE}: signature does not verify {MANIFEST} with the given public key")
        result["signature_verified"] = True
    elif result["signed"]:
        # A signature nobody checked proves nothing, and may be a forgery: not verified.
        return fail(f"{SIGNATURE}: present but not checked (give the public key of the evidence signing key "
                    "to verify the signature)")

    result["verified"] = True
    result["reason"] = None
    return result
