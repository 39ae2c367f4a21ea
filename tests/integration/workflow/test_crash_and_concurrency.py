# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller killed (SIGKILL, the whole ansible-playbook process group) between stage
steps, then a re-run or a later rotation_action=rollback; and two rotations of one key started at once."""

from __future__ import annotations

import os
import signal

from workflow_support import AT_SNAPSHOT, KEY_ID, M_CURRENT, ROTATED, SNAPSHOT_RECORD, TARGET, kill_group, pid_alive, wait_for


def _lock_owner_pid(lock) -> int:
    return int(lock["owner"].split("/pid:")[1].split("/")[0])


def test_sigkill_during_stage_then_rerun_converges(key, runner, hook_pids, tmp_path):
    """Killed while the stage hook runs: the new version exists and the allow-list is applied,
    nothing is promoted. A re-run with the same inputs keeps the original snapshot (the only record
    of the pre-rotation state), takes over the dead run's lock and finishes the rotation."""
    marker = tmp_path / "stage-hook-started"
    hook = f"echo $$ >> {hook_pids}; touch {marker}; exec sleep 6201"
    with key.canaries_during():
        proc = runner.start(env={"ALFRED_ROTATION_STAGE_CMD": hook})
        wait_for(marker.exists, 240, "the stage hook to start", proc=proc)
        interrupted = key.state()
        kill_group(proc)
        for pid in hook_pids.read_text().split():
            os.killpg(int(pid), signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    lock = interrupted.pop("lock")
    assert interrupted == {"primary": 1, "versions": {1: "enabled", 2: "enabled"}, "allowed": TARGET,
                           "snapshot_status": "in_progress"}
    # The lock names the controller (ansible-playbook itself, not a per-task worker).
    assert _lock_owner_pid(lock) == proc.pid
    assert key.state()["lock"] == lock and not pid_alive(proc.pid)

    with key.canaries_during():
        rerun = runner.run()
    assert rerun.rc == 0, rerun.output
    assert f"Took over the rotation lock of '{lock['owner']}': its process on this host is gone" in rerun.output
    assert key.state() == ROTATED
    assert key.snapshot() == SNAPSHOT_RECORD  # kept from the interrupted run, not re-recorded mid-rotation
    assert rerun.ran("Create the next version without using it", "ok")
    assert set(key.decrypt_all_canaries()) >= {1, 2}


def test_sigkill_right_after_version_created_then_later_rollback(key, runner):
    """Killed as soon as the store shows the new version (wherever the playbook is then): a later,
    separate rotation_action=rollback run without any version input restores the snapshot from the key's
    own state; the new version stays enabled (nothing is disabled or destroyed)."""
    with key.canaries_during():
        proc = runner.start()
        wait_for(lambda: len(key.raw()["versions"]) == 2, 240, "version 2 to be created", interval=0.02, proc=proc)
        kill_group(proc)
        killed = key.state()
    assert killed["primary"] == 1 and killed["versions"] == {1: "enabled", 2: "enabled"}
    assert killed["allowed"] in ([M_CURRENT], TARGET)  # the allow-list write may or may not have happened
    assert killed["snapshot_status"] == "in_progress" and killed["lock"] is not None

    with key.canaries_during():
        rollback = runner.run(["-e", "rotation_action=rollback"], versions=False)
    assert rollback.rc == 0, rollback.output
    assert "Took over the rotation lock" in rollback.output
    # M_NEW (enclave-3) stays allowed only if the killed run had already allowed it.
    assert key.state() == dict(AT_SNAPSHOT, allowed=killed["allowed"])
    assert key.snapshot() == SNAPSHOT_RECORD
    assert set(key.decrypt_all_canaries()) == {1}


def test_two_rotations_started_at_once(key, runner, tmp_path):
    """Two controllers start the same rotation at the same moment. The stage hook takes a few
    seconds, so both reach the lock while one of them holds it: exactly one rotates, the other
    fails with the lock message, changes nothing and does not roll the winner back."""
    env = {"ALFRED_ROTATION_STAGE_CMD": "sleep 4"}
    with key.canaries_during():
        first = runner.start(env=env)
        second = runner.start(env=env)
        results = [runner.finish(first), runner.finish(second)]
    assert sorted(r.rc for r in results) == [0, 2], "\n\n".join(r.output for r in results)
    winner, loser = (results[0], results[1]) if results[0].rc == 0 else (results[1], results[0])
    assert key.state() == ROTATED
    assert key.snapshot() == SNAPSHOT_RECORD
    message = " ".join(loser.messages())
    assert f"Could not acquire the rotation lock on key '{KEY_ID}': another rotation holds it (owner '" in message, loser.output
    # The loser never ran a rollback (it never held the lock).
    assert not loser.ran("Restore the snapshot's primary version and allow-list")
    if loser.failed_tasks()[0] == "alfred.tee_kms.rotation : Take the rotation lock for the whole change":
        assert loser.failed_tasks() == ["alfred.tee_kms.rotation : Take the rotation lock for the whole change",
                                        "alfred.tee_kms.rotation : Fail the run after the rollback"], loser.output
        assert loser.messages()[-1].endswith("- nothing was changed or rolled back: another rotation holds the key.")
    else:  # it came late enough to see the lock already at preflight
        assert loser.failed_tasks() == ["alfred.tee_kms.rotation : Read the key state and check that no other rotation holds its lock"]
    assert winner.ran("Promote the new version", "changed")
    assert set(key.decrypt_all_canaries()) >= {1, 2}
