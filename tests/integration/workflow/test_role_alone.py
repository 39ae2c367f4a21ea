# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The role stands alone: a play of three lines that includes alfred.tee_kms.rotation rotates the key,
with the same guarantees as playbooks/rotate.yml (its inputs from -e, the runbook's environment and the
inventory; its own module_defaults), and its role variables (rotation_*) outrank the playbook's names."""

from __future__ import annotations

from workflow_support import PLAYBOOK, ROTATED, TARGET, Runner

THREE_LINES = """\
- name: Rotate the key with the role alone
  hosts: localhost
  roles: [alfred.tee_kms.rotation]
"""


def on_play(runner: Runner, play) -> None:
    command = runner.command

    def with_play(args=(), env_name="staging"):
        return [str(play) if part == str(PLAYBOOK) else part for part in command(args, env_name)]
    runner.command = with_play


def test_a_three_line_play_rotates_the_key(key, inventory, trust, tmp_path):
    play = tmp_path / "play.yml"
    play.write_text(THREE_LINES, encoding="utf-8")
    assert len(play.read_text().splitlines()) == 3
    runner = Runner(key, inventory, trust, tmp_path)
    on_play(runner, play)
    with key.canaries_during():
        result = runner.run()
    runner.cleanup()
    assert result.rc == 0, result.output
    assert key.state() == ROTATED
    assert result.ran("Prove the new version through the attested path before promoting it", "ok")
    assert result.ran("Mark the rotation as completed in the snapshot", "changed")


def test_role_variables_outrank_the_playbook_names(key, inventory, trust, tmp_path):
    """rotation_allowed_measurements (the role's name) wins over KMS_ALLOWED_MEASUREMENTS and kms_allowed_measurements:
    a wrong playbook value under a right role value still rotates to the role's allow-list."""
    play = tmp_path / "play.yml"
    play.write_text(THREE_LINES, encoding="utf-8")
    runner = Runner(key, inventory, trust, tmp_path)
    on_play(runner, play)
    with key.canaries_during():
        result = runner.run(["-e", "kms_allowed_measurements=" + "c" * 96, "-e", "rotation_allowed_measurements=" + ",".join(TARGET)])
    runner.cleanup()
    assert result.rc == 0, result.output
    assert key.state() == ROTATED
