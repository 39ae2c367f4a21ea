# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Secret detectors and the redactor used by the evidence callback and ``secret_scan``.

Private module_utils: the API may change without notice between releases.

Two mechanisms, applied in this order by :class:`Redactor`:

1. *Known values*: values of variables whose **names** mark them secret (see
   :data:`SECRET_NAME_RE`) are removed wherever they appear, in raw form, JSON-escaped
   form and base64 (standard and URL-safe alphabets, also when the value sits inside a
   longer base64 stream, for example HTTP Basic credentials). Only values of at least
   :data:`MIN_KNOWN_LENGTH` characters are tracked, and obvious non-secrets (booleans,
   short numbers, state words) are ignored so that they do not blank unrelated text.
2. *Patterns*: well-known credential shapes (AWS keys, PEM private keys, JWTs, bearer and
   OAuth tokens, ``password=...`` style assignments) are masked as
   ``[REDACTED:<detector>]``.

A detector's value that is a whole SHA-256 or SHA-384 digest (64 or 96 hex characters,
optionally ``sha256:``/``sha384:``/``0x``-prefixed: enclave measurements, chain hashes) is
never masked, so audit evidence stays readable; any other hex or numeric value is, since
``api_key=<32 hex>`` or ``password=123456789`` are secrets like any other.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

MIN_KNOWN_LENGTH = 6
MASK = "[REDACTED:{}]"

# Variable / environment / option names whose values are secret.
SECRET_NAME_RE = re.compile(
    r"secret|password|passwd|passphrase|token|credential|private|api_?key|access_?key|session|auth_?key",
    re.IGNORECASE,
)

# Values that are never treated as known secrets even if the variable name looks secret:
# they are too common to blank everywhere and carry no secret. (Values shorter than
# MIN_KNOWN_LENGTH, such as short provider names, are never tracked anyway.)
_NOT_SECRET_VALUES = frozenset(
    {
        "true", "false", "yes", "no", "none", "null", "enabled", "disabled", "present", "absent",
        "changeme", "default", "unknown", "staging", "production", "command",
        "/dev/null",
    }
)
# Short numbers (ports, TTLs, counts) are not tracked as known values; 8 digits and more are.
_ALL_DIGITS = re.compile(r"^\d{1,7}$")
# The only detector values left readable: whole SHA-256/SHA-384 digests and measurements.
_DIGEST = re.compile(r"^(?:sha256:|sha384:|0x)?(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{96})$")
# Between two characters of a known value: a line break (raw or JSON-escaped) and the indentation
# after it, so that a secret wrapped over lines (base64 -w 76, a terminal, a log) is found too.
_LINE_SPLIT = r"(?:\r?\n[ \t]*|(?:\\r)?\\n)?"
_SPLIT_MIN = 8
# Already-masked placeholders (ours, Ansible's no_log ones).
_PLACEHOLDER = re.compile(r"^(?:\[REDACTED(?::[a-z0-9_]+)?\]|\*{3,}|VALUE_SPECIFIED_IN_NO_LOG_PARAMETER)$")

