# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pre-rotation snapshot: when preflight records it and what it holds.

Private module_utils: the API may change without notice between releases.
"""

from __future__ import annotations

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import ConflictError, InputError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.rules import utcnow_iso

SNAPSHOT_OPEN = "in_progress"


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


def restorable(key: dict, snapshot: dict) -> bool:
    """Whether restoring the snapshot undoes only its own rotation: that rotation is still in
    progress, or the key is still exactly at its target. Otherwise the key was changed after the
    rotation (a later retirement of an image, another rotation) and the snapshot is history."""
    if snapshot.get("status") == SNAPSHOT_OPEN:
        return True
    return key["primary_version"] == snapshot.get("next_version") and \
        sorted(key["allowed_measurements"]) == sorted(snapshot.get("target_measurements") or [])


def keep_live(snapshot_allowed: list, current_allowed: list, live: list) -> tuple:
    """(allow-list to restore, measurements kept): the snapshot's allow-list plus every measurement
    the key allows now that a live enclave runs. A rollback never locks out a live enclave, and
    never allows a measurement the key does not allow now."""
    running = {str(m).lower() for m in live}
    kept = [m for m in current_allowed if m in running and m not in snapshot_allowed]
    return list(snapshot_allowed) + kept, kept


def verified_measurements(rows) -> list:
    """The measurements of the attestation rows whose evidence verified: the only ones a rollback protects.
    A refused answer (bad signature, stale, replayed) proves nothing about what the enclave runs, and an
    enclave whose evidence is refused cannot decrypt anyway."""
    return sorted({str(r["measurement"]) for r in rows or [] if isinstance(r, dict) and r.get("verified") and r.get("measurement")})


def refused_claims(rows, restored: list, current: list) -> list:
    """``[{source, measurement, reason}]``: answers whose evidence was refused while claiming a measurement
    the key allows now and the restore does not keep. Reported, never protected."""
    claims = []
    for row in rows or []:
        if not isinstance(row, dict) or row.get("verified") or not row.get("measurement"):
            continue
        measurement = str(row["measurement"])  # as the verifier normalised it (hex lowercased)
        if measurement in current and measurement not in restored:
            claims.append({"source": row.get("source"), "measurement": measurement, "reason": row.get("reason")})
    return claims
