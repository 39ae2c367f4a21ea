# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A failing or hanging operator hook at preflight, stage and validate.

Preflight changes nothing (the hook runs before the snapshot is recorded), so the store keeps
its exact bytes. A stage or validate hook failure rolls the key back to its snapshot. A hanging
hook is stopped after rotation_hook_timeout with its whole process group.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
from pathlib import Path

import pytest

from workflow_support import AT_SNAPSHOT, KEY_ID, SNAPSHOT_RECORD, wait_for

PHASE_TASK = {"preflight": "alfred.tee_kms.rotation : Run the preflight hook",
              "stage": "alfred.tee_kms.rotation : Run the stage hook",
              "validate": "alfred.tee_kms.rotation : Run the validate hook"}
HANG_SECONDS = {"preflight": 6101, "stage": 6102, "validate": 6103}  # unique, to find leftovers


def sleepers(seconds: int) -> list:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", str(seconds).encode()]:
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize("kind", ["fails", "hangs"])
@pytest.mark.parametrize("phase", ["preflight", "stage", "validate"])
def test_hook_fault(phase, kind, key, runner):
    # The sleep's argument is unique to this run of the test (another checkout's suite may be
    # running the same test on this machine), so a leftover found below is this hook's own.
    hang_seconds = int(f"{HANG_SECONDS[phase]}{secrets.randbelow(10 ** 6):06d}")
    command = "exit 7" if kind == "fails" else f"sleep {hang_seconds}"
    args = ["-e", "rotation_hook_timeout=3"] if kind == "hangs" else []
    before = key.store_bytes()
    with key.canaries_during():
        result = runner.run(args, env={f"ALFRED_ROTATION_{phase.upper()}_CMD": command})
    assert result.rc == 2, result.output

    cause = "it exited with code 7" if kind == "fails" else "it timed out after 3s and was stopped"
    hook_error = f"Could not run the {phase} hook: {cause}"
    failures = result.failures()
    assert failures[0][0] == PHASE_TASK[phase], result.output
    assert failures[0][1]["msg"] == hook_error
    assert failures[0][1]["hook"]["outcome"] == ("failed" if kind == "fails" else "timeout")
    if kind == "hangs":
        assert 3000 <= failures[0][1]["hook"]["duration_ms"] < 15000
        assert sleepers(hang_seconds) == [], "the hung hook's process group was not stopped"
    # The hook's command text is secret unless show_commands=true.
    assert command not in result.stdout and command not in result.stderr

    if phase == "preflight":
        # Preflight fails before the snapshot is recorded: not a byte of the store changed.
        assert result.failed_tasks() == [PHASE_TASK[phase]]
        assert key.store_bytes() == before
        assert result.recap["rescued"] == 0
    else:
        assert result.failed_tasks() == [PHASE_TASK[phase], "alfred.tee_kms.rotation : Fail the run after the rollback"], result.output
        assert result.messages()[-1] == (
            f"The all of key '{KEY_ID}' failed at {PHASE_TASK[phase].split(' : ')[1]}: {hook_error} "
            "- rolled back to the pre-rotation snapshot.")
        assert result.recap["rescued"] == 1
        assert result.ran("Restore the snapshot's primary version and allow-list", "changed")
        assert key.state() == AT_SNAPSHOT
        assert key.snapshot() == SNAPSHOT_RECORD
    counts = key.decrypt_all_canaries()
    assert 1 in counts


def _hook_that_spawns_a_sleeper(tmp_path, seconds):
    """A stage hook whose child sleeps (the hook's shell waits for it); it records the module
    process running it ($PPID) and says when it started."""
    marker = tmp_path / "hook-started"
    parent = tmp_path / "hook-parent"
    return f"echo $PPID > {parent}; sleep {seconds} & touch {marker}; wait", marker, parent


@pytest.mark.parametrize("how", ["ctrl_c", "sigterm"])
def test_ctrl_c_kills_hook_process_group(how, key, runner, tmp_path):
    """Ctrl-C (SIGINT to ansible-playbook's whole foreground group, as a terminal sends it) or a
    cancel (SIGTERM to ansible-playbook alone, as AWX does) while the stage hook runs: the hook
    runs in its own session, so the signal never reaches it; the module running it stops the
    hook's whole process group before the controller exits."""
    seconds = int(f"6204{secrets.randbelow(10 ** 6):06d}")
    hook, marker, dummy = _hook_that_spawns_a_sleeper(tmp_path, seconds)
    proc = runner.start(env={"ALFRED_ROTATION_STAGE_CMD": hook})
    try:
        wait_for(marker.exists, 240, "the stage hook to start", proc=proc)
        assert len(sleepers(seconds)) == 1
        if how == "ctrl_c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGTERM)
        proc.wait(60)
        wait_for(lambda: not sleepers(seconds), 15, "the hook's sleeping child to be stopped")
    finally:
        for pid in sleepers(seconds):
            os.kill(pid, signal.SIGKILL)
    assert proc.returncode != 0
    assert key.state()["primary"] == 1  # stopped before promotion


def test_interrupted_hook_is_recorded_and_rolled_back(key, runner, tmp_path):
    """SIGTERM reaching only the module process that runs the hook (the controller lives on): the
    hook's group is stopped, the task fails with outcome 'interrupted' and the signal, the
    evidence records it, and the rotation is rolled back."""
    seconds = int(f"6205{secrets.randbelow(10 ** 6):06d}")
    hook, marker, parent = _hook_that_spawns_a_sleeper(tmp_path, seconds)
    with key.canaries_during():
        proc = runner.start(env={"ALFRED_ROTATION_STAGE_CMD": hook})
        try:
            wait_for(marker.exists, 240, "the stage hook to start", proc=proc)
            os.kill(int(parent.read_text()), signal.SIGTERM)
            result = runner.finish(proc)
        finally:
            for pid in sleepers(seconds):
                os.kill(pid, signal.SIGKILL)
    assert sleepers(seconds) == []
    assert result.rc == 2, result.output
    failure = result.failures()[0]
    assert failure[0] == PHASE_TASK["stage"], result.output
    assert failure[1]["msg"] == "Could not run the stage hook: the run was interrupted (SIGTERM) and the hook's process group was stopped"
    assert failure[1]["hook"]["outcome"] == "interrupted" and failure[1]["hook"]["signal"] == "SIGTERM"
    assert failure[1]["hook"]["group_stopped"] is True
    assert key.state() == AT_SNAPSHOT
    summary = json.loads(next(runner.evidence_dir.glob("*/summary.json")).read_text())
    stage_hooks = [h for h in summary["hooks"] if h["name"] == "stage"]
    assert stage_hooks and stage_hooks[0]["outcome"] == "interrupted" and stage_hooks[0]["signal"] == "SIGTERM"
    assert 1 in key.decrypt_all_canaries()
