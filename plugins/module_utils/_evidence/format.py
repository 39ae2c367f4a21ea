# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Evidence bundle format: canonical JSON, hash chain, manifest, Ed25519 signature, verification.

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

The verifier is offline and read-only; it reports the *first* problem, naming the file and
line.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import json
import os
import re

ZERO_HASH = "0" * 64
EVENTS = "events.jsonl"
SUMMARY = "summary.json"
RUN_LOG = "run.log"
MANIFEST = "MANIFEST.sha256"
SIGNATURE = "MANIFEST.sig"
REQUIRED_FILES = (RUN_LOG, EVENTS, SUMMARY)
SCHEMA = "alfred.tee_kms.evidence/v1"

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MANIFEST_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


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


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------
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
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


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


# --------------------------------------------------------------------------------------
# Keys and signatures
# --------------------------------------------------------------------------------------
def _crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - cryptography is a hard requirement
        raise EvidenceError("Could not use Ed25519 signatures: the Python library 'cryptography' is not installed") from None
    return serialization, ed25519, InvalidSignature


def load_private_key(path: str, passphrase: str | None = None):
    serialization, ed25519, dummy = _crypto()
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


def load_public_key(spec: str):
    """Ed25519 public key from PEM text, a path to a PEM (or base64) file, or base64 of the 32 raw bytes."""
    serialization, ed25519, dummy = _crypto()
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


def public_key_b64(private_key) -> str:
    serialization, dummy, dummy = _crypto()
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
    matches; the signature, when ``public_key`` is given.
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
        dummy, dummy, invalid_signature = _crypto()
        try:
            key.verify(signature, manifest_bytes)
        except invalid_signature:
            result["signature_verified"] = False
            return fail(f"{SIGNATURE}: signature does not verify {MANIFEST} with the given public key")
        result["signature_verified"] = True

    result["verified"] = True
    result["reason"] = None
    return result


# --------------------------------------------------------------------------------------
# Audit protocol -> summary
# --------------------------------------------------------------------------------------
AUDIT_KINDS = ("run_context", "key_state", "attestation", "hook", "change", "rollback", "probe", "health", "secret_scan")
OUTCOMES = ("success", "failed", "rolled_back")


def iter_audits(result) -> list[dict]:
    """Every ``audit`` dict of a task result: top-level and inside loop ``results``."""
    found = []
    if not isinstance(result, dict):
        return found
    audit = result.get("audit")
    if isinstance(audit, dict) and isinstance(audit.get("kind"), str):
        found.append(audit)
    elif isinstance(audit, list):
        found.extend(a for a in audit if isinstance(a, dict) and isinstance(a.get("kind"), str))
    items = result.get("results")
    if isinstance(items, list):
        for item in items:
            found.extend(iter_audits(item))
    return found


def command_digest(command) -> str:
    return "sha256:" + hashlib.sha256(str(command).encode("utf-8")).hexdigest()


def _truthy(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int,)):
        return value != 0
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y")


class AuditCollector:
    """Aggregates audit records (see docs/evidence.md, "Audit protocol") into summary fields."""

    def __init__(self, show_commands: bool = False):
        self.show_commands = show_commands
        self.run_context: dict = {}
        self.key_before: dict | None = None
        self.key_after: dict | None = None
        self.attestation: list = []
        self.hooks: list = []
        self.changes: list = []
        self.rollbacks: list = []
        self.probes: list = []
        self.health: list = []
        self.secret_scans: list = []
        self.other: list = []
        self.count = 0

    def normalize(self, audit: dict) -> dict:
        """A JSON-safe copy of one audit record with hook command text digested unless show_commands."""
        record = to_plain(audit)
        if record.get("kind") == "hook" and "command" in record:
            command = record.get("command")
            if command is None:
                record.pop("command")
            elif not self.show_commands and not str(command).startswith("sha256:"):
                record.setdefault("command_sha256", command_digest(command).split(":", 1)[1])
                record["command"] = command_digest(command)
        return record

    def add(self, audit: dict, task: str | None = None, host: str | None = None) -> dict:
        record = self.normalize(audit)
        kind = record.get("kind")
        self.count += 1
        where = {k: v for k, v in (("task", task), ("host", host)) if v}
        if kind == "run_context":
            self.run_context.update({k: v for k, v in record.items() if k != "kind"})
        elif kind == "key_state":
            state = {k: v for k, v in record.items() if k != "kind"}
            if self.key_before is None:
                self.key_before = state
            self.key_after = state
        elif kind == "attestation":
            self.attestation.append(dict(where, results=record.get("results", []), measurements=record.get("measurements", [])))
        elif kind == "hook":
            self.hooks.append(dict(where, **{k: v for k, v in record.items() if k != "kind"}))
        elif kind == "change":
            self.changes.append(dict(where, **{k: v for k, v in record.items() if k != "kind"}))
        elif kind == "rollback":
            self.rollbacks.append(dict(where, **{k: v for k, v in record.items() if k != "kind"}))
        elif kind == "probe":
            self.probes.append(dict(where, **{k: v for k, v in record.items() if k != "kind"}))
        elif kind == "health":
            self.health.append(dict(where, **{k: v for k, v in record.items() if k != "kind"}))
        elif kind == "secret_scan":
            self.secret_scans.append(dict(where, **{k: v for k, v in record.items() if k != "kind"}))
        else:
            self.other.append(dict(where, **record))
        return record

    # -- derived ------------------------------------------------------------------------
    @property
    def rollback_executed(self) -> bool:
        return any(_truthy(r.get("executed", False)) for r in self.rollbacks)

    @property
    def rollback_failed(self) -> bool:
        for r in self.rollbacks:
            if _truthy(r.get("executed", False)) and str(r.get("outcome", "ok")).lower() not in ("ok", "success", "succeeded", "changed", "restored"):
                return True
        return any(h.get("name") == "rollback" and h.get("outcome") in ("failed", "timeout") for h in self.hooks)

    def outcome(self, action: str | None, run_failed: bool) -> str:
        if self.rollback_failed:
            return "failed"
        if self.rollback_executed and (action or "all") != "rollback":
            return "rolled_back"
        return "failed" if run_failed else "success"

    def summary_fields(self) -> dict:
        before = self.key_before or {}
        after = self.key_after or {}
        ctx = self.run_context
        return {
            "versions": {
                "current": ctx.get("current_version"),
                "next": ctx.get("next_version"),
                "primary_before": before.get("primary_version"),
                "primary_after": after.get("primary_version"),
            },
            "key_state": {"before": self.key_before, "after": self.key_after},
            "allowed_measurements": {
                "before": before.get("allowed_measurements"),
                "after": after.get("allowed_measurements"),
                "target": ctx.get("target_measurements"),
            },
            "attestation": self.attestation,
            "hooks": self.hooks,
            "changes": self.changes,
            "rollback": self.rollbacks[-1] if self.rollbacks else {"executed": False},
            "rollback_executed": self.rollback_executed,
            "probes": self.probes,
            "health": self.health,
            "secret_scan": self.secret_scans,
            "other_audits": self.other,
            "audit_records": self.count,
        }
