#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rotation_snapshot
short_description: Record, mark and restore the pre-rotation snapshot kept with a key
version_added: 0.1.0
description:
  - The snapshot (primary version and allow-list before the rotation, plus the rotation's target)
    is stored with the key itself, so a rollback in a later, separate run (fresh controller, AWX
    container) restores it without the operator repeating versions.
  - O(state=present) records the snapshot at preflight, but only while the key is at rest at
    O(expected_primary). An already rotated key keeps its snapshot (the re-run is a no-op),
    and so does an interrupted rotation (its snapshot is the only record of the original state).
  - O(state=marked) sets the snapshot's O(status).
  - O(state=restored) puts the snapshot's primary version and allow-list back. It never disables
    or destroys a version, so data encrypted under the new version stays decryptable.
  - It never locks out a live enclave. Every measurement in O(protect), and every measurement of a
    row of O(attestation_results) whose evidence verified, that the key allows now stays allowed
    beside the snapshot's allow-list; the result and the audit record list them.
  - An answer whose evidence was refused (a bad signature, stale or replayed evidence) proves
    nothing about what the enclave runs and is never protected. A measurement only such an answer
    claims is restored like any other (removed when the snapshot does not allow it); the module
    warns and the result and the audit record list it under C(refused_live_claims).
  - It restores only a snapshot whose rotation is still C(in_progress) or whose key is still
    exactly at that rotation's target (primary version and allow-list). A key changed since (an
    image retired later, another change) is refused unless O(force=true), which needs
    O(force_reason); both are recorded in the audit record.
author:
  - Alfred security engineering (@alfred-security)
extends_documentation_fragment:
  - alfred.tee_kms.provider
  - alfred.tee_kms.provider.options
  - alfred.tee_kms.attributes
  - alfred.tee_kms.env_guard
options:
  state:
    description: What to do.
    type: str
    choices: [present, marked, restored]
    default: present
  expected_primary:
    description: The primary version the key must have now (O(state=present)).
    type: int
  next_version:
    description: The version the rotation moves to (O(state=present)).
    type: int
  target_measurements:
    description: The allow-list the rotation applies (O(state=present)).
    type: list
    elements: str
  owner:
    description: Who records the snapshot (the rotation lock owner).
    type: str
  extra:
    description: Extra non-secret facts to keep with the snapshot (for example the secret-scan baseline).
    type: dict
  env:
    description:
      - The environment of the rotation. A key that belongs to another environment is refused as soon as it is
        read, before anything changes, in check mode too; V(production) also needs O(confirm_production=true) for
        any change.
      - For O(state=present), a key that records none (created before keys recorded it) gets this one, with a
        warning and an audit record.
    type: str
    choices: [staging, production]
  protect:
    description:
      - For O(state=restored), measurements of live enclaves proven by verified evidence; each one the key allows
        now stays allowed.
    type: list
    elements: str
    default: []
  attestation_results:
    description:
      - For O(state=restored), the C(results) rows of M(alfred.tee_kms.attestation_verify) for the live fleet.
        The measurements of the verified rows are protected as in O(protect); the rows whose evidence was refused
        are only reported (C(refused_live_claims)).
    type: list
    elements: dict
    default: []
  force:
    description:
      - For O(state=restored), restore a snapshot whose rotation is completed or rolled back although the key
        changed since. O(protect) still applies.
    type: bool
    default: false
  force_reason:
    description: Why the rollback is forced (required with O(force=true)); recorded in the evidence.
    type: str
  status:
    description: New status for O(state=marked).
    type: str
    choices: [recorded, in_progress, completed, rolled_back]
seealso:
  - module: alfred.tee_kms.kms_key_info
"""

EXAMPLES = r"""
- name: Record the pre-rotation state with the key
  alfred.tee_kms.rotation_snapshot:
    key_id: tokens/refresh
    expected_primary: 2
    next_version: 3
    target_measurements: "{{ rotation.target_measurements }}"
    owner: "{{ rotation.lock_owner }}"

- name: Emergency rollback from the snapshot kept with the key
  alfred.tee_kms.rotation_snapshot:
    key_id: tokens/refresh
    state: restored
"""

RETURN = r"""
snapshot:
  description: The snapshot after the run (predicted in check mode).
  type: dict
  returned: always
  sample: {"primary_version": 2, "allowed_measurements": ["e72a..."], "next_version": 3, "target_measurements": ["e72a...", "9f1c..."],
           "status": "recorded", "taken_at": "2026-11-25T10:00:00Z"}
