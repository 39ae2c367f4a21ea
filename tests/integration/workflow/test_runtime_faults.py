# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Faults of the world around the rotation, injected mid-run from the stage hook (after
preflight passed, before promotion): the API turns unhealthy after promotion, an enclave's
attestation starts failing, the KMS store becomes unwritable."""

from __future__ import annotations

from workflow_support import AT_SNAPSHOT, KEY_ID, SNAPSHOT_RECORD, TARGET, sim_mode_command


def test_health_check_fails_after_promotion(key, runner, fleet):
    """Preflight sees a healthy API; the new version breaks it (the stage hook takes it down just
    before promotion), so validate's health check fails and the key goes back to its snapshot.
    The rollback hook revives the API, so the post-rollback health check passes."""
    api = fleet.urls["api"]
    env = {"ALFRED_ROTATION_API_HEALTHCHECK_URL": api + "/healthz",
           "ALFRED_ROTATION_STAGE_CMD": sim_mode_command(api, "down"),
           "ALFRED_ROTATION_ROLLBACK_CMD": sim_mode_command(api, "ok")}
    with key.canaries_during():
        result = runner.run(env=env)
    assert result.rc == 2, result.output
    assert result.ran("Check service health before the rotation", "ok")
    assert result.ran("Promote the new version", "changed")
    assert result.failed_tasks() == ["alfred.tee_kms.rotation : Check service health after the rotation",
                                     "alfred.tee_kms.rotation : Fail the run after the rollback"], result.output
    health_error = f"Could not confirm the health of api endpoint {api}/healthz: answered HTTP 503, expected 200 after 1 attempt(s)"
    assert health_error in result.stdout
    assert result.messages()[-1] == (
        f"The all of key '{KEY_ID}' failed at Check service health after the rotation: {health_error} "
        "- rolled back to the pre-rotation snapshot.")
    assert result.ran("Check service health after the rollback", "ok")
    assert key.state() == AT_SNAPSHOT
    assert key.snapshot() == SNAPSHOT_RECORD
    assert set(key.decrypt_all_canaries()) >= {1, 2}  # tokens issued under v2 while it was primary still decrypt


def test_enclave_attestation_fails_mid_run(key, runner, fleet):
    """enclave-2 passes preflight attestation, then (from the stage hook) starts signing its
    evidence with an untrusted key: validate's live attestation refuses it and the key is rolled back."""
    env = {"ALFRED_ROTATION_STAGE_CMD": sim_mode_command(fleet.urls["enclave-2"], "bad-signature")}
    # Version 2 is primary only from the promotion to the rollback, a few tasks (about 0.2 s): canaries often
    # enough that one is encrypted under it, whose decrypt after the rollback is the point of this test.
    with key.canaries_during(interval=0.02):
        result = runner.run(env=env)
    assert result.rc == 2, result.output
    assert result.ran("Verify live attestation of every enclave", "ok")  # preflight
    assert result.failed_tasks() == [
        "alfred.tee_kms.rotation : Verify live attestation of every enclave against the new allow-list",
        "alfred.tee_kms.rotation : Fail the run after the rollback"], result.output
    first = result.failures()[0][1]
    refused = [row for row in first["results"] if not row["verified"]]
    assert [row["source"] for row in refused] == [fleet.urls["enclave-2"]]
    assert "signature" in refused[0]["reason"]
    assert result.messages()[-1].startswith(
        f"The all of key '{KEY_ID}' failed at Verify live attestation of every enclave against the new allow-list: ")
    assert result.messages()[-1].endswith("- rolled back to the pre-rotation snapshot.")
    assert key.state() == AT_SNAPSHOT
    assert key.snapshot() == SNAPSHOT_RECORD
    assert set(key.decrypt_all_canaries()) >= {1, 2}


def test_store_becomes_unwritable_mid_stage(key, runner, unwritable_dir, tmp_path):
    """The stage hook makes the store's directory unwritable after the new version and the
    allow-list were written and before promotion. Nothing can be written any more, so neither the
    promotion nor the automatic rollback (nor releasing the lock) can happen: the key stays exactly
    as the last successful step left it, which is a safe state (primary still the old version, the
    allow-list a superset that keeps every live enclave working), and the run says so. Once the
    store is writable again, a later run rolls back from the snapshot kept with the key."""
    make_unwritable, restore, probe = unwritable_dir
    probe(tmp_path)
    store_dir = key.store_path.parent
    # The hook waits a second first: the rollback then renews the lock with a later expiry, a write the store
    # refuses. Within the same second as the stage's lock the renewed record is identical and nothing is written.
    with key.canaries_during():
        result = runner.run(env={"ALFRED_ROTATION_STAGE_CMD": "sleep 1.1 && " + make_unwritable(store_dir)})
    restore(store_dir)
    assert result.rc == 2, result.output
    failures = result.failures()
    assert failures[0][0] == "alfred.tee_kms.rotation : Promote the new version", result.output
    assert failures[0][1]["error"]["code"] == "store"
    assert "writing failed, the store is unchanged" in failures[0][1]["msg"]
    assert [task for task, dummy in failures[1:]] == ["alfred.tee_kms.rotation : Take the rotation lock for the rollback",
                                                      "alfred.tee_kms.rotation : Fail with both causes when the rollback fails too",
                                                      "alfred.tee_kms.rotation : Release the rotation lock"], result.output
    assert all(r["error"]["code"] == "store" for dummy, r in failures if "error" in r)
    rollback_failure = result.messages()[2]
    assert rollback_failure.startswith(
        f"The all of key '{KEY_ID}' failed at Promote the new version: Could not promote a version of key store "
        f"'{key.store_path}': writing failed, the store is unchanged")
    assert "and the automatic rollback failed too at Take the rotation lock for the rollback" in rollback_failure
    assert "run the playbook with rotation_action=rollback" in rollback_failure

    state = key.state()
    lock = state.pop("lock")
    assert state == {"primary": 1, "versions": {1: "enabled", 2: "enabled"}, "allowed": TARGET,
                     "snapshot_status": "in_progress"}
    assert lock is not None and "/pid:" in lock["owner"]  # the failed run could not release it
    assert key.snapshot() == SNAPSHOT_RECORD

    # Later, separate run (no versions given): the dead run's lock is taken over, the snapshot restored.
    with key.canaries_during():
        rollback = runner.run(["-e", "rotation_action=rollback"], versions=False)
    assert rollback.rc == 0, rollback.output
    assert f"Took over the rotation lock of '{lock['owner']}': its process on this host is gone" in rollback.output
    assert key.state() == AT_SNAPSHOT
    assert set(key.decrypt_all_canaries()) == {1}
