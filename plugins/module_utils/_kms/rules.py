# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rotation rules every KMS provider obeys.

Private module_utils: the API may change without notice between releases.

A key (``key_id``) has integer versions 1..n, each ``enabled``, ``disabled`` or
``destroy_scheduled``; exactly one enabled version is primary. The rules that decide
whether a change is allowed live here, once, so that every provider refuses the same
things with the same words before it touches anything.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import registry as formats_registry
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import AttestationError, decode_document, detect_format, verify
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.trust import DECRYPT_MAX_AGE, accepted_formats, verify_options
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import (
    AccessDeniedError, ConflictError, InputError, LockHeldError, MissingLibraryError, NotFoundError)

VERSION_STATES = ("enabled", "disabled", "destroy_scheduled")
MIN_PENDING_DAYS = 7
MAX_PENDING_DAYS = 30
# Mirrors plugins/doc_fragments/destruction.py (kms_key, kms_key_version): destruction is opt-in.
DESTRUCTION_ARGSPEC = dict(
    allow_destroy=dict(type="bool", default=False),
    pending_window_days=dict(type="int", default=30),
)
# The decrypt gate's runtime contract (docs/attestation.md, "The decrypt gate").
DECRYPT_PURPOSE_PREFIX = "kms-decrypt:"
MIN_NONCE_RANDOM = 16
REPLAY_CAPACITY = 4096
# Like KMS Encrypt: tokens and data keys, not bulk data.
MAX_PLAINTEXT = 4096
# Why an empty allow-list is refused, by the operation that was asked for it.
_EMPTY_ALLOWLIST = {
    "create": "allowed_measurements must not be empty: an empty allow-list locks every enclave out",
    "update the allow-list of": "an empty allow-list would lock every enclave out",
    "restore": "the snapshot's allow-list is empty",
}
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_+=.@:-]{0,255}$")


def utcnow_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_key_id(key_id, action: str = "use") -> str:
    if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
        raise InputError(action, f"key '{key_id}'",
                         "key_id must be 1-256 characters of letters, digits and /_+=.@:- starting with a letter or digit")
    return key_id


def find_version(state: dict, version: int, action: str) -> dict:
    for entry in state["versions"]:
        if entry["version"] == version:
            return entry
    known = ", ".join(str(v["version"]) for v in state["versions"])
    raise NotFoundError(action, f"version {version} of key '{state['key_id']}'", f"the key has versions {known}")


def check_next_version(state: dict, version: int, action: str = "create") -> None:
    """Versions are sequential: only n+1 may be created."""
    latest = max(v["version"] for v in state["versions"])
    if version != latest + 1:
        raise InputError(action, f"version {version} of key '{state['key_id']}'",
                         f"the key's latest version is {latest}; the next version can only be {latest + 1}")


def check_promote(state: dict, version: int) -> None:
    entry = find_version(state, version, "promote")
    if entry["state"] != "enabled":
        raise ConflictError("promote", f"version {version} of key '{state['key_id']}'", f"version {version} is {entry['state']}")


def check_set_state(state: dict, version: int, target: str) -> None:
    action = {"enabled": "enable", "disabled": "disable", "destroy_scheduled": "schedule destruction of"}[target]
    find_version(state, version, action)
    if target != "enabled" and state["primary_version"] == version:
        raise ConflictError(action, f"version {version} of key '{state['key_id']}'",
                            f"version {version} is the primary version; promote another version first")


def check_allowlist(measurements, action: str, key_id: str) -> None:
    """An empty allow-list locks every enclave out: no operation ever writes one."""
    if not measurements:
        raise InputError(action, f"key '{key_id}'", _EMPTY_ALLOWLIST[action])


def check_target_state(target: str, version: int, key_id: str) -> None:
    if target not in VERSION_STATES:
        raise InputError("change", f"version {version} of key '{key_id}'", f"unknown state '{target}'")


def check_plaintext(plaintext, key_id: str) -> None:
    if not isinstance(plaintext, bytes) or not 0 < len(plaintext) <= MAX_PLAINTEXT:
        raise InputError("encrypt", f"data under key '{key_id}'", f"plaintext must be 1-{MAX_PLAINTEXT} bytes")


def check_encrypt_version(state: dict, version: int) -> None:
    """Only an enabled version encrypts."""
    entry = find_version(state, version, "encrypt")
    if entry["state"] != "enabled":
        raise ConflictError("encrypt", f"data under version {version} of key '{state['key_id']}'", f"version {version} is {entry['state']}")


def check_decrypt_version(state: dict, version: int, obj: str) -> None:
    """Only an enabled version decrypts (a disabled one is how a version is retired)."""
    entry = find_version(state, version, "decrypt")
    if entry["state"] != "enabled":
        raise AccessDeniedError("decrypt", obj, f"version {version} is {entry['state']}")


