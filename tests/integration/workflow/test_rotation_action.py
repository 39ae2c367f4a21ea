# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""rotation_action picks the step without the warning ansible-core prints for a variable named
`action` (a task keyword); the old `-e action=...` command lines keep working; two different
values are refused before anything changes; rotation_action=create makes the key."""

from __future__ import annotations

import json
import re

from workflow_support import AT_SNAPSHOT, KEY_ID, ROTATED, TARGET, Runner

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider

# ansible-core 2.19+ words it "reserved name 'action'", 2.17 "reserved name: action".
RESERVED = re.compile(r"Found variable using reserved name:? '?action'?")


def bundles(runner) -> list:
    return sorted(p.name for p in runner.evidence_dir.iterdir() if p.is_dir())


def summary(runner, name) -> dict:
    return json.loads((runner.evidence_dir / name / "summary.json").read_text(encoding="utf-8"))


def test_rotation_action_runs_the_step_without_the_reserved_name_warning(key, runner):
    rotated = runner.run(["-e", "rotation_action=all"])
    assert rotated.rc == 0, rotated.output
    assert key.state() == ROTATED
    rollback = runner.run(["-e", "rotation_action=rollback"], versions=False)
    assert rollback.rc == 0, rollback.output
    assert key.state() == AT_SNAPSHOT
    for result in (rotated, rollback):
        assert not RESERVED.search(result.stdout + result.stderr), result.output
    names = bundles(runner)
    assert [n.split("-")[1] for n in names] == ["all", "rollback"], names
    assert summary(runner, names[1])["action"] == "rollback"


def test_the_deprecated_action_still_works(key, runner):
    key_before, state_before = key.store_bytes(), key.state()
    preflight = runner.run(["-e", "action=preflight"])
    assert preflight.rc == 0, preflight.output
    assert not preflight.ran("Stage")  # preflight only: the key keeps its primary and allow-list
    after = key.state()
    assert (after["primary"], after["allowed"]) == (state_before["primary"], state_before["allowed"])
    # ansible-core itself warns about the old name: the warning is the deprecation notice.
    assert RESERVED.search(preflight.stdout + preflight.stderr), preflight.output
    names = bundles(runner)
    assert len(names) == 1 and names[0].startswith("staging-preflight-"), names
    assert summary(runner, names[0])["action"] == "preflight"
    assert key.store_bytes() != key_before  # preflight records the snapshot with the key


def test_two_different_actions_are_refused_before_anything_changes(key, runner):
    before = key.store_bytes()
    result = runner.run(["-e", "rotation_action=preflight", "-e", "action=rollback"])
    assert result.rc == 2, result.output
    assert result.messages() == [
        "Could not validate input rotation_action: it is 'preflight' but the deprecated variable action is 'rollback'; "
        "give only rotation_action."]
    assert key.store_bytes() == before


def test_the_same_value_under_both_names_is_accepted(key, runner):
    result = runner.run(["-e", "rotation_action=preflight", "-e", "action=preflight", "--check"])
    assert result.rc == 0, result.output


def test_rotation_action_create_makes_the_key_rehearsed_first(tmp_path, inventory, trust, fleet):
    """rotation_action=create (playbooks/create_key.yml): check mode writes nothing; the key keeps its trust."""
    store = tmp_path / "kms" / "store.json"
    store.parent.mkdir(mode=0o700)
    runner = Runner(type("K", (), {"store_path": store})(), inventory, trust, tmp_path)
    try:
        rehearsal = runner.run(["-e", "rotation_action=create", "--check", "--diff"])
        assert rehearsal.rc == 0, rehearsal.output
        assert "would be created" in rehearsal.stdout and not store.exists()
        created = runner.run(["-e", "rotation_action=create"])
        assert created.rc == 0, created.output
        assert not RESERVED.search(created.stdout + created.stderr)
        key = LocalKmsProvider(str(store)).describe_key(KEY_ID)
        assert key["primary_version"] == 1 and sorted(key["allowed_measurements"]) == TARGET
        assert key["attestation_trust"] == trust
        again = runner.run(["-e", "rotation_action=create"])
        assert again.rc == 0 and again.recap["changed"] == 0, again.output
        assert "already exists" in again.stdout
    finally:
        runner.cleanup()
