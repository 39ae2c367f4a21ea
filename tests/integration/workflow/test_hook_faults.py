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

import secrets
from pathlib import Path

import pytest

from workflow_support import AT_SNAPSHOT, KEY_ID, SNAPSHOT_RECORD

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
        assert result.failed_tasks() == [PHASE_TASK[phase], "Fail the run after the rollback"], result.output
        assert result.messages()[-1] == (
            f"The all of key '{KEY_ID}' failed at {PHASE_TASK[phase].split(' : ')[1]}: {hook_error} "
            "- rolled back to the pre-rotation snapshot.")
        assert result.recap["rescued"] == 1
        assert result.ran("Restore the snapshot's primary version and allow-list", "changed")
        assert key.state() == AT_SNAPSHOT
        assert key.snapshot() == SNAPSHOT_RECORD
    counts = key.decrypt_all_canaries()
    assert 1 in counts