decision:
  description: For O(state=present), V(record), V(keep_rotated) (already rotated) or V(keep_interrupted).
  type: str
  returned: when O(state=present)
already_rotated:
  description: Whether the key is already at the rotation's target.
  type: bool
  returned: when O(state=present)
kept_live_measurements:
  description: For O(state=restored), the measurements of live enclaves kept beside the snapshot's allow-list.
  type: list
  elements: str
  returned: when O(state=restored)
refused_live_claims:
  description:
    - For O(state=restored), the answers of O(attestation_results) whose evidence was refused and whose claimed
      measurement the key allows now but the restore does not keep, each C({source, measurement, reason}).
  type: list
  elements: dict
  returned: when O(state=restored)
"""

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.measurements import normalize_list
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import ConflictError, InputError, NotFoundError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.module import KmsModule
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import audit
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.rules import public_state
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.guard import check_key_env
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.snapshots import (
    keep_live, new_snapshot, refused_claims, restorable, snapshot_decision, verified_measurements)


def _require(p, names, state):
    missing = [n for n in names if p[n] is None]
    if missing:
        raise InputError(f"{state} the snapshot of", f"key '{p['key_id']}'", f"{', '.join(missing)} required")


def record_env(mod, key):
    """Bind a key that records no environment to this rotation's (keys created before keys recorded one)."""
    p = mod.params
    if not p["env"] or check_key_env(key, p["env"]):
        return []
    if not mod.check_mode:
        mod.provider.record_env(p["key_id"], p["env"])
    mod.warn(f"Key '{p['key_id']}' recorded no environment (created before keys recorded one); it now belongs to env "
             f"'{p['env']}' and a rotation for another environment will be refused")
    return [audit.change("record_env", p["key_id"], {"env": None}, {"env": p["env"]}, mod.check_mode)]


def record(mod, state, key):
    p = mod.params
    _require(p, ("expected_primary", "next_version", "target_measurements", "owner"), "record")
    target = normalize_list(p["target_measurements"], key["measurement_format"], action="record the snapshot with")
    snapshot = state.get("snapshot")
    decision = snapshot_decision(key, snapshot, p["expected_primary"], p["next_version"], target)
    audits = record_env(mod, key)
    result = {"decision": decision, "already_rotated": decision == "keep_rotated", "snapshot": snapshot or {}}
    if audits:
        result.update(changed=True, audit=audits)
    if decision != "record":
        return dict(result, changed=bool(audits))
    new = new_snapshot(key, p["next_version"], target, p["owner"], p["extra"])
    if snapshot and {k: v for k, v in snapshot.items() if k not in ("taken_at", "recorded_by")} == \
            {k: v for k, v in new.items() if k not in ("taken_at", "recorded_by")}:
        return dict(result, changed=bool(audits))
    if not mod.check_mode:
        mod.provider.save_snapshot(p["key_id"], new)
    audits.append(audit.change("record_snapshot", p["key_id"], snapshot, new, mod.check_mode))
    return mod.add_diff(dict(result, changed=True, snapshot=new, audit=audits), {"snapshot": snapshot}, {"snapshot": new})


def mark(mod, state):
    p = mod.params
    _require(p, ("status",), "mark")
    snapshot = state.get("snapshot")
    if not snapshot and mod.check_mode:
        # A rehearsal's preflight predicts the snapshot without recording it; the real run records
        # it before this step, so predict the mark instead of failing the rehearsal.
        return mod.add_diff({"changed": True, "snapshot": {"status": p["status"]}},
                            {"snapshot_status": "recorded by the live run's preflight (not by this rehearsal)"},
                            {"snapshot_status": p["status"]})
    if not snapshot:
        raise NotFoundError("mark the snapshot of", f"key '{p['key_id']}'", "no snapshot has been recorded (run preflight first)")
    if snapshot.get("status") == p["status"]:
        return {"changed": False, "snapshot": snapshot}
    new = dict(snapshot, status=p["status"])
    if not mod.check_mode:
        mod.provider.save_snapshot(p["key_id"], new)
    return mod.add_diff({"changed": True, "snapshot": new}, {"snapshot_status": snapshot.get("status")}, {"snapshot_status": p["status"]})