# --------------------------------------------------------------------------------------
# Pattern detectors. Each entry: name -> (regex, group to mask or 0 for the whole match).
# Order matters: PEM blocks first (they contain base64 that other detectors would split).
# --------------------------------------------------------------------------------------
_B64_40 = r"[A-Za-z0-9/+]{40}"
DETECTORS: dict[str, tuple[re.Pattern, int]] = {
    "private_key": (
        re.compile(
            r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY( BLOCK)?-----"
            r"(?:[\s\S]{0,16384}?-----END[A-Z0-9 ]{0,40}PRIVATE KEY( BLOCK)?-----|[A-Za-z0-9+/=\s\\:,-]*)"
        ),
        0,
    ),
    "jwt": (re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}"), 0),
    "aws_access_key_id": (
        re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA|AIDA|AROA|AIPA|ANPA|ANVA|AGPA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
        0,
    ),
    "aws_secret_access_key": (
        re.compile(
            r"(?i:aws|secret)[A-Za-z0-9_ .\-]{0,30}?\\?[\"']?\s{0,3}(?:[:=]|=>)\s{0,3}\\?[\"']?"
            r"(?<![A-Za-z0-9/+])(" + _B64_40 + r")(?![A-Za-z0-9/+=])"
        ),
        1,
    ),
    "bearer_token": (re.compile(r"(?i:\bbearer)\s+([A-Za-z0-9\-._~+/]{8,}=*)"), 1),
    "oauth_token": (
        re.compile(
            r"(?<![A-Za-z0-9])(?:ya29\.[A-Za-z0-9_-]{10,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
            r"|xox[abposr]-[A-Za-z0-9-]{10,}|glpat-[A-Za-z0-9_-]{20,}|1//0[A-Za-z0-9_-]{20,})"
        ),
        0,
    ),
    "oauth_token_field": (
        re.compile(
            r"(?i:(?:access|refresh|id)_token|client_secret)\\?[\"']?\s{0,3}[:=]\s{0,3}\\?[\"']?"
            r"([^\s\"'\\&,;}\]]{6,})"
        ),
        1,
    ),
    "password_assignment": (
        re.compile(
            r"(?i:password|passwd|passphrase|pwd|api[_-]?key|secret[_-]?key|auth[_-]?token|session[_-]?token)"
            r"\\?[\"']?\s{0,3}[:=]\s{0,3}\\?[\"']?"
            r"([^\s\"'\\&,;}\]{\[]{6,})"
        ),
        1,
    ),
    "basic_auth_url": (re.compile(r"(?i:[a-z][a-z0-9+.-]{1,20})://[^\s:/@\"']{1,64}:([^\s@/\"']{3,128})@"), 1),
    # STS session tokens: base64 of a protobuf that always starts the same way.
    "aws_session_token": (
        re.compile(r"(?<![A-Za-z0-9/+=])((?:FQoGZXIvYXdz|FwoGZXIvYXdz|IQoJb3JpZ2lu)[A-Za-z0-9/+=]{16,})"), 1),
    # aws ... --output table / yaml / json: "| SecretAccessKey | <value> |", "SessionToken: <value>".
    "aws_cli_credentials": (
        re.compile(r"(?:SecretAccessKey|SessionToken|secret_access_key|session_token)\\?[\"']?[\s|:=\\\"']{1,12}"
                   r"([A-Za-z0-9/+=]{16,})"), 1),
    # aws ... --output text: "CREDENTIALS<TAB>AccessKeyId<TAB>Expiration<TAB>SecretAccessKey<TAB>SessionToken".
    "aws_cli_text_secret": (re.compile(r"(?m)^CREDENTIALS\t[^\t\n]*\t[^\t\n]*\t([^\t\n]{16,})"), 1),
    "aws_cli_text_token": (re.compile(r"(?m)^CREDENTIALS\t[^\t\n]*\t[^\t\n]*\t[^\t\n]*\t([^\t\n]{16,})"), 1),
}