def check_record_env(state: dict, env: str) -> None:
    """A recorded environment is never changed."""
    if state.get("env") not in (None, env):
        raise ConflictError("record the environment of", f"key '{state['key_id']}'", f"it already belongs to env '{state['env']}'")


def check_pending_days(days: int, obj: str) -> None:
    if not MIN_PENDING_DAYS <= days <= MAX_PENDING_DAYS:
        raise InputError("schedule destruction of", obj,
                         f"pending_window_days must be between {MIN_PENDING_DAYS} and {MAX_PENDING_DAYS}, got {days}")


def public_state(state: dict) -> dict:
    """The contract shape of a key: no material, no trust secrets."""
    return {
        "key_id": state["key_id"],
        "primary_version": state["primary_version"],
        "versions": [{"version": v["version"], "state": v["state"], "created_at": v["created_at"]} for v in state["versions"]],
        "allowed_measurements": list(state["allowed_measurements"]),
        "measurement_format": state.get("measurement_format", "sha384"),
        "env": state.get("env"),
        "pending_deletion_at": state.get("pending_deletion_at"),
    }


def check_lock_request(owner, ttl_seconds, obj: str) -> None:
    """A lock needs an owner and a positive lifetime; a zero TTL would protect nothing."""
    if not owner:
        raise InputError("acquire the rotation lock on", obj, "lock owner must not be empty")
    if not isinstance(ttl_seconds, int) or ttl_seconds <= 0:
        raise InputError("acquire the rotation lock on", obj, f"ttl must be a positive number of seconds, got {ttl_seconds!r}")