def refused_warning(claim: dict, check_mode: bool) -> str:
    return (f"Not kept measurement {claim['measurement'][:16]}... that enclave {claim['source']} claims: its evidence was "
            f"refused ({claim['reason']}), so it proves nothing about what that enclave runs; the rollback "
            f"{'would remove' if check_mode else 'removed'} it with the rest of the rotation's allow-list")


def restore(mod, state, key):
    p = mod.params
    snapshot = state.get("snapshot")
    if not snapshot:
        raise NotFoundError("roll back", f"key '{p['key_id']}'",
                            "no snapshot of a pre-rotation state is kept with the key, so there is nothing to restore")
    force_reason = (p["force_reason"] or "").strip() or None
    if p["force"] and force_reason is None:
        raise InputError("roll back", f"key '{p['key_id']}'", "force_rollback=true needs force_rollback_reason (recorded in the evidence)")
    rows = p["attestation_results"]
    allowed, kept = keep_live(snapshot["allowed_measurements"], key["allowed_measurements"], p["protect"] + verified_measurements(rows))
    wanted = {"primary_version": snapshot["primary_version"], "allowed_measurements": allowed}
    current = {"primary_version": key["primary_version"], "allowed_measurements": key["allowed_measurements"]}
    changed = current["primary_version"] != wanted["primary_version"] or \
        sorted(current["allowed_measurements"]) != sorted(wanted["allowed_measurements"])
    if changed and not restorable(key, snapshot) and not p["force"]:
        raise ConflictError(
            "roll back", f"key '{p['key_id']}'",
            f"its snapshot belongs to the rotation to version {snapshot.get('next_version')}, which is {snapshot.get('status')}, and "
            f"the key has changed since (primary {key['primary_version']}, allow-list {', '.join(m[:16] + '...' for m in key['allowed_measurements'])}); "
            "restoring it would undo those later changes. Check the key; to restore it anyway set force_rollback=true "
            "with force_rollback_reason")
    if kept and changed:
        mod.warn(f"Kept measurement(s) {', '.join(m[:16] + '...' for m in kept)} allowed beside the snapshot's allow-list: "
                 "live enclaves run them and would be locked out")
    refused = refused_claims(rows, allowed, key["allowed_measurements"]) if changed else []
    warnings = [refused_warning(claim, mod.check_mode) for claim in refused]
    for warning in warnings:
        mod.warn(warning)
    # A rotation interrupted before it changed primary or allow-list (killed right after creating the
    # version) leaves the key at its snapshot but the snapshot "in_progress": close it too.
    close = snapshot.get("status") != "rolled_back" and (changed or snapshot.get("status") == "in_progress")
    if changed and not mod.check_mode:
        mod.provider.restore(p["key_id"], wanted["primary_version"], wanted["allowed_measurements"])
    if close and not mod.check_mode:
        mod.provider.save_snapshot(p["key_id"], dict(snapshot, status="rolled_back"))
    result = {"changed": changed or close, "snapshot": snapshot, "kept_live_measurements": kept, "refused_live_claims": refused,
              "key": dict(key, **wanted) if changed else key,
              # Executed: the key was restored, or an interrupted rotation found at its snapshot was closed.
              "audit": audit.rollback((changed or close) and not mod.check_mode, mod.check_mode, wanted["primary_version"],
                                      wanted["allowed_measurements"], current,
                                      ("would_restore" if mod.check_mode else "restored") if changed else "already_at_snapshot",
                                      kept_live=kept, force_reason=force_reason if p["force"] else None,
                                      refused_claims=refused, warnings=warnings)}
    return mod.add_diff(result, current, wanted) if changed else result


def handle(mod):
    state = mod.provider.describe_key(mod.params["key_id"])
    key = public_state(state)
    if mod.params["state"] == "present":
        return record(mod, state, key)
    if mod.params["state"] == "marked":
        return mark(mod, state)
    return restore(mod, state, key)


def main():
    KmsModule(dict(
        state=dict(type="str", default="present", choices=["present", "marked", "restored"]),
        expected_primary=dict(type="int"),
        next_version=dict(type="int"),
        target_measurements=dict(type="list", elements="str"),
        owner=dict(type="str"),
        extra=dict(type="dict"),
        protect=dict(type="list", elements="str", default=[]),
        attestation_results=dict(type="list", elements="dict", default=[]),
        force=dict(type="bool", default=False),
        force_reason=dict(type="str"),
        status=dict(type="str", choices=["recorded", "in_progress", "completed", "rolled_back"]),
    ), env_guard=True).run(handle)


if __name__ == "__main__":
    main()