# Cheap literal pre-checks: a detector's regex only runs when its hint is present (the regexes
# with look-behinds cost tens of microseconds per string; the callback redacts every field).
_AWS_ID_PREFIXES = ("AKIA", "ASIA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "AGPA", "ABIA", "ACCA")
_OAUTH_HINTS = ("ya29.", "gho_", "ghp_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "glpat-", "1//0")
_PASSWORD_HINTS = ("password", "passwd", "passphrase", "pwd", "api_key", "api-key", "apikey", "secret_key",
                   "secret-key", "secretkey", "auth_token", "auth-token", "authtoken", "session_token",
                   "session-token", "sessiontoken")
PREFILTERS = {
    "private_key": lambda text, low: "PRIVATE KEY" in text,
    "jwt": lambda text, low: "eyJ" in text,
    "aws_access_key_id": lambda text, low: any(p in text for p in _AWS_ID_PREFIXES),
    "aws_secret_access_key": lambda text, low: "aws" in low or "secret" in low,
    "bearer_token": lambda text, low: "bearer" in low,
    "oauth_token": lambda text, low: any(h in text for h in _OAUTH_HINTS),
    "oauth_token_field": lambda text, low: "_token" in low or "client_secret" in low,
    "password_assignment": lambda text, low: any(h in low for h in _PASSWORD_HINTS),
    "basic_auth_url": lambda text, low: "://" in text and "@" in text,
    "aws_session_token": lambda text, low: "b3JpZ2lu" in text or "GZXIvYXdz" in text,
    "aws_cli_credentials": lambda text, low: "secretaccesskey" in low or "sessiontoken" in low
    or "secret_access_key" in low or "session_token" in low,
    "aws_cli_text_secret": lambda text, low: "CREDENTIALS\t" in text,
    "aws_cli_text_token": lambda text, low: "CREDENTIALS\t" in text,
}


# One pass that tells whether *any* detector could match (most strings have no hint at all).
_ANY_HINT = re.compile(
    r"PRIVATE KEY|eyJ|A(?:KIA|SIA|IDA|ROA|IPA|NPA|NVA|GPA|BIA|CCA)|ya29\.|gh[pousr]_|github_pat_|xox|glpat-|1//0|://"
    r"|(?i:aws|secret|bearer|_token|passw|passphrase|pwd|api.?key|auth.?token|session.?token)"
    r"|CREDENTIALS\t|b3JpZ2lu|GZXIvYXdz"
)


def _applies(name: str, text: str, low: str) -> bool:
    check = PREFILTERS.get(name)
    return True if check is None else check(text, low)


def is_secret_name(name) -> bool:
    return isinstance(name, str) and bool(SECRET_NAME_RE.search(name))


def _worth_tracking(value: str) -> bool:
    if len(value) < MIN_KNOWN_LENGTH:
        return False
    low = value.strip().lower()
    if low in _NOT_SECRET_VALUES or _ALL_DIGITS.match(low) or _PLACEHOLDER.match(value.strip()):
        return False
    if "{{" in value or "{%" in value:  # an untemplated expression, not the secret itself
        return False
    return True


def _b64_variants(raw: bytes) -> set[str]:
    """Base64 forms of ``raw``: alone, and the stable core when embedded at any alignment."""
    out = set()
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + raw).decode("ascii")
        start = (8 * k + 5) // 6  # first character fully determined by ``raw``
        end_bytes = k + len(raw)
        full = end_bytes // 3 * 4  # characters of complete 3-byte groups
        rem = end_bytes % 3
        end = full + (rem if rem else 0)  # 1 or 2 leading chars of the partial group are determined
        if k == 0:
            out.add(enc)
            out.add(enc.rstrip("="))
        core = enc[start:end]
        if len(core) >= 8:
            out.add(core)
    out |= {v.replace("+", "-").replace("/", "_") for v in list(out)}
    return out


class Redactor:
    """Removes known secret values and masks credential patterns from text and data."""

    def __init__(self, known_values: Iterable[str] = (), detectors: Mapping | None = None):
        self._detectors = DETECTORS if detectors is None else detectors
        self._forms: dict[str, None] = {}
        self._known_re = None
        self.add_known(known_values)

    # -- known values -------------------------------------------------------------------
    def add_known(self, values: Iterable) -> int:
        added = 0
        for value in values:
            if not isinstance(value, str):
                if isinstance(value, (bytes, bytearray)):
                    value = bytes(value).decode("utf-8", "replace")
                else:
                    continue
            if not _worth_tracking(value):
                continue
            # Text forms may be wrapped over lines; encoded forms (base64, URL-encoded) are matched as is.
            texts = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
            encoded = _b64_variants(value.encode("utf-8")) | {quote(value, safe=""), quote(value), quote_plus(value)}
            for form in texts | encoded:
                if len(form) >= MIN_KNOWN_LENGTH and form not in self._forms:
                    self._forms[form] = form in texts and len(form) >= _SPLIT_MIN
                    added += 1
        if added:
            ordered = sorted(self._forms, key=len, reverse=True)
            self._known_re = re.compile("|".join(_LINE_SPLIT.join(map(re.escape, f)) if self._forms[f] else re.escape(f)
                                                 for f in ordered))
        return added

    def add_known_from_mapping(self, mapping, _depth: int = 0) -> int:
        """Track values of entries whose name marks them secret (nested mappings too)."""
        if not isinstance(mapping, Mapping) or _depth > 6:
            return 0
        values = []
        for name, value in mapping.items():
            if isinstance(value, Mapping):
                if is_secret_name(name):
                    values.extend(_leaf_strings(value))
                else:
                    self.add_known_from_mapping(value, _depth + 1)
            elif is_secret_name(name):
                values.extend(_leaf_strings(value))
        return self.add_known(values)

    @property
    def known_count(self) -> int:
        return len(self._forms)

    # -- redaction ----------------------------------------------------------------------
    def redact_text(self, text: str, counts: dict | None = None) -> str:
        if not text:
            return text
        if self._known_re is not None:
            text, n = self._known_re.subn(MASK.format("known_secret"), text)
            if n and counts is not None:
                counts["known_secret"] = counts.get("known_secret", 0) + n
        if len(text) < MIN_KNOWN_LENGTH or not _ANY_HINT.search(text):
            return text
        low = text.lower()
        for name, (pattern, group) in self._detectors.items():
            if _applies(name, text, low):
                text = _mask(pattern, group, name, text, counts)
        return text

    def redact(self, data, counts: dict | None = None, _depth: int = 0):
        """Return a redacted copy of ``data`` (dicts, lists, strings; other scalars as-is)."""
        if isinstance(data, str):
            return self.redact_text(str(data), counts)
        if isinstance(data, Mapping):
            if _depth > 40:
                return "[REDACTED:too_deep]"
            return {self.redact_text(str(k), counts): self.redact(v, counts, _depth + 1) for k, v in data.items()}
        if isinstance(data, (list, tuple, set, frozenset)):
            if _depth > 40:
                return "[REDACTED:too_deep]"
            return [self.redact(v, counts, _depth + 1) for v in data]
        if isinstance(data, (bytes, bytearray)):
            return self.redact_text(bytes(data).decode("utf-8", "replace"), counts)
        return data


def _mask(pattern: re.Pattern, group: int, name: str, text: str, counts: dict | None) -> str:
    mask = MASK.format(name)
    hits = 0

    def repl(match: re.Match) -> str:
        nonlocal hits
        value = match.group(group)
        if value is None or _is_digest_or_placeholder(value) or (value.endswith("]") and "[REDACTED:" in match.group(0)):
            return match.group(0)  # the tail of a mask already in place (https://[REDACTED:known_secret]@host)
        hits += 1
        if group == 0:
            return mask
        start, end = match.span(group)
        base = match.start(0)
        whole = match.group(0)
        return whole[: start - base] + mask + whole[end - base:]

    out = pattern.sub(repl, text)
    if hits and counts is not None:
        counts[name] = counts.get(name, 0) + hits
    return out


def _is_digest_or_placeholder(value: str) -> bool:
    v = value.strip()
    if _PLACEHOLDER.match(v) or v.startswith("[REDACTED"):
        return True
    # Only a whole digest standing alone: a 32-hex API key or a numeric password is a secret.
    return bool(_DIGEST.match(v))


# --------------------------------------------------------------------------------------
# Hook commands: the secret fragments of a command line
# --------------------------------------------------------------------------------------
_ASSIGNMENT = re.compile(r"(?:^|[\s;&|(])-{0,2}([A-Za-z_][A-Za-z0-9_.-]*)[=:]([^\s;&|)]+)")
_SECRET_FLAG = re.compile(r"(?:^|\s)-{1,2}([A-Za-z][A-Za-z0-9_-]*)\s+([^\s;&|)-][^\s;&|)]*)")
_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,20}://([^\s/@\"']+)@")
_LONG_TOKEN = re.compile(r"[A-Za-z0-9_+/=.~-]{16,}")


