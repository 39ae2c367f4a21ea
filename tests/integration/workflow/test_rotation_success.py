# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The happy paths the faults are measured against: a full rotation, its idempotent re-run, a
check-mode rehearsal, a later emergency rollback from the key's own state, and the runbook's
own model (kms_provider=command) with hooks."""

from __future__ import annotations

from workflow_support import AT_SNAPSHOT, KEY_ID, M_CURRENT, M_NEW, ROTATED, SNAPSHOT_RECORD


def test_full_rotation_then_idempotent_rerun_then_later_rollback(key, runner):
    with key.canaries_during():
        first = runner.run()
    assert first.rc == 0, first.output
    assert key.state() == ROTATED
    assert key.snapshot() == SNAPSHOT_RECORD
    assert first.recap["failed"] == 0 and first.recap["rescued"] == 0
    assert first.ran("Prove the new version through the attested path before promoting it", "ok")
    assert first.ran("Promote the new version", "changed")
    assert first.ran("Mark the rotation as completed in the snapshot", "changed")
    assert key.encrypt_canary(label="after rotation")["version"] == 2

    # Re-run with the same inputs (with ALFRED_ENV agreeing): nothing changes, the stage reports
    # the key as already rotated. (The first run bound the key to staging.)
    stored = key.store_bytes()
    with key.canaries_during():
        again = runner.run(env={"ALFRED_ENV": "staging"})
    assert again.rc == 0, again.output
    assert again.recap["changed"] == 0, again.output
    assert again.ran("Report a key that is already rotated", "ok")
    assert "already has version 2 as primary with the target allow-list; nothing to stage" in again.stdout
    assert key.store_bytes() == stored

    # A later, separate run rolls back from the snapshot kept with the key: no versions given.
    with key.canaries_during():
        rollback = runner.run(["-e", "rotation_action=rollback"], versions=False)
    assert rollback.rc == 0, rollback.output
    assert key.state() == AT_SNAPSHOT
    assert key.snapshot() == SNAPSHOT_RECORD
    assert rollback.ran("Restore the snapshot's primary version and allow-list", "changed")

    # Rolling back again changes nothing (the lock is taken and released, the key is not touched).
    again = runner.run(["-e", "rotation_action=rollback"], versions=False)
    assert again.rc == 0, again.output
    assert again.ran("Restore the snapshot's primary version and allow-list", "ok")
    assert key.state() == AT_SNAPSHOT

    counts = key.decrypt_all_canaries()
    assert set(counts) == {1, 2}, counts


def test_check_mode_is_a_real_rehearsal(key, runner):
    stored = key.store_bytes()
    result = runner.run(["--check", "--diff"])
    assert result.rc == 0, result.output
    assert key.store_bytes() == stored, "a check-mode rehearsal wrote to the key store"
    # The diff shows what the real run would change: the new version, the allow-list, the promotion.
    assert result.ran("Create the next version without using it", "changed")
    assert result.ran("Apply the target allow-list, protecting every live enclave", "changed")
    assert result.ran("Promote the new version", "changed")
    assert '+        "2": "enabled"' in result.stdout, result.output
    assert f'+        "{M_NEW}"' in result.stdout, result.output
    assert '-    "primary_version": 1,' in result.stdout and '+    "primary_version": 2,' in result.stdout, result.output
    # Read-only checks ran for real: live attestation of every enclave. The probes could not (the
    # version they would prove does not exist in a rehearsal): skipped, never "ok".
    assert result.ran("Verify live attestation of every enclave", "ok")
    assert result.ran("Prove the new version through the attested path before promoting it", "skipping")
    assert not result.ran("Prove the new version through the attested path before promoting it", "ok")
    assert key.decrypt_all_canaries() == {1: 1}


def test_command_provider_runs_the_runbook_model_with_hooks(key, runner, tmp_path):
    """kms_provider=command: the hooks do the rotation; the playbook orders them, passes the runbook's
    variables and never touches the local store."""
    log = tmp_path / "hooks.log"
    hook = ("echo {name} $ALFRED_ROTATION_ENV $ALFRED_ROTATION_ACTION $KMS_KEY_ID $KMS_KEY_VERSION $NEXT_KMS_KEY_VERSION "
            "$KMS_ALLOWED_MEASUREMENTS >> " + str(log))
    env = {f"ALFRED_ROTATION_{name.upper()}_CMD": hook.format(name=name) for name in ("preflight", "stage", "validate", "rollback")}
    stored = key.store_bytes()
    result = runner.run(["-e", "kms_provider=command"], env=env)
    assert result.rc == 0, result.output
    lines = log.read_text().splitlines()
    expected = f"staging all {KEY_ID} 1 2 {M_CURRENT},{M_NEW}"
    assert lines == [f"preflight {expected}", f"stage {expected}", f"validate {expected}"], lines
    assert key.store_bytes() == stored
    # The hook command text never reaches the output (show_commands=false).
    assert "hooks.log" not in result.stdout
    assert key.decrypt_all_canaries() == {1: 1}
