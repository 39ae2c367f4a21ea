# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one guard every change of a key goes through (DESIGN.md invariant 8).

Private module_utils: the API may change without notice between releases.

A key belongs to the environment recorded at its creation (or first rotation). A module that
changes keys takes the options ``env`` and ``confirm_production`` (doc fragment
``alfred.tee_kms.env_guard``) and gets its provider wrapped in ``GuardedProvider``
(``TeeKmsModule(..., env_guard=True)``), so that no module can forget a check:

- given ``env``, a key recorded for another environment is refused as soon as it is read,
  in check mode too (a rehearsal for the wrong environment fails as the real run would);
- a provider call that changes a production key (recorded ``production``, or ``env=production``)
  is refused without ``confirm_production=true``, whether or not ``env`` was given. Check mode
  and unchanged keys make no such call, so they are never refused for it.

``existing_key_conflicts`` is the other half of the invariant: creating a key that exists never
replaces its trust, allow-list or environment silently.
"""

from __future__ import annotations

import json

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import ConflictError, InputError

ENVIRONMENTS = ("staging", "production")

# Mirrors plugins/doc_fragments/env_guard.py.
ARGUMENT_SPEC = dict(
    env=dict(type="str", choices=list(ENVIRONMENTS)),
    confirm_production=dict(type="bool", default=False),
)

# Provider calls that change a key (the first argument is always the key id), and how a refusal names each.
CHANGES = {
    "create_key": "create",
    "record_env": "record the environment of",
    "set_attestation_trust": "update the attestation trust of",
    "schedule_key_deletion": "schedule deletion of",
    "create_version": "create a version of",
    "set_primary": "promote a version of",
    "set_version_state": "change the state of a version of",
    "set_allowed_measurements": "update the allow-list of",
    "restore": "roll back",
    "save_snapshot": "record the snapshot of",
    "acquire_lock": "acquire the rotation lock on",
    "release_lock": "release the rotation lock on",
}
# Reads of one part of a key's state: with env given they read the whole state, so its env is checked too.
PART_READS = {"get_lock": "lock", "get_snapshot": "snapshot"}


def check_key_env(key: dict, env: str, action: str = "rotate") -> bool:
    """A key belongs to the environment it was created (or first rotated) for: a run for another
    environment is refused before it changes anything, whatever ALFRED_ENV says. A production key
    is so only ever changed by an env=production run, which needs confirm_production.

    Returns False for a key that records no environment yet (it is recorded at its next rotation).
    """
    recorded = key.get("env")
    if recorded is None:
        return False
    if recorded != env:
        needs = f"env={recorded}" + (" with confirm_production=true" if recorded == "production" else "")
        raise ConflictError(action, f"key '{key['key_id']}'", f"it belongs to env '{recorded}', not to the run's env '{env}'; "
                            f"it is only changed by a run with {needs}")
    return True


def check_change(key_id: str, recorded, env, confirm_production: bool, action: str) -> None:
    """Refuse a change of a production key without confirm_production (and of another env's key)."""
    if env and recorded is not None:
        check_key_env({"key_id": key_id, "env": recorded}, env, action)
    if "production" in (recorded, env) and not confirm_production:
        why = "it belongs to env 'production'" if recorded == "production" else "env is production"
        raise InputError(action, f"key '{key_id}'", f"{why}, and every change of a production key needs confirm_production=true "
                         "(--confirm-production); nothing was changed")


class GuardedProvider:
    """A provider whose changes are checked by ``check_change`` first; every other attribute is the provider's."""

    def __init__(self, provider, env=None, confirm_production=False):
        self._provider = provider
        self._env = env or None
        self._confirm = bool(confirm_production)
        self._recorded = {}  # key id -> the env the key records (None: none, or no such key)

    def __getattr__(self, name):
        target = getattr(self._provider, name)
        if name in ("describe_key", "find_key"):
            return lambda key_id: self._seen(key_id, target(key_id))
        if name in PART_READS and self._env:
            return lambda key_id: self.describe_key(key_id).get(PART_READS[name])
        if name in CHANGES:
            return self._guarded(name, target)
        return target

    def _seen(self, key_id, state):
        self._recorded[key_id] = (state or {}).get("env")
        if state is not None and self._env:
            check_key_env(dict(state, key_id=key_id), self._env, "change")
        return state

    def _guarded(self, name, call):
        def change(key_id, *args, **kwargs):
            if key_id not in self._recorded:  # a module that changes a key it did not read first
                self._seen(key_id, self._provider.find_key(key_id))
            check_change(key_id, self._recorded[key_id], self._env, self._confirm, CHANGES[name])
            if name in ("create_key", "record_env"):
                self._recorded.pop(key_id)  # the key records an env now: read again before the next change
            return call(key_id, *args, **kwargs)
        return change


def _short(measurements) -> str:
    return ", ".join(f"{m[:16]}..." for m in measurements) or "none"


def _brief(value) -> str:
    """A trust value for a message: JSON, long ones (certificates, JWKS) cut."""
    text = "unset" if value is None else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _with_diff(error, name, before, after):
    """The refusal, carrying the diff of what it refused (TeeKmsModule.fail returns it)."""
    error.diff = {"before": {name: before}, "after": {name: after}}
    return error


def existing_key_conflicts(key_id: str, current: dict, allowed, env, trust, update_trust: bool, exact_allowlist: bool) -> dict:
    """Creating key ``key_id`` that exists (``current``, its provider state): raise unless the request
    matches what the key holds. An environment never changes, so a different one is refused; a
    different trust is refused unless ``update_trust``. An allow-list changes through a rotation: a
    different one is refused with ``exact_allowlist`` (playbooks/create_key.yml), else left as it is
    with a warning (a play that creates a key, then widens its allow-list, stays idempotent).
    Returns ``{trust: {before, after} of the trust to replace, or {}, warnings: [..]}``.

    ``allowed`` are the requested measurements normalised (None: not given); ``trust`` the validated
    trust (None: not given)."""
    obj = f"key '{key_id}'"
    warnings = []
    if allowed is not None and sorted(allowed) != sorted(current["allowed_measurements"]):
        if not exact_allowlist:
            warnings.append("allowed_measurements only applies when the key is created; use alfred.tee_kms.measurement_allowlist to change it")
        else:
            added = [m for m in allowed if m not in current["allowed_measurements"]]
            removed = [m for m in current["allowed_measurements"] if m not in allowed]
            raise _with_diff(ConflictError("create", obj, f"it exists with another allow-list (the request adds {_short(added)} and "
                                           f"removes {_short(removed)}); nothing was changed. An existing key's allow-list changes "
                                           "through a rotation (playbooks/rotate.yml) or alfred.tee_kms.measurement_allowlist"),
                             "allowed_measurements", current["allowed_measurements"], list(allowed))
    if env and current.get("env") != env:
        recorded = current.get("env")
        raise ConflictError("create", obj, (f"it exists and belongs to env '{recorded}'" if recorded else
                                            "it exists and records no environment (its next rotation records it)")
                            + f", not '{env}'; nothing was changed. A key's environment is never replaced")
    before = current.get("attestation_trust") or {}
    if trust is None or trust == before:
        return {"trust": {}, "warnings": warnings}
    if current.get("pending_deletion_at"):  # refuse in check mode too, as the real run would
        raise ConflictError("update attestation trust of", obj, f"it is scheduled for deletion on {current['pending_deletion_at']}")
    if not update_trust:
        fields = sorted(name for name in set(before) | set(trust) if before.get(name) != trust.get(name))
        diff = "; ".join(f"{name}: {_brief(before.get(name))} -> {_brief(trust.get(name))}" for name in fields)
        raise _with_diff(ConflictError("create", obj, f"it exists with another attestation trust ({diff}); nothing was changed. "
                                       "To replace the key's trust, set update_trust=true (recorded in the evidence)"),
                         "attestation_trust", before, trust)
    return {"trust": {"before": before, "after": trust}, "warnings": warnings}