def _credential_like(value: str) -> bool:
    """A value that looks generated: letters and digits mixed, not a path, URL or digest."""
    return (len(value) >= 16 and bool(re.search(r"[A-Za-z]", value)) and bool(re.search(r"[0-9]", value))
            and not value.startswith(("/", "./", "~")) and "://" not in value and not _DIGEST.match(value))


def command_fragments(command) -> list:
    """The parts of a hook command line that are secret: values of secret-named assignments and
    flags (``TOKEN=...``, ``--password ...``) and credential-like assignment values, the
    user-info of URLs (``https://user:pass@host``), and long generated-looking tokens."""
    if not isinstance(command, str) or not command:
        return []
    found = []
    for name, value in _ASSIGNMENT.findall(command) + _SECRET_FLAG.findall(command):
        value = value.strip("\"'")
        if is_secret_name(name) or _credential_like(value):
            found.append(value)
    for userinfo in _USERINFO.findall(command):
        found.append(userinfo)
        found.extend(part for part in userinfo.split(":", 1)[1:] if part)
    found.extend(token for token in _LONG_TOKEN.findall(command) if _credential_like(token))
    return [value for value in dict.fromkeys(found) if _worth_tracking(value)]


def _leaf_strings(value) -> list:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        out = []
        for v in value.values():
            out.extend(_leaf_strings(v))
        return out
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            out.extend(_leaf_strings(v))
        return out
    return []


def find_findings(text: str, detectors: Mapping | None = None) -> list[tuple[str, int, int]]:
    """Return ``(detector, start, end)`` for every pattern finding in ``text`` (not overlapping)."""
    found: list[tuple[str, int, int]] = []
    taken: list[tuple[int, int]] = []
    low = text.lower()
    hinted = bool(_ANY_HINT.search(text))
    for name, (pattern, group) in (DETECTORS if detectors is None else detectors).items():
        if name in PREFILTERS and (not hinted or not _applies(name, text, low)):
            continue
        for match in pattern.finditer(text):
            value = match.group(group)
            if value is None or _is_digest_or_placeholder(value):
                continue
            start, end = match.span(group)
            if any(start < e and s < end for s, e in taken):
                continue
            taken.append((start, end))
            found.append((name, start, end))
    found.sort(key=lambda f: f[1])
    return found