def lock_conflict(key_id: str, lock, owner: str, break_stale: bool, now=None):
    """The LockHeldError another owner's lock causes for ``owner``, or None if it may take it."""
    if not lock or lock["owner"] == owner:
        return None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    expires = datetime.datetime.strptime(lock["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    if now < expires:
        return LockHeldError("acquire the rotation lock on", f"key '{key_id}'",
                             f"another rotation holds it (owner '{lock['owner']}', since {lock['acquired_at']}, expires {lock['expires_at']}); "
                             "if that run is gone (a killed container or controller), a rollback can break it with "
                             f"break_lock_owner='{lock['owner']}'")
    if not break_stale:
        return LockHeldError("acquire the rotation lock on", f"key '{key_id}'",
                             f"a stale lock of owner '{lock['owner']}' expired at {lock['expires_at']}; confirm that run is gone, "
                             "then retry with break_stale_lock=true")
    return None


def next_lock(key_id: str, lock, owner: str, ttl_seconds: int, break_stale: bool, takeover_from, now) -> dict:
    """The lock record ``owner`` writes over ``lock`` (the key's current one, or None), or the refusal.

    The same owner renews its lock (same ``acquired_at``, later expiry); another owner's lock is
    taken only when ``takeover_from`` names it (the caller proved that holder is gone) or when it
    expired and ``break_stale`` confirms that run is gone."""
    if lock and lock["owner"] != owner:
        if not (takeover_from and lock["owner"] == takeover_from):
            error = lock_conflict(key_id, lock, owner, break_stale, now)
            if error:
                raise error
        lock = None
    return {"owner": owner, "acquired_at": lock["acquired_at"] if lock else now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "expires_at": (now + datetime.timedelta(seconds=ttl_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")}


def check_release(key_id: str, lock, owner: str) -> bool:
    """Whether there is a lock to release (False: none); another owner's lock is refused."""
    if not lock:
        return False
    if lock["owner"] != owner:
        raise LockHeldError("release the rotation lock on", f"key '{key_id}'", f"it is held by another owner ('{lock['owner']}')")
    return True


def decrypt_purpose(key_id: str) -> str:
    """The only operation_purpose the decrypt gate of ``key_id`` accepts (docs/attestation.md)."""
    return DECRYPT_PURPOSE_PREFIX + key_id


def purpose_nonce(purpose: str) -> str:
    """A fresh nonce bound to ``purpose``: hex of ``purpose``, one NUL byte and 32 random bytes.

    nitro and jwt evidence carry no purpose field; their nonce is where the purpose is bound.
    """
    return (purpose.encode("utf-8") + b"\0" + os.urandom(32)).hex()


def _nonce_purpose(nonce) -> str | None:
    """The purpose a nonce made by ``purpose_nonce`` is bound to, or None."""
    try:
        raw = bytes.fromhex(nonce or "")
    except ValueError:
        return None
    purpose, sep, rest = raw.partition(b"\0")
    if not sep or len(rest) < MIN_NONCE_RANDOM:
        return None
    return purpose.decode("utf-8", "replace")


def _check_purpose(evidence, purpose: str, obj: str) -> None:
    claim = formats_registry.attestation_format(evidence.format).purpose_claim
    if claim:  # the format states the purpose in a signed claim (alfred: operation_purpose)
        got = evidence.details.get(claim)
        if got != purpose:
            raise AccessDeniedError("decrypt", obj, f"attestation refused (claims: the evidence was issued for {claim} "
                                    f"'{str(got)[:64]}', not '{purpose}')")
    elif _nonce_purpose(evidence.nonce) != purpose:
        raise AccessDeniedError("decrypt", obj, f"attestation refused (nonce_mismatch: the {evidence.format} evidence's nonce is "
                                f"not bound to '{purpose}' (hex of the purpose, a NUL byte and at least {MIN_NONCE_RANDOM} "
                                "random bytes))")


def replay_tokens(evidence, raw: bytes) -> list:
    """What the gate remembers of accepted evidence, hashed and short: its nonce, which every
    evidence the gate accepts carries (the same document, or another one answering the same
    challenge, has the same nonce); the document's digest for evidence without one."""
    if evidence.nonce:
        return ["n" + hashlib.sha256(f"{evidence.format}|{evidence.nonce}".encode("utf-8")).hexdigest()[:31]]
    return ["d" + hashlib.sha256(raw).hexdigest()[:31]]


def replay_refusal(obj: str) -> AccessDeniedError:
    return AccessDeniedError("decrypt", obj, "attestation refused (replay: this evidence or its nonce was already used to "
                             "decrypt; fetch fresh evidence for every decrypt)")


def replay_cache_full(obj: str, live: int, capacity: int) -> AccessDeniedError:
    # Fail closed: a bounded cache that forgot fresh evidence would let it be replayed.
    return AccessDeniedError("decrypt", obj, f"attestation refused (replay: {live} evidence records are still fresh, the "
                             f"replay cache holds at most {capacity}; retry when older evidence has expired)")


def remember_evidence(seen, tokens: list, now: int, window: int, obj: str) -> dict:
    """The replay cache ``seen`` ({token: expiry}) with ``tokens`` added until ``now + window``.

    Raises AccessDeniedError when a token is already there (that evidence, or its nonce, was
    accepted before and is still fresh) or when the cache is full of fresh entries.
    """
    fresh = {token: expiry for token, expiry in (seen or {}).items() if isinstance(expiry, int) and expiry > now}
    if any(token in fresh for token in tokens):
        raise replay_refusal(obj)
    if len(fresh) + len(tokens) > REPLAY_CAPACITY:
        raise replay_cache_full(obj, len(fresh), REPLAY_CAPACITY)
    fresh.update({token: now + window for token in tokens})
    return fresh


def require_attestation(trust: dict, attestation, allowed, obj: str, key_id: str, remember) -> tuple:
    """The decrypt gate every provider applies: verified evidence with an allowed measurement.

    The gate decides from the key alone: the format is read from the document and must be one the
    key's trust accepts (``trust.accepted_formats``), the evidence must be issued for
    ``decrypt_purpose(key_id)``, and evidence (or a nonce) accepted before is refused while it is
    fresh. What the caller adds (``format``, ``request``, ``nonce``) can only narrow this.
    ``remember(tokens, now, window)`` records the tokens atomically in the key's replay cache
    (``remember_evidence``) and raises AccessDeniedError on a replay. Returns the raw document and
    its format; raises AccessDeniedError naming the refused check.
    """
    if not attestation or not attestation.get("document"):
        raise AccessDeniedError("decrypt", obj, "the caller presented no attestation evidence")
    trust = trust or {}
    try:
        raw = decode_document(attestation["document"])
        fmt = detect_format(raw)
        named = attestation.get("format")
        if named and named != fmt:
            raise AttestationError("unknown_format", f"the document is {fmt} evidence, not {named}")
        formats = accepted_formats(trust)
        if fmt not in formats:
            raise AttestationError("trust", f"the key's trust does not accept {fmt} evidence (it accepts "
                                            f"{', '.join(formats) or 'none: it holds no trust anchor'})")
        options = verify_options(trust, max_age=trust.get("max_age", DECRYPT_MAX_AGE),
                                 request=formats_registry.attestation_format(fmt).verify_request(attestation.get("request")),
                                 nonce=attestation.get("nonce"))
        options.formats = formats
        evidence = verify(raw, fmt, options, allowed)
    except AttestationError as exc:
        raise AccessDeniedError("decrypt", obj, f"attestation refused ({exc})") from None
    except (ImportError, MissingLibraryError):
        raise
    except Exception as exc:  # noqa: BLE001 pylint: disable=broad-exception-caught
        # Hostile evidence the verifier did not expect: a refusal, never a traceback.
        raise AccessDeniedError("decrypt", obj, f"attestation refused (malformed: evidence could not be processed "
                                f"({exc.__class__.__name__}))") from None
    _check_purpose(evidence, decrypt_purpose(key_id), obj)
    remember(replay_tokens(evidence, raw), int(options.now.timestamp()), options.max_age + 2 * options.clock_skew)
    return raw, fmt
