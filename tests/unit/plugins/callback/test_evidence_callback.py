# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The evidence callback driven directly with real ansible-core objects (Play, Task, Host, results, stats)."""

from __future__ import annotations

import json
import os

import pytest
from ansible import context
from ansible.executor.stats import AggregateStats
from ansible.executor import task_result as ansible_task_result
from ansible.inventory.host import Host
from ansible.module_utils.common.collections import ImmutableDict
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play import Play
from ansible.playbook.task import Task
from ansible.utils import vars as ansible_vars
from ansible.vars.manager import VariableManager

from ansible_collections.alfred.tee_kms.plugins.callback import evidence as cb_mod
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import verify as ev_verify


def task_result(host, task, data):
    """The real result object the running ansible-core hands to callbacks: TaskResult on 2.17/2.18,
    CallbackTaskResult on 2.19+ (whose constructor changed again in 2.21)."""
    callback_result = getattr(ansible_task_result, "CallbackTaskResult", None)
    if callback_result is None:  # ansible-core 2.17 / 2.18
        return ansible_task_result.TaskResult(host, task, dict(data), {})
    try:
        from ansible._internal._task import UnifiedTaskResult  # ansible-core 2.21+
    except ImportError:
        return callback_result(host, task, data, {})
    return callback_result(host, task, UnifiedTaskResult.from_action_result_dict(dict(data)))


class LegacyTaskResult:
    """Shape of the TaskResult handed to callbacks by ansible-core 2.17/2.18 (private attributes only)."""

    def __init__(self, host, task, result):
        self._host = host
        self._task = task
        self._result = result


class Playbook:
    _file_name = "/somewhere/rotate.yml"


@pytest.fixture(autouse=True)
def isolated(monkeypatch):
    """Extra vars are cached by ansible-core per process and the callback exports its bundle path."""
    monkeypatch.setattr(ansible_vars.load_extra_vars, "extra_vars", None, raising=False)
    monkeypatch.setenv("ALFRED_EVIDENCE_BUNDLE", "")
    yield


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("ALFRED_TEST_SESSION_TOKEN", "EnvironmentTok-123")
    extra = json.dumps({"env": "staging", "action": "stage", "evidence_dir": str(tmp_path / "ev"),
                        "show_commands": "false", "kms_key_id": "tokens/refresh", "awx_job_id": 5,
                        "vault_password": "VaultPassw0rd!"})
    old = context.CLIARGS
    context.CLIARGS = ImmutableDict(check=True, extra_vars=[extra])
    loader = DataLoader()
    vm = VariableManager(loader=loader)
    play = Play.load({"name": "rotate", "hosts": "localhost", "gather_facts": False, "tasks": [],
                      "vars": {"api_token": "PlayTokenValue-7"}}, variable_manager=vm, loader=loader)
    yield play, tmp_path
    context.CLIARGS = old


def make_task(name, action="ansible.builtin.command", no_log=False):
    # Built field by field: Task.load() would need the collection loader to resolve the action.
    task = Task()
    task.name = name
    task.action = action
    task.no_log = no_log
    return task


