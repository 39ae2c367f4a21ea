# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The runbook inputs of a rotation, checked before anything changes (module rotation_inputs).

Private module_utils: the API may change without notice between releases.
"""

from __future__ import annotations

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.measurements import (
    labels_by_measurement,
    normalize,
    normalize_list,
    split_labelled,
)
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import registry
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.guard import ENVIRONMENTS
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.rules import check_key_id
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.locks import lock_owner

ACTIONS = ("preflight", "stage", "validate", "rollback", "all")
# The hook-driven, non-native provider: the runbook's own model, where the operator's hook
# commands rotate a KMS that has no native provider. Every other value is a registered one.
HOOK_PROVIDER = "command"
PROVIDERS = registry.names() + (HOOK_PROVIDER,)
HOOKS = ("preflight", "stage", "validate", "rollback")
# Hooks the runbook requires when the hooks do the rotation themselves (provider command).
REQUIRED_HOOKS = {"preflight": (), "stage": ("stage", "rollback"), "validate": ("validate",),
                  "rollback": ("rollback",), "all": ("stage", "validate", "rollback")}


def _version(value, name: str, native: bool):
    if value is None or str(value).strip() == "":
        raise InputError("validate", f"input {name}", "it is required (set it with -e or the runbook environment variable)")
    if not native:
        text = str(value).strip()
        if any(c.isspace() for c in text) or len(text) > 256:
            raise InputError("validate", f"input {name}", "must be a version label without spaces (at most 256 characters)")
        return text
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InputError("validate", f"input {name}", f"'{value}' is not a whole number") from None
    if number < 1:
        raise InputError("validate", f"input {name}", "versions start at 1")
    return number


def merge_labels(inline: dict, named, measurement_format: str) -> dict:
    """The labels of ``name=hex`` allow-list entries and of kms_measurement_labels (``{name: measurement}``),
    refusing a measurement the two name differently."""
    if named is not None and not isinstance(named, dict):
        raise InputError("validate", "input kms_measurement_labels", f"expected a mapping of names to measurements, got {type(named).__name__}")
    pairs = [(name, m) for m, name in inline.items()] + list((named or {}).items())
    return labels_by_measurement(pairs, measurement_format, action="validate input kms_measurement_labels with")


def validate_inputs(p: dict) -> dict:
    """Check every runbook input before anything changes; return the normalised plan."""
    env, action, provider = p["env"], p["action"], p["provider"]
    if env not in ENVIRONMENTS:
        raise InputError("validate", "input env", f"'{env}' is not one of {', '.join(ENVIRONMENTS)}")
    if action not in ACTIONS:
        raise InputError("validate", "input rotation_action", f"'{action}' is not one of {', '.join(ACTIONS)}")
    if provider not in PROVIDERS:
        raise InputError("validate", "input kms_provider", f"'{provider}' is not one of {', '.join(PROVIDERS)}")
    if env == "production" and not p["confirm_production"]:
        raise InputError("run", "a production rotation", "confirm_production=true (--confirm-production) is required")
    if p.get("alfred_env") and p["alfred_env"] != env:
        raise InputError("run", f"a rotation for env '{env}'", f"ALFRED_ENV is set to '{p['alfred_env']}' on this controller")
    native = provider != HOOK_PROVIDER
    if p.get("break_lock_owner") and (action != "rollback" or not native):
        # Breaking another run's lock is an emergency measure: only to roll a key back, never to
        # start a change over a run that may still be alive.
        raise InputError("validate", "input break_lock_owner",
                         f"it is only accepted with rotation_action=rollback and a native provider, not rotation_action={action} with kms_provider={provider}")
    if p.get("force_rollback") and (action != "rollback" or not (p.get("force_rollback_reason") or "").strip()):
        raise InputError("validate", "input force_rollback",
                         f"it needs rotation_action=rollback (not {action}) and a force_rollback_reason, which the evidence records")
    plan = {"env": env, "action": action, "provider": provider, "native": native, "check_mode": p["check_mode"],
            "show_commands": p["show_commands"], "key_id": p["key_id"] or None,
            "current_version": None, "next_version": None, "target_measurements": [], "measurement_labels": {}}
    if plan["key_id"] is None:
        raise InputError("validate", "input kms_key_id", "it is required (KMS_KEY_ID)")
    if native:
        check_key_id(plan["key_id"], "validate")
    needs_versions = action != "rollback" or not native
    if needs_versions:
        plan["current_version"] = _version(p["current_version"], "kms_key_version (KMS_KEY_VERSION)", native)
        plan["next_version"] = _version(p["next_version"], "next_kms_key_version (NEXT_KMS_KEY_VERSION)", native)
        if plan["next_version"] == plan["current_version"]:
            raise InputError("validate", "input next_kms_key_version",
                             f"it equals the current version {plan['current_version']}; a rotation needs a new version")
        if native and plan["next_version"] < plan["current_version"]:
            raise InputError("validate", "input next_kms_key_version",
                             f"{plan['next_version']} is older than the current version {plan['current_version']}; use rotation_action=rollback to go back")
        action_text = "validate input kms_allowed_measurements with"
        entries, labelled = split_labelled(p["allowed_measurements"], p["measurement_format"])
        for name, value in labelled:  # a bad labelled entry is named by its label
            try:
                normalize(value, p["measurement_format"], allow_dev=False, action=action_text)
            except InputError as exc:
                raise InputError(exc.action, f"measurement labelled '{name}'", exc.cause) from None
        plan["target_measurements"] = normalize_list(entries, p["measurement_format"], allow_dev=False, action=action_text)
        plan["measurement_labels"] = labels_by_measurement(labelled, p["measurement_format"], action=action_text)
        if not plan["target_measurements"]:
            raise InputError("validate", "input kms_allowed_measurements",
                             "it is required (KMS_ALLOWED_MEASUREMENTS, comma-separated); an empty allow-list locks every enclave out")
    plan["measurement_labels"] = merge_labels(plan["measurement_labels"], p.get("measurement_labels"), p["measurement_format"])
    hooks = p.get("hooks") or {}
    unknown = set(hooks) - set(HOOKS)
    if unknown:
        raise InputError("validate", "hook commands", f"unknown hook(s) {', '.join(sorted(unknown))}")
    plan["hooks_configured"] = {name: bool((hooks.get(name) or "").strip()) for name in HOOKS}
    if not native:
        missing = [h for h in REQUIRED_HOOKS[action] if not plan["hooks_configured"][h]]
        if missing:
            names = ", ".join(f"ALFRED_ROTATION_{h.upper()}_CMD" for h in missing)
            raise InputError("validate", "hook commands", f"kms_provider=command needs {names}")
    plan["lock_owner"] = p.get("lock_owner") or lock_owner()
    return plan


def hook_allowed_measurements(plan: dict, given) -> str:
    """``KMS_ALLOWED_MEASUREMENTS`` as the runbook's hooks expect it: the normalised target allow-list
    (labels of ``name=hex`` entries removed), else (a rollback, which takes none) the input as given."""
    if plan.get("target_measurements"):
        return ",".join(plan["target_measurements"])
    if given is None or isinstance(given, str):
        return given or ""
    return ",".join(str(m) for m in given)
