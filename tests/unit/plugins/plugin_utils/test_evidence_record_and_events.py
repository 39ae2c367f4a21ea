# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plain-data side of the evidence callback: a run's settings, its record and outcome, the
events and run.log lines of results, and summary.json built from the record."""

from __future__ import annotations

import os

from ansible_collections.alfred.tee_kms.plugins.plugin_utils import _evidence_events as events
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_bundle import ChainWriter
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_record import OPTION_DEFAULTS, RunRecord, RunSettings, TaskRef
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_summary import build_summary


def settings(extra=None, play_vars=None, key_hosts=(), **options):
    return RunSettings.from_run(dict({"env": "staging"}, **(extra or {})), dict(OPTION_DEFAULTS, **options), False, play_vars,
                                {}, key_hosts)


def test_settings_precedence_and_aliases(tmp_path, monkeypatch):
    monkeypatch.delenv("KMS_KEY_ID", raising=False)
    assert settings(play_vars={"evidence_dir": str(tmp_path / "play")}).evidence_dir == str(tmp_path / "play")
    assert settings({"evidence_dir": str(tmp_path / "extra")}, {"evidence_dir": "x"}).evidence_dir == str(tmp_path / "extra")
    # A templated play var cannot be rendered at the first play: the option's value is used.
    templated = settings(play_vars={"evidence_dir": "{{ base }}/ev"}, evidence_dir=str(tmp_path / "opt"))
    assert templated.evidence_dir == str(tmp_path / "opt")
    assert settings().evidence_dir == os.path.abspath(OPTION_DEFAULTS["evidence_dir"])
    assert settings({"action": "stage"}).action == "stage" and settings({"rotation_action": "validate", "action": "x"}).action == "validate"
    run = settings({"show_commands": "true", "awx_job_id": 7, "awx_token": "t0ken-value", "tower_user_name": "ops", "other": 1})
    assert run.show_commands is True and run.awx == {"awx_job_id": 7, "tower_user_name": "ops"}
    monkeypatch.setenv("KMS_KEY_ID", "tokens/env")
    assert settings().key_id == "tokens/env" and settings({"kms_key_id": "tokens/x"}).key_id == "tokens/x"
    assert settings(max_output=0).max_output == OPTION_DEFAULTS["max_output"] and settings(max_output=10).max_output == 10


def test_censored_results_keep_only_that_they_were_censored():
    task = TaskRef(name="Hidden", action="ansible.builtin.command", uuid="u1", no_log=True)
    data = {"changed": True, "rc": 0, "stdout": "s3cret", "cmd": "x", "item": "s3cret"}
    event = events.result(data, task, "h", "changed", False, False, 100, True, duration_ms=5)
    assert event == {"host": "h", "task": "Hidden", "action": "ansible.builtin.command", "status": "changed", "changed": True,
                     "task_uuid": "u1", "duration_ms": 5, "censored": events.CENSORED}
    item = events.result(data, task, "h", "changed", True, False, 100, True)
    assert item["item"] == "(censored due to no_log)" and "stdout" not in item


def test_result_fields_are_allow_listed_and_clipped():
    task = TaskRef(name="Run", action="ansible.builtin.command", uuid="u2")
    data = {"rc": 2, "stdout": "x" * 30, "msg": "", "cmd": "deploy", "invocation": {"module_args": {}}, "results": [1, 2]}
    event = events.result(data, task, "h", "failed", False, True, 10, False)
    assert event["stdout"] == "x" * 10 + "... [truncated 20 chars]" and event["ignored"] is True and event["items"] == 2
    assert "cmd" not in event and "msg" not in event and "invocation" not in event
    assert events.result(data, task, "h", "failed", False, True, 10, True)["cmd"] == "deploy"
    assert events.result_level("failed", True) == "WARNING" and events.result_level("unreachable", False) == "ERROR"


def test_result_message_caps_each_stream_and_redacts_it_whole():
    event = {"host": "h", "task": "Run", "status": "failed", "rc": 1, "duration_ms": 3, "msg": "boom",
             "stdout": "\n".join(f"line {n}" for n in range(events.LOG_LINES + 5)), "audit": [{"kind": "health", "name": "api"}]}
    lines = events.result_message(event, lambda text: text.replace("line 1\n", "[gone]\n")).splitlines()
    assert lines[0] == "failed: [h] Run rc=1 (3 ms)" and lines[1] == "  msg: boom"
    assert "  stdout: [gone]" in lines and lines[-2] == "  stdout: ... (5 more lines in events.jsonl)"
    assert lines[-1] == "  audit: health name=api"


def test_a_run_over_key_hosts_concludes_per_key(tmp_path):
    record = RunRecord(settings=settings(key_hosts={"key-a", "key-b"}))
    record.add_audit({"kind": "rollback", "executed": True, "outcome": "ok"}, "Restore", "key-a")
    record.add_audit({"kind": "key_state", "key_id": "k-b", "primary_version": 2}, "Read", "key-b")
    end = record.conclude({"key-a": {"failures": 1}, "key-b": {"ok": 3}}, run_failed=True, aborted=False)
    assert [(k["host"], k["outcome"]) for k in end.keys] == [("key-a", "rolled_back"), ("key-b", "success")]
    assert end.outcome == "rolled_back" and end.action == "all" and end.check_mode is False
    record.chain = ChainWriter(str(tmp_path / "events.jsonl"))
    record.chain.append("end", {})
    summary = build_summary(record, end)
    assert summary["keys"] == end.keys and summary["key_id"] is None and summary["rollback"] == {"executed": True, "keys": ["key-a"]}
    assert summary["chain_head"] == {"seq": 0, "hash": record.chain.head} and summary["events"] == 1
    assert summary["env"] == "staging" and summary["allow_no_evidence"] is False and summary["signed"] is False