def test_callback_records_both_result_shapes_and_finalizes(setup):
    play, tmp_path = setup
    callback = cb_mod.CallbackModule()
    host = Host("localhost")
    callback.v2_playbook_on_start(Playbook())
    callback.v2_playbook_on_play_start(play)
    bundle = os.environ["ALFRED_EVIDENCE_BUNDLE"]
    assert os.path.basename(bundle).startswith("staging-stage-")

    hook_task = make_task("Run stage hook")
    callback.v2_playbook_on_task_start(hook_task, False)
    callback.v2_runner_on_start(host, hook_task)
    new_style = task_result(host, hook_task, {
        "changed": True, "rc": 0, "stdout": "using VaultPassw0rd! and EnvironmentTok-123 and PlayTokenValue-7",
        "cmd": "deploy --secret x", "invocation": {"module_args": {"_raw_params": "deploy --secret x"}},
        "ansible_env": {"HOME": "/root"},
        "audit": {"kind": "hook", "name": "stage", "outcome": "ok", "rc": 0, "duration_ms": 5, "command": "deploy --secret x"},
    })
    callback.v2_runner_on_ok(new_style)

    legacy_task = make_task("Read key", action="ansible.builtin.debug")
    callback.v2_playbook_on_task_start(legacy_task, False)
    callback.v2_runner_on_ok(LegacyTaskResult(host, legacy_task, {
        "changed": False, "audit": {"kind": "key_state", "key_id": "tokens/refresh", "primary_version": 3,
                                    "versions": [], "allowed_measurements": ["c" * 96]}}))

    secret_task = make_task("Hidden", no_log=True)
    callback.v2_playbook_on_task_start(secret_task, False)
    callback.v2_runner_on_failed(task_result(host, secret_task, {
        "changed": False, "_ansible_no_log": True, "failed": True, "msg": "HiddenFailure-123"}), ignore_errors=True)

    stats = AggregateStats()
    stats.increment("ok", "localhost")
    callback.v2_playbook_on_stats(stats)

    result = ev_verify.verify_bundle(bundle)
    assert result["verified"], result["reason"]
    summary = json.load(open(os.path.join(bundle, "summary.json")))
    assert summary["check_mode"] is True and summary["rehearsal"] is True
    assert summary["outcome"] == "success"  # the failure was ignore_errors
    assert summary["action"] == "stage" and summary["key_id"] == "tokens/refresh" and summary["awx"] == {"awx_job_id": 5}
    assert summary["versions"]["primary_before"] == 3
    assert summary["hooks"][0]["command"].startswith("sha256:")
    texts = "".join(open(os.path.join(bundle, n)).read() for n in os.listdir(bundle))
    for leaked in ("HiddenFailure-123", "VaultPassw0rd!", "EnvironmentTok-123", "PlayTokenValue-7", "deploy --secret", "/root", "_raw_params"):
        assert leaked not in texts, leaked
    lines = [json.loads(line) for line in open(os.path.join(bundle, "events.jsonl"))]
    results = [e for e in lines if e["type"] == "task_result"]
    assert [r["status"] for r in results] == ["changed", "ok", "failed"]
    assert results[2]["ignored"] is True and "censored" in results[2]
    assert isinstance(results[0]["duration_ms"], int)
    run_log = open(os.path.join(bundle, "run.log")).read()
    assert "REHEARSAL" in run_log
    for line in run_log.splitlines():
        assert line.startswith("[") and "Z] " in line


def test_run_without_env_is_not_recorded(tmp_path):
    old = context.CLIARGS
    context.CLIARGS = ImmutableDict(check=False, extra_vars=[json.dumps({"evidence_dir": str(tmp_path / "ev")})])
    try:
        loader = DataLoader()
        play = Play.load({"name": "x", "hosts": "localhost", "tasks": []}, variable_manager=VariableManager(loader=loader), loader=loader)
        callback = cb_mod.CallbackModule()
        callback.v2_playbook_on_start(Playbook())
        callback.v2_playbook_on_play_start(play)
        task = make_task("t")
        callback.v2_playbook_on_task_start(task, False)
        callback.v2_runner_on_ok(task_result(Host("localhost"), task, {"changed": False}))
        callback.v2_playbook_on_stats(AggregateStats())
    finally:
        context.CLIARGS = old
    assert not os.path.exists(tmp_path / "ev") and os.environ["ALFRED_EVIDENCE_BUNDLE"] == ""


def test_aborted_run_is_finalized_as_failed(setup):
    play, dummy = setup
    callback = cb_mod.CallbackModule()
    callback.v2_playbook_on_start(Playbook())
    callback.v2_playbook_on_play_start(play)
    bundle = os.environ["ALFRED_EVIDENCE_BUNDLE"]
    callback._at_exit()  # what atexit does when the run dies before stats
    summary = json.load(open(os.path.join(bundle, "summary.json")))
    assert summary["outcome"] == "failed" and summary["aborted"] is True
    assert ev_verify.verify_bundle(bundle)["verified"]


def test_callback_type_and_docs():
    assert cb_mod.CallbackModule.CALLBACK_TYPE == "notification"
    assert cb_mod.CallbackModule.CALLBACK_NEEDS_ENABLED is True
    import yaml
    doc = yaml.safe_load(cb_mod.DOCUMENTATION)
    assert doc["options"]["evidence_dir"]["default"] == "artifacts/security/rotation"
    assert {"evidence_dir", "show_commands", "signing_key"} <= set(doc["options"])