def mask_excerpt(line: str, width: int = 160) -> str:
    """A masked, length-limited excerpt of one line (for scan samples)."""
    masked = Redactor().redact_text(line.rstrip("\r\n"))
    if len(masked) > width:
        masked = masked[: width - 3] + "..."
    return masked


# --------------------------------------------------------------------------------------
# File scanning (secret_scan module)
# --------------------------------------------------------------------------------------
def _expand_paths(paths) -> tuple[list[str], list[str]]:
    import glob
    import os

    files: dict[str, None] = {}
    missing = []
    for spec in paths:
        spec = os.path.expanduser(str(spec))
        matches = sorted(glob.glob(spec, recursive=True)) if glob.has_magic(spec) else ([spec] if os.path.exists(spec) else [])
        if not matches:
            missing.append(spec)
            continue
        for match in matches:
            if os.path.isdir(match):
                for root, dirs, names in os.walk(match):
                    dirs.sort()
                    for name in sorted(names):
                        full = os.path.join(root, name)
                        if os.path.isfile(full):
                            files[os.path.abspath(full)] = None
            elif os.path.isfile(match):
                files[os.path.abspath(match)] = None
    return list(files), missing


def _count_newlines(handle, limit: int) -> int:
    count = 0
    remaining = limit
    while remaining > 0:
        block = handle.read(min(1 << 20, remaining))
        if not block:
            break
        count += block.count(b"\n")
        remaining -= len(block)
    return count


def scan_paths(paths, since=None, baseline=None, max_samples: int = 10, known_values=()) -> dict:
    """Scan files for credential patterns (and optional known secret values).

    ``since`` maps file path -> byte offset (the ``offsets`` of a previous scan): only bytes
    after the offset are scanned and every finding there is new. A file shorter than its
    offset was truncated or rotated and is scanned from the start. Files absent from
    ``since`` are scanned whole (and their findings are new).

    Without ``since``, ``baseline`` (a previous ``by_detector`` dict, a previous result, or an
    integer total) is subtracted per detector to give ``new_findings``.
    """
    import os

    since = dict(since or {})
    detectors = dict(DETECTORS)
    known = Redactor(known_values)
    if known._known_re is not None:
        detectors = {"known_secret": (known._known_re, 0), **detectors}
    files, missing = _expand_paths(paths)
    by_detector: dict[str, int] = {}
    samples = []
    offsets = {}
    skipped = []
    reset = []
    errors = []
    for path in files:
        try:
            size = os.path.getsize(path)
            with open(path, "rb") as handle:
                head = handle.read(8192)
                if b"\0" in head:
                    skipped.append(path)
                    offsets[path] = size
                    continue
                start = since.get(path, 0)
                try:
                    start = int(start)
                except (TypeError, ValueError):
                    start = 0
                if start < 0 or start > size:
                    reset.append(path)
                    start = 0
                handle.seek(0)
                lineno = _count_newlines(handle, start) if start else 0
                handle.seek(start)
                for raw in handle:
                    lineno += 1
                    line = raw.decode("utf-8", "replace")
                    for name, _s, _e in find_findings(line, detectors):
                        by_detector[name] = by_detector.get(name, 0) + 1
                        if len(samples) < max_samples:
                            samples.append({"file": path, "line": lineno, "detector": name,
                                            "excerpt": _masked(line, known)})
                offsets[path] = handle.tell()
        except OSError as exc:
            errors.append(f"{path}: {exc.strerror or exc}")
    total = sum(by_detector.values())
    if since:
        new = total
        mode = "since"
    elif baseline is not None:
        mode = "baseline"
        base = baseline.get("by_detector", baseline) if isinstance(baseline, dict) else baseline
        if isinstance(base, dict):
            new = sum(max(0, count - int(base.get(name, 0) or 0)) for name, count in by_detector.items())
        else:
            new = max(0, total - int(base or 0))
    else:
        mode = "all"
        new = total
    return {
        "by_detector": dict(sorted(by_detector.items())),
        "total": total,
        "new_findings": new,
        "mode": mode,
        "samples": samples,
        "offsets": offsets,
        "files": files,
        "missing": missing,
        "skipped_binary": skipped,
        "reset": reset,
        "errors": errors,
    }


def _masked(line: str, known: Redactor, width: int = 160) -> str:
    masked = known.redact_text(line.rstrip("\r\n"))
    if len(masked) > width:
        masked = masked[: width - 3] + "..."
    return masked
