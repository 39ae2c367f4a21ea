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
import re

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import AttestationError, decode_document, detect_format, verify
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.trust import DECRYPT_MAX_AGE, verify_options
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import AccessDeniedError, ConflictError, InputError, NotFoundError

VERSION_STATES = ("enabled", "disabled", "destroy_scheduled")
MIN_PENDING_DAYS = 7
MAX_PENDING_DAYS = 30
# Mirrors plugins/doc_fragments/destruction.py (kms_key, kms_key_version): destruction is opt-in.
DESTRUCTION_ARGSPEC = dict(
    allow_destroy=dict(type="bool", default=False),
    pending_window_days=dict(type="int", default=30),
)
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
    from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import LockHeldError

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


def require_attestation(trust: dict, attestation, allowed, obj: str) -> tuple:
    """The decrypt gate every provider applies: verified evidence with an allowed measurement.

    ``trust`` holds the key's trust anchors, ``attestation`` what the caller presented
    (``format``, ``document`` and the ``request`` or ``nonce`` it was bound to). Returns the
    raw document and its format; raises AccessDeniedError naming the refused check.
    """
    if not attestation or not attestation.get("document"):
        raise AccessDeniedError("decrypt", obj, "the caller presented no attestation evidence")
    trust = trust or {}
    options = verify_options(trust, max_age=trust.get("max_age", DECRYPT_MAX_AGE),
                             request=attestation.get("request"), nonce=attestation.get("nonce"))
    try:
        raw = decode_document(attestation["document"])
        fmt = attestation.get("format") or detect_format(raw)
        verify(raw, fmt, options, allowed)
    except AttestationError as exc:
        raise AccessDeniedError("decrypt", obj, f"attestation refused ({exc})") from None
    return raw, fmt
