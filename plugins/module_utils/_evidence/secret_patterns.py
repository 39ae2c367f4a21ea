# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Secret detectors and the redactor used by the evidence callback and ``secret_scan``.

Private module_utils: the API may change without notice between releases.

Two mechanisms, applied in this order by :class:`Redactor`:

1. *Known values*: values learnt from a secret source (see docs/evidence.md: variables whose
   **names** mark them secret, :func:`is_secret_name`, vault-encrypted values, secret lookups,
   hook command fragments) are removed wherever they appear, in raw form, JSON-escaped once
   and twice, URL-encoded and base64 (standard and URL-safe alphabets, also when the value sits
   inside a longer base64 stream, for example HTTP Basic credentials), also wrapped over lines
   (``base64 -w 64``/``-w 76``, a terminal, a log). Only values of at least
   :data:`MIN_KNOWN_LENGTH` characters are tracked, and obvious non-secrets (booleans,
   short numbers, state words) are ignored so that they do not blank unrelated text.
2. *Patterns*: well-known credential shapes (AWS keys, PEM private keys, JWTs, bearer and
   OAuth tokens, ``password=...``/``token: ...`` style assignments and headers) are masked as
   ``[REDACTED:<detector>]``.

A value a detector found right after a secret keyword (``Bearer``, ``password=``, ``token:``,
``Authorization:``, ...) is masked whatever its shape, digest-like hex included. Only the
detectors that look at a value's shape alone leave whole SHA-256/SHA-384 digests readable,
which cannot match them anyway: the digests the collection writes (chain hashes, measurements,
canary and command digests) never follow a secret keyword.
"""

from __future__ import annotations

import base64
import bisect
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

MIN_KNOWN_LENGTH = 6
MASK = "[REDACTED:{}]"

# Variable / environment / option names whose values are secret: a secret word anywhere, or a
# short one as the last part of the name (db_pass, ansible_become_pass, MYSQL_PWD, vault_creds,
# signing_key). Not PWD/OLDPWD (the shell's working directory), not a bare "key" (--key names the
# KMS key id in hook commands) and not *public*_key, kms_key, s3_key and the like.
SECRET_NAME_RE = re.compile(
    r"secret|password|passwd|passphrase|token|credential|private|api_?key|access_?key|session|auth_?key|cookie|bearer|jwt"
    r"|[_.-](?:pass|pwd|pw|creds?|key)$",
    re.IGNORECASE,
)
_KEY_SUFFIX_ONLY = re.compile(r"[_.-]key$", re.IGNORECASE)
# *_key names that name a key rather than hold one: a KMS key id or ARN, an S3 object, a sort key.
_KEY_NAME_NOT_SECRET = re.compile(r"(?:public|kms|primary|partition|sort|cache|s3|object|idempotency|routing|index)[_.-]key$",
                                  re.IGNORECASE)

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
# Between two characters of a known value: a line break (raw, or JSON-escaped once or twice) and the
# indentation after it, so that a secret wrapped over lines (base64 -w 64 / -w 76, a terminal, a log)
# is found too. The text is searched a second time with these breaks taken out (one linear pass,
# positions mapped back), which keeps the pattern of known values a plain alternation of literals.
_BREAK = re.compile(r"(?:\r|\\{1,2}r)?(?:\n|\\{1,2}n)[ \t]*")
_SPLIT_MIN = 8
# Base64 forms are made for values up to this length (a vaulted file of 100 KB gets its raw and
# JSON forms only); output fields are cut at max_output (16384) anyway.
_B64_MAX = 4096
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
            r"(?i:password|passwd|passphrase|pwd|api[_-]?key|secret[_-]?key|auth[_-]?token|session[_-]?token"
            r"|(?<![A-Za-z])pass|(?<![A-Za-z])pw)"
            r"\\?[\"']?\s{0,3}[:=]\s{0,3}\\?[\"']?"
            r"([^\s\"'\\&,;}\]{\[]{6,})"
        ),
        1,
    ),
    # token=..., "secret": "...", X-Vault-Token: ..., Private-Token: ..., Cookie: sid=...: on one line.
    "secret_assignment": (
        re.compile(
            r"(?i:secret|token|credentials?|cookie)"
            r"\\?[\"']?[ \t]{0,3}[:=][ \t]{0,3}\\?[\"']?"
            r"([^\s\"'\\&,;}\]{\[]{6,})"
        ),
        1,
    ),
    # Authorization: Basic <b64>, Authorization: token <t>, Proxy-Authorization: ... (Bearer: bearer_token).
    "authorization_header": (
        re.compile(
            r"(?i:authorization)\\?[\"']?[ \t]{0,3}[:=][ \t]{0,3}\\?[\"']?"
            r"(?:(?!(?i:bearer)\s)[A-Za-z][A-Za-z0-9-]{1,19}[ \t]{1,3})?"
            r"(?!(?i:bearer|basic|digest|negotiate|ntlm|token)(?:\s|$))([^\s\"'\\,;}\]{\[]{6,})"
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

# Detectors whose value follows a secret keyword (Bearer, password=, token:, Authorization:, a
# SecretAccessKey column, user:password@): the value is a secret whatever its shape, a 64-hex
# string included, and so is a known value (a token made with ``openssl rand -hex 32``). The other
# detectors match a shape that no digest has.
KEYED_DETECTORS = frozenset({
    "known_secret",
    "aws_secret_access_key", "bearer_token", "oauth_token_field", "password_assignment", "secret_assignment",
    "authorization_header", "basic_auth_url", "aws_cli_credentials", "aws_cli_text_secret", "aws_cli_text_token",
})

# Cheap literal pre-checks: a detector's regex only runs when its hint is present (the regexes
# with look-behinds cost tens of microseconds per string; the callback redacts every field).
_AWS_ID_PREFIXES = ("AKIA", "ASIA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "AGPA", "ABIA", "ACCA")
_OAUTH_HINTS = ("ya29.", "gho_", "ghp_", "ghu_", "ghs_", "ghr_", "github_pat_", "xox", "glpat-", "1//0")
_PASSWORD_HINTS = ("pass", "pw", "api_key", "api-key", "apikey", "secret_key", "secret-key", "secretkey",
                   "auth_token", "auth-token", "authtoken", "session_token", "session-token", "sessiontoken")
PREFILTERS = {
    "private_key": lambda text, low: "PRIVATE KEY" in text,
    "jwt": lambda text, low: "eyJ" in text,
    "aws_access_key_id": lambda text, low: any(p in text for p in _AWS_ID_PREFIXES),
    "aws_secret_access_key": lambda text, low: "aws" in low or "secret" in low,
    "bearer_token": lambda text, low: "bearer" in low,
    "oauth_token": lambda text, low: any(h in text for h in _OAUTH_HINTS),
    "oauth_token_field": lambda text, low: "_token" in low or "client_secret" in low,
    "password_assignment": lambda text, low: any(h in low for h in _PASSWORD_HINTS),
    "secret_assignment": lambda text, low: "secret" in low or "token" in low or "credential" in low or "cookie" in low,
    "authorization_header": lambda text, low: "authorization" in low,
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
    r"|(?i:aws|secret|bearer|token|pass|pw|api.?key|credential|cookie|authorization)"
    r"|CREDENTIALS\t|b3JpZ2lu|GZXIvYXdz"
)


def _applies(name: str, text: str, low: str) -> bool:
    check = PREFILTERS.get(name)
    return True if check is None else check(text, low)


def is_secret_name(name) -> bool:
    if not isinstance(name, str):
        return False
    match = SECRET_NAME_RE.search(name)
    if match is None:
        return False
    # "public_key", "signing_public_key", "kms_key": a *_key name is secret unless it says what key it names.
    return not (_KEY_SUFFIX_ONLY.fullmatch(match.group(0)) and ("public" in name.lower() or _KEY_NAME_NOT_SECRET.search(name)))


def _worth_tracking(value: str) -> bool:
    if len(value) < MIN_KNOWN_LENGTH:
        return False
    low = value.strip().lower()
    if low in _NOT_SECRET_VALUES or _ALL_DIGITS.match(low) or _PLACEHOLDER.match(value.strip()):
        return False
    if "{{" in value or "{%" in value:  # an untemplated expression, not the secret itself
        return False
    return True


def _names_a_path(value) -> bool:
    """A secret-named variable that holds a file's path (ALFRED_EVIDENCE_SIGNING_KEY,
    ansible_ssh_private_key_file, a password file): the file's content is the secret, not its
    name, and the path must stay readable in error messages ("Could not read ... key '<path>'").
    A path here is one that exists or whose directory exists (not the root directory: a base64
    secret may start with a slash)."""
    if not isinstance(value, str) or not value.startswith(("/", "~/", "./", "../")) or len(value) > 4096:
        return False
    if any(c.isspace() for c in value) or "\0" in value:
        return False
    import os

    try:
        path = os.path.abspath(os.path.expanduser(value))
        parent = os.path.dirname(path)
        return os.path.exists(path) or (parent != os.path.dirname(parent) and os.path.isdir(parent))
    except (OSError, ValueError):
        return False


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


def _json_forms(value: str) -> set[str]:
    """The value inside a JSON string, escaped once and twice (a JSON document inside a JSON string:
    a module's stdout recorded in a result, an API error quoting its request)."""
    out = set()
    for ascii_only in (True, False):
        once = json.dumps(value, ensure_ascii=ascii_only)[1:-1]
        out |= {once, json.dumps(once, ensure_ascii=ascii_only)[1:-1]}
    return out


def _forms(value: str) -> dict[str, bool]:
    """Every form of ``value`` to remove -> whether a line break may sit between two characters."""
    texts = {value} | _json_forms(value)
    encoded = _b64_variants(value.encode("utf-8")) if len(value) <= _B64_MAX else set()
    urls = {quote(value, safe=""), quote(value), quote_plus(value)} | {quote(form, safe="") for form in encoded}
    # Text and base64 (base64 -w 76, PEM-style bodies) may be wrapped over lines; URL-encoded forms are not.
    forms = {form: False for form in urls}
    forms.update({form: len(form) >= _SPLIT_MIN for form in texts | encoded})
    return forms


class Redactor:
    """Removes known secret values and masks credential patterns from text and data."""

    def __init__(self, known_values: Iterable[str] = (), detectors: Mapping | None = None):
        self._detectors = DETECTORS if detectors is None else detectors
        self._forms: dict[str, bool] = {}
        self._known_re = None
        self._split_re = None
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
            for form, splittable in _forms(value).items():
                if len(form) >= MIN_KNOWN_LENGTH and form not in self._forms:
                    self._forms[form] = splittable
                    added += 1
        if added:
            self._known_re = None  # compiled again on first use: learning comes in many small batches
        return added

    def known_pattern(self):
        """The compiled pattern of every known form, or None when nothing is known."""
        self._compile()
        return self._known_re

    def _compile(self):
        if self._known_re is None and self._forms:
            self._known_re = _literals_pattern(self._forms)
            split = [f for f, splittable in self._forms.items() if splittable]
            self._split_re = _literals_pattern(split) if split else None

    def _remove_known(self, text: str, counts: dict | None) -> str:
        self._compile()
        if self._known_re is None:
            return text
        mask = MASK.format("known_secret")
        text, hits = self._known_re.subn(mask, text)
        if self._split_re is not None and _BREAK.search(text):
            text, wrapped = _remove_wrapped(self._split_re, text, mask)
            hits += wrapped
        if hits and counts is not None:
            counts["known_secret"] = counts.get("known_secret", 0) + hits
        return text

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
        return self.add_known(v for v in values if not _names_a_path(v))

    @property
    def known_count(self) -> int:
        return len(self._forms)

    # -- redaction ----------------------------------------------------------------------
    def redact_text(self, text: str, counts: dict | None = None) -> str:
        if not text:
            return text
        text = self._remove_known(text, counts)
        if len(text) < MIN_KNOWN_LENGTH or not _ANY_HINT.search(text):
            return text
        low = text.lower()
        for name, (pattern, group) in self._detectors.items():
            if _applies(name, text, low):
                text = _mask(pattern, group, name, text, counts)
        return text

    def redact_lines(self, lines: list, counts: dict | None = None) -> list:
        """Lines of one output stream, redacted as one text: a secret wrapped over several of them is
        one value (its lines become one mask, so fewer lines may come back)."""
        return self.redact_text("\n".join(lines), counts).split("\n") if lines else []

    def redact(self, data, counts: dict | None = None, _depth: int = 0):
        """Return a redacted copy of ``data`` (dicts, lists, strings; other scalars as-is)."""
        if isinstance(data, str):
            return self.redact_text(str(data), counts)
        if isinstance(data, Mapping):
            if _depth > 40:
                return "[REDACTED:too_deep]"
            return {self.redact_text(str(k), counts): self.redact_lines(v, counts) if _is_lines(k, v) else
                    self.redact(v, counts, _depth + 1) for k, v in data.items()}
        if isinstance(data, (list, tuple, set, frozenset)):
            if _depth > 40:
                return "[REDACTED:too_deep]"
            return [self.redact(v, counts, _depth + 1) for v in data]
        if isinstance(data, (bytes, bytearray)):
            return self.redact_text(bytes(data).decode("utf-8", "replace"), counts)
        return data


def _literals_pattern(words) -> re.Pattern:
    """One pattern matching any of ``words``, longest first, as a prefix tree: at each position the
    engine follows one branch instead of trying every known form in turn (5x faster with 40
    secrets), and never backtracks further than the longest word."""
    words = sorted(set(words))
    try:
        return re.compile(_trie(words, 0))
    except (RecursionError, re.error):  # thousands of nested prefixes: the flat alternation is as correct
        return re.compile("|".join(map(re.escape, sorted(words, key=len, reverse=True))))


def _trie(words: list, depth: int) -> str:
    """The pattern of the suffixes (from ``depth``) of sorted ``words`` sharing ``depth`` characters."""
    first, last = words[0], words[-1]
    k = depth
    while k < len(first) and first[k] == last[k]:
        k += 1
    prefix = re.escape(first[depth:k])
    terminal = len(first) == k  # sorted: a word that is the common prefix comes first
    rest = words[1:] if terminal else words
    if not rest:
        return prefix
    branches, i = [], 0
    while i < len(rest):
        j = i
        while j < len(rest) and rest[j][k] == rest[i][k]:
            j += 1
        branches.append(_trie(rest[i:j], k))
        i = j
    alternation = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    # Greedy optional group: the longer word wins, the shorter one still matches when it is all there is.
    return prefix + ("(?:" + alternation + ")?" if terminal else alternation)


def _is_lines(key, value) -> bool:
    """The lines of one output stream (stdout_lines, a hook's stdout_tail)."""
    return (isinstance(key, str) and key.endswith(("_lines", "_tail")) and isinstance(value, list)
            and all(isinstance(line, str) for line in value))


def _remove_wrapped(pattern: re.Pattern, text: str, mask: str) -> tuple[str, int]:
    """Mask the matches of ``pattern`` in ``text`` read without its line breaks (_BREAK)."""
    pieces, starts, origins = [], [], []
    squeezed_len = pos = 0
    for brk in _BREAK.finditer(text):
        if brk.start() > pos:
            pieces.append(text[pos:brk.start()])
            starts.append(squeezed_len)
            origins.append(pos)
            squeezed_len += brk.start() - pos
        pos = brk.end()
    if pos < len(text):
        pieces.append(text[pos:])
        starts.append(squeezed_len)
        origins.append(pos)

    def origin(i: int) -> int:
        k = bisect.bisect_right(starts, i) - 1
        return origins[k] + (i - starts[k])

    out, done, hits = [], 0, 0
    for match in pattern.finditer("".join(pieces)):
        start, end = origin(match.start()), origin(match.end() - 1) + 1
        out.append(text[done:start])
        out.append(mask)
        done = end
        hits += 1
    if not hits:
        return text, 0
    out.append(text[done:])
    return "".join(out), hits


def _mask(pattern: re.Pattern, group: int, name: str, text: str, counts: dict | None) -> str:
    mask = MASK.format(name)
    keyed = name in KEYED_DETECTORS
    hits = 0

    def repl(match: re.Match) -> str:
        nonlocal hits
        value = match.group(group)
        if value is None or _is_digest_or_placeholder(value, keyed) or (value.endswith("]") and "[REDACTED:" in match.group(0)):
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


def _is_digest_or_placeholder(value: str, keyed: bool = False) -> bool:
    v = value.strip()
    if _PLACEHOLDER.match(v) or v.startswith("[REDACTED"):
        return True
    # A whole digest standing alone stays readable; after a secret keyword (keyed) nothing does:
    # "Bearer <64 hex>" and "password=<64 hex>" are secrets, and so is a 32-hex API key anywhere.
    return not keyed and bool(_DIGEST.match(v))


# --------------------------------------------------------------------------------------
# Hook commands: the secret fragments of a command line
# --------------------------------------------------------------------------------------
_ASSIGNMENT = re.compile(r"(?:^|[\s;&|(\"'])-{0,2}([A-Za-z_][A-Za-z0-9_.-]*)[=:]([^\s;&|)]+)")
_SECRET_FLAG = re.compile(r"(?:^|\s)-{1,2}([A-Za-z][A-Za-z0-9_-]*)\s+([^\s;&|)-][^\s;&|)]*)")
_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{1,20}://([^\s/@\"']+)@")
_LONG_TOKEN = re.compile(r"[A-Za-z0-9_+/=.~-]{16,}")
# Header style, as curl -H takes it: "X-Token: v", "Authorization: Basic v", --header=X-Api-Key:v.
_HEADER = re.compile(r"(?<![A-Za-z0-9_-])([A-Za-z][A-Za-z0-9_-]{0,63}):[ \t]{0,8}([^\s\"';&|]+)(?:[ \t]{1,3}([^\s\"';&|]+))?")
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|pass|session|signature|credential", re.IGNORECASE)
# curl/wget -u user:password, --user=user:password, --proxy-user user:password.
_USER_FLAG = re.compile(r"(?:^|\s)(?:-u|--user|--proxy-user)(?:=|[ \t]+)[\"']?([^\s\"':;&|)]{1,256}):([^\s\"';&|)]{1,1024})")


def _credential_like(value: str) -> bool:
    """A value that looks generated: letters and digits mixed, not a path, URL or digest."""
    return (len(value) >= 16 and bool(re.search(r"[A-Za-z]", value)) and bool(re.search(r"[0-9]", value))
            and not value.startswith(("/", "./", "~")) and "://" not in value and not _DIGEST.match(value))


def command_fragments(command) -> list:
    """The parts of a hook command line that are secret: values of secret-named assignments and
    flags (``TOKEN=...``, ``--password ...``) and credential-like assignment values, the
    user-info of URLs (``https://user:pass@host``) and of ``-u user:pass``, the values of
    secret-looking headers (``-H 'X-Token: v'``, ``Authorization: Basic v``), and long
    generated-looking tokens."""
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
    for user, password in _USER_FLAG.findall(command):
        found.extend((f"{user}:{password}", password))
    for name, first, second in _HEADER.findall(command):
        if _SECRET_HEADER.search(name):
            if second and first.isalpha() and len(first) <= 20:  # a scheme: "Basic <v>", "token <v>"
                found.extend((f"{first} {second}", second))
            else:
                found.append(first)
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
            if value is None or _is_digest_or_placeholder(value, name in KEYED_DETECTORS):
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
    if known.known_pattern() is not None:
        detectors = {"known_secret": (known.known_pattern(), 0), **detectors}
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
