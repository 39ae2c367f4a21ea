# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Rotation inputs, lock owner identity and snapshot rules shared by the workflow modules.

Private module_utils: the API may change without notice between releases.
"""

from __future__ import annotations

import getpass
import os
import socket

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import ConflictError, InputError
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.measurements import normalize_list
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.base import check_key_id, utcnow_iso

ENVIRONMENTS = ("staging", "production")
ACTIONS = ("preflight", "stage", "validate", "rollback", "all")
PROVIDERS = ("local", "aws", "command")
HOOKS = ("preflight", "stage", "validate", "rollback")
# Hooks the runbook requires when the hooks do the rotation themselves (provider command).
REQUIRED_HOOKS = {"preflight": (), "stage": ("stage", "rollback"), "validate": ("validate",),
                  "rollback": ("rollback",), "all": ("stage", "validate", "rollback")}
SNAPSHOT_OPEN = "in_progress"


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


def validate_inputs(p: dict) -> dict:
    """Check every runbook input before anything changes; return the normalised plan."""
    env, action, provider = p["env"], p["action"], p["provider"]
    if env not in ENVIRONMENTS:
        raise InputError("validate", "input env", f"'{env}' is not one of {', '.join(ENVIRONMENTS)}")
    if action not in ACTIONS:
        raise InputError("validate", "input action", f"'{action}' is not one of {', '.join(ACTIONS)}")
    if provider not in PROVIDERS:
        raise InputError("validate", "input kms_provider", f"'{provider}' is not one of {', '.join(PROVIDERS)}")
    if env == "production" and not p["confirm_production"]:
        raise InputError("run", "a production rotation", "confirm_production=true (--confirm-production) is required")
    if p.get("alfred_env") and p["alfred_env"] != env:
        raise InputError("run", f"a rotation for env '{env}'", f"ALFRED_ENV is set to '{p['alfred_env']}' on this controller")
    native = provider != "command"
    plan = {"env": env, "action": action, "provider": provider, "check_mode": p["check_mode"],
            "show_commands": p["show_commands"], "key_id": p["key_id"] or None,
            "current_version": None, "next_version": None, "target_measurements": []}
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
                             f"{plan['next_version']} is older than the current version {plan['current_version']}; use action=rollback to go back")
        plan["target_measurements"] = normalize_list(p["allowed_measurements"], p["measurement_format"], allow_dev=False,
                                                     action="validate input kms_allowed_measurements with")
        if not plan["target_measurements"]:
            raise InputError("validate", "input kms_allowed_measurements",
                             "it is required (KMS_ALLOWED_MEASUREMENTS, comma-separated); an empty allow-list locks every enclave out")
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


# --- lock owner ------------------------------------------------------------------------

def _proc_start(pid: int):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[1]), int(fields[19])  # ppid, starttime (clock ticks since boot)
    except (OSError, ValueError, IndexError):
        return None


def _controller_process():
    """(pid, starttime) of the ansible-playbook (or ansible-runner) process running us.

    A module runs in a worker that ansible-playbook forks for each task, and a fork keeps
    the parent's command line: the first ``ansible-playbook`` ancestor is that short-lived
    worker, gone as soon as the task ends. The owner must be the process that lives for the
    whole run, so keep walking up while the parent is still ansible-playbook.
    """
    pid = os.getpid()
    found = None
    for dummy in range(16):
        info = _proc_start(pid)
        if info is None:
            break
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ")
        except OSError:
            break
        if b"ansible-playbook" in cmdline or b"ansible-runner" in cmdline:
            found = (pid, info[1])
        elif found:
            break
        pid = info[0]
        if pid <= 1:
            break
    return found


def lock_owner() -> str:
    """``user@host/pid:N/start:T``: unique per run, and lets a later run on the same host
    tell that the holder's process is gone (pid and start time together survive pid reuse)."""
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    proc = _controller_process()
    return f"{who}/pid:{proc[0]}/start:{proc[1]}" if proc else f"{who}/pid:{os.getppid()}"


def holder_is_gone(owner: str) -> bool:
    """True only when the owner ran on this host and its process no longer exists."""
    try:
        who, pid_part, start_part = owner.split("/")
        host = who.split("@", 1)[1]
        pid = int(pid_part.split(":", 1)[1])
        start = int(start_part.split(":", 1)[1])
    except (ValueError, IndexError):
        return False
    if host != socket.gethostname():
        return False
    info = _proc_start(pid)
    return info is None or info[1] != start


# --- snapshot --------------------------------------------------------------------------

def snapshot_decision(key: dict, snapshot, expected_primary: int, next_version: int, target: list) -> str:
    """What preflight does with the snapshot: ``record``, ``keep_rotated`` or ``keep_interrupted``.

    The snapshot is the only record of the pre-rotation state, so it is replaced only when
    the key is at rest at the expected version; an interrupted rotation keeps the original.
    """
    rotated = key["primary_version"] == next_version and sorted(key["allowed_measurements"]) == sorted(target)
    if rotated:
        return "keep_rotated"
    if snapshot and snapshot.get("status") == SNAPSHOT_OPEN and snapshot.get("next_version") == next_version:
        return "keep_interrupted"
    if key["primary_version"] != expected_primary:
        raise ConflictError("start a rotation of", f"key '{key['key_id']}'",
                            f"its primary version is {key['primary_version']}, not {expected_primary} (KMS_KEY_VERSION); "
                            "check the inputs or finish/roll back the rotation in progress")
    # Refuse here, before the snapshot is recorded, what stage would only find out after taking
    # the lock: the next version must be the key's n+1 or an existing enabled version (one left
    # non-primary by a rolled-back rotation).
    states = {v["version"]: v["state"] for v in key["versions"]}
    latest = max(states)
    if next_version in states and states[next_version] != "enabled":
        raise InputError("validate", "input next_kms_key_version",
                         f"version {next_version} of key '{key['key_id']}' is {states[next_version]}; a rotation can only promote an enabled version")
    if next_version not in states and next_version != latest + 1:
        raise InputError("validate", "input next_kms_key_version",
                         f"key '{key['key_id']}' has versions up to {latest}; the next version can only be {latest + 1}")
    return "record"


def new_snapshot(key: dict, next_version: int, target: list, owner: str, extra=None) -> dict:
    return {"taken_at": utcnow_iso(), "primary_version": key["primary_version"],
            "allowed_measurements": list(key["allowed_measurements"]), "next_version": next_version,
            "target_measurements": list(target), "status": "recorded", "recorded_by": owner, "extra": extra or {}}
