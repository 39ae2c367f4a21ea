# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 13 item 4: a live rotation that no evidence bundle records stops before any change.

Real ansible-playbook runs of playbooks/rotate.yml: the collection installed (found through
ANSIBLE_COLLECTIONS_PATH, as an EE or navigator run finds it) with a configuration that does
not enable the evidence callback, and the repository's configuration with an evidence_dir
that cannot be created.
"""

from __future__ import annotations

import json
from pathlib import Path

from workflow_support import REPO, ROTATED

GUARD = "alfred.tee_kms.rotation : Validate the rotation inputs and refuse a run that must not start"


def installed_collection_config(tmp_path: Path) -> dict:
    """An ansible.cfg of someone who installed the collection: no callbacks_enabled."""
    config = tmp_path / "installed.cfg"
    config.write_text(f"[defaults]\ncollections_path = {REPO / '.collections'}\ninterpreter_python = auto_silent\n"
                      "retry_files_enabled = false\n")
    return {"ANSIBLE_CONFIG": str(config)}


def test_installed_collection_without_the_callback_exits_0_with_no_bundle(key, runner, tmp_path):
    before = key.store_bytes()
    result = runner.run(env=installed_collection_config(tmp_path))
    assert result.rc != 0, result.output
    assert result.failed_tasks() == [GUARD], result.output
    message = result.messages()[0]
    assert message.startswith("Could not start the all of key 'tokens/refresh': no evidence bundle records this run "
                              "(the alfred.tee_kms.evidence callback is not enabled). Nothing was changed."), message
    assert "allow_no_evidence=true" in message
    assert key.store_bytes() == before
    assert not runner.evidence_dir.exists()


def test_unwritable_evidence_dir_exits_0_with_a_warning(key, runner, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the evidence directory should be\n")
    before = key.store_bytes()
    result = runner.run(["-e", f"evidence_dir={blocker / 'rotation'}"])
    assert result.rc != 0, result.output
    assert result.failed_tasks() == [GUARD], result.output
    message = result.messages()[0]
    assert f"no evidence bundle records this run (could not create it under {blocker / 'rotation'}:" in message, message
    assert key.store_bytes() == before


def test_allow_no_evidence_runs_without_a_bundle_and_is_recorded_when_there_is_one(key, runner, tmp_path):
    result = runner.run(["-e", "allow_no_evidence=true"], env=installed_collection_config(tmp_path))
    assert result.rc == 0, result.output
    assert key.state() == ROTATED
    assert not runner.evidence_dir.exists()
    # With the callback, the choice is recorded in the run log and the summary.
    again = runner.run(["-e", "allow_no_evidence=true"])
    assert again.rc == 0, again.output
    (bundle,) = list(runner.evidence_dir.iterdir())
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["allow_no_evidence"] is True
    assert "WARNING allow_no_evidence=true: this run was allowed to change the key even without an evidence bundle" in \
        (bundle / "run.log").read_text()
    first = json.loads((bundle / "events.jsonl").read_text().splitlines()[0])
    assert first["type"] == "run_start" and first["allow_no_evidence"] is True


def test_check_mode_rehearsal_needs_no_bundle(key, runner, tmp_path):
    before = key.store_bytes()
    result = runner.run(["--check"], env=installed_collection_config(tmp_path))
    assert result.rc == 0, result.output
    assert key.store_bytes() == before


def test_stale_bundle_in_the_environment_does_not_count(key, runner, tmp_path):
    """A bundle path left in the environment (a previous run's) is not this run's bundle."""
    stale = tmp_path / "old-bundle"
    stale.mkdir()
    (stale / "events.jsonl").write_text("")
    before = key.store_bytes()
    env = dict(installed_collection_config(tmp_path), ALFRED_EVIDENCE_BUNDLE=str(stale), ALFRED_EVIDENCE_RUN="1")
    result = runner.run(env=env)
    assert result.rc != 0 and result.failed_tasks() == [GUARD], result.output
    assert key.store_bytes() == before


def test_spoofed_evidence_run_and_bundle_in_the_environment_do_not_count(key, runner, tmp_path):
    """Issue 22 item 11: ALFRED_EVIDENCE_RUN=$$ ALFRED_EVIDENCE_BUNDLE=<a real old bundle> ansible-playbook ...,
    the callback disabled, passed the pid test of the lookup. Only this run's callback can say it records the run."""
    rehearsal = runner.run(["--check"])  # a real bundle, of another run
    assert rehearsal.rc == 0, rehearsal.output
    (old,) = list(runner.evidence_dir.iterdir())
    before = key.store_bytes()
    env = dict(installed_collection_config(tmp_path), ALFRED_EVIDENCE_BUNDLE=str(old))
    # exec: ansible-playbook runs as the shell's own pid, the value the shell set.
    spoof = ["bash", "-c", 'export ALFRED_EVIDENCE_RUN=$$ ALFRED_EVIDENCE_ERROR=; exec "$@"', "bash"]
    result = runner.finish(runner.start(env=env, prefix=spoof))
    assert result.rc != 0 and result.failed_tasks() == [GUARD], result.output
    assert result.messages()[0].startswith(
        "Could not start the all of key 'tokens/refresh': no evidence bundle records this run "
        "(the alfred.tee_kms.evidence callback is not enabled). Nothing was changed."), result.messages()
    assert key.store_bytes() == before
    assert sorted(runner.evidence_dir.iterdir()) == [old]
