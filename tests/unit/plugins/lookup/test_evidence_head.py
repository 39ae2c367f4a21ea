# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 22 item 11: the evidence_head lookup (current_run) believes only the evidence callback of
its own process, never the environment: ALFRED_EVIDENCE_RUN / ALFRED_EVIDENCE_BUNDLE set by whoever
started ansible-playbook prove nothing. The real lookup, its options defined as ansible-core defines them,
run in this process and in a forked child (as ansible-core's workers run it)."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from ansible import constants as C

from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_bundle import ChainWriter
from ansible_collections.alfred.tee_kms.plugins.lookup import evidence_head
from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _evidence_state as evidence_state

GUARD = dict(on_missing="ignore", current_run=True, report_cause=True)


@pytest.fixture(scope="module")
def lookup():
    """The lookup as ansible-core's plugin loader sets it up: its options defined from its DOCUMENTATION."""
    plugin = evidence_head.LookupModule()
    plugin._load_name = "alfred.tee_kms.evidence_head"
    C.config.initialize_plugin_configuration_definitions("lookup", plugin._load_name,
                                                         yaml.safe_load(evidence_head.DOCUMENTATION)["options"])
    return plugin


@pytest.fixture(autouse=True)
def no_callback_state(monkeypatch):
    monkeypatch.setattr(evidence_state, "_STATE", {})
    yield


def bundle(tmp_path, name="staging-all-20260101T000000Z") -> str:
    path = tmp_path / name
    path.mkdir()
    ChainWriter(str(path / "events.jsonl")).append("run_start", {"env": "staging"}, ts="2026-01-01T00:00:00Z")
    return str(path)


def test_a_spoofed_environment_is_not_this_runs_bundle(lookup, tmp_path, monkeypatch):
    monkeypatch.setenv("ALFRED_EVIDENCE_BUNDLE", bundle(tmp_path))
    for pid in (os.getpid(), os.getppid()):  # the pid test the lookup used to make
        monkeypatch.setenv("ALFRED_EVIDENCE_RUN", str(pid))
        assert lookup.run([], {}, **GUARD) == [{"cause": "the alfred.tee_kms.evidence callback is not enabled"}]


def test_this_processes_callback_is_believed_in_the_process_and_in_a_forked_worker(lookup, tmp_path, monkeypatch):
    monkeypatch.delenv("ALFRED_EVIDENCE_BUNDLE", raising=False)
    ours = bundle(tmp_path)
    evidence_state.started(ours)
    head = lookup.run([], {}, **GUARD)[0]
    assert head["bundle"] == ours and head["seq"] == 0 and len(head["hash"]) == 64
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # an Ansible worker: forked from the controller after the callback started the bundle
        try:
            os.write(write, json.dumps(lookup.run([], {}, **GUARD)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        assert json.loads(pipe.read()) == [head]
    os.waitpid(child, 0)


def test_the_callbacks_own_cause_is_reported(lookup, tmp_path, monkeypatch):
    monkeypatch.setenv("ALFRED_EVIDENCE_BUNDLE", bundle(tmp_path))  # another run's, ignored
    monkeypatch.setenv("ALFRED_EVIDENCE_ERROR", "spoofed")
    evidence_state.not_started("could not create it under /nowhere: Permission denied")
    assert lookup.run([], {}, **GUARD) == [{"cause": "could not create it under /nowhere: Permission denied"}]
    # Without current_run the callback of this process still wins over the environment.
    assert lookup.run([], {}, on_missing="ignore") == [{}]
