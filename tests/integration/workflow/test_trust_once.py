# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The attestation trust is given once, when the key is created: a rotation without
attestation_trust verifies the live enclaves against the trust kept with the key, and a key
without trust (nor one given) is refused before anything changes, naming the variable."""

from __future__ import annotations

import json

from workflow_support import KEY_ID, M_CURRENT, ROTATED, Runner

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider


def without_trust(runner: Runner, args=()) -> list:
    """The runner's command line without its -e attestation_trust."""
    cmd = runner.command(args)
    i = cmd.index(json.dumps({"attestation_trust": runner.trust}))
    return cmd[:i - 1] + cmd[i + 1:]


def test_a_rotation_uses_the_trust_kept_with_the_key(key, runner):
    cmd = without_trust(runner)
    runner.command = lambda args=(), env_name="staging": cmd
    result = runner.run()
    assert result.rc == 0, result.output
    assert key.state() == ROTATED
    assert result.ran("Read the key state and check that no other rotation holds its lock", "ok")


def test_a_key_without_trust_is_refused_naming_the_variable(tmp_path, inventory, trust, fleet):
    store = tmp_path / "kms" / "store.json"
    store.parent.mkdir(mode=0o700)
    LocalKmsProvider(str(store)).create_key(KEY_ID, [M_CURRENT], "sha384", None)
    key = type("K", (), {"store_path": store})()
    runner = Runner(key, inventory, trust, tmp_path)
    before = store.read_bytes()
    cmd = without_trust(runner)
    runner.command = lambda args=(), env_name="staging": cmd
    result = runner.run()
    runner.cleanup()
    assert result.rc == 2, result.output
    assert result.messages()[0] == (
        f"Could not verify the live attestation of the enclaves for key '{KEY_ID}': no trust anchors for format alfred. "
        "Give them with -e @trust.yml (attestation_trust in playbooks/rotate.yml, rotation_attestation_trust for the role), "
        "or keep them with the key (playbooks/create_key.yml, alfred.tee_kms.kms_key attestation_trust).")
    assert store.read_bytes() == before
