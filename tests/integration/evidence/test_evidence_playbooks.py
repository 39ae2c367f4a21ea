# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Playbook-level tests: real ansible-playbook runs with the evidence callback enabled by ansible.cfg."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import verify as ev_verify

REPO_PLAYBOOKS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "playbooks")

# Planted secrets: extra vars, environment, hook output, module results, task names.
EXTRA_SECRETS = {"deploy_token": "DeployTok-42xyz", "db_password": "DbPassw0rd-99", "name_secret": "NameSecret-55"}
ENV_SECRETS = {
    "HOOK_ENV_SECRET": "EnvHookSecret123",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEBYaDH+session/token==",
}
PATTERN_SECRETS = ["AKIAIOSFODNN7EXAMPLE", "abcdefghijklmnopqrstuvwx", "rt-abcdef-123456"]
PLAY_SECRETS = ["PlayVarSecret-77x", "LiteralPlayPassw0rd"]


def forms(value):
    out = {value, json.dumps(value)[1:-1], base64.b64encode(value.encode()).decode()}
    return out


def assert_absent(text, values, where):
    for value in values:
        for form in forms(value):
            assert form not in text, f"planted secret form {form!r} found in {where}"


def run_sim(run_playbook, *args, extra=None, env=None, **kwargs):
    merged = dict(EXTRA_SECRETS, env="staging")
    merged.update(extra or {})
    return run_playbook("rotation_sim.yml", *args, extra=merged, env=dict(ENV_SECRETS, **(env or {})), **kwargs)


def verify(run_playbook, bundle, public_key=None):
    extra = {"bundle": bundle}
    if public_key:
        extra["public_key"] = public_key
    return run_playbook(os.path.abspath(os.path.join(REPO_PLAYBOOKS, "verify_evidence.yml")), extra=extra,
                        set_evidence_dir=False)


def test_secrets_never_reach_bundle_or_stdout(run_playbook, tmp_path):
    log = tmp_path / "service.log"
    log.write_text("started\n")
    result = run_sim(run_playbook, extra={"sim_log": str(log)})
    assert result.rc == 0, result.stdout + result.stderr
    files = result.file_texts()
    assert set(files) == {"run.log", "events.jsonl", "summary.json", "report.html", "MANIFEST.sha256"}
    everything = list(EXTRA_SECRETS.values()) + list(ENV_SECRETS.values()) + PATTERN_SECRETS + PLAY_SECRETS
    for name, text in files.items():
        assert_absent(text, everything, f"bundle file {name}")
    # stdout belongs to the stdout callback: it prints task names and debug messages verbatim, so
    # the secrets this playbook itself prints there (task name, debug msg) are checked in the
    # bundle only. Everything else (hook output, env, module results) must not reach stdout.
    printed_by_playbook = {EXTRA_SECRETS["name_secret"], EXTRA_SECRETS["deploy_token"], "PlayVarSecret-77x"}
    stdout_values = [v for v in everything if v not in printed_by_playbook]
    assert_absent(result.stdout + result.stderr, stdout_values, "stdout")
    assert "alfred.tee_kms.evidence" not in result.stdout + result.stderr
    # what was masked is still visible as masked, and measurements stay readable
    assert "[REDACTED:known_secret]" in files["run.log"] and "[REDACTED:aws_access_key_id]" in files["run.log"]
    assert "b2" * 48 in files["summary.json"] and "a1" * 48 in files["summary.json"]


def test_summary_chain_and_set_stats(run_playbook):
    result = run_sim(run_playbook, extra={"kms_key_id": "tokens/refresh", "awx_job_id": "77"})
    assert result.rc == 0, result.stdout + result.stderr
    bundle = result.bundle
    assert os.path.basename(bundle).startswith("staging-all-") and len(os.path.basename(bundle)) == len("staging-all-20260216T101500Z")
    summary = result.summary()
    assert summary["env"] == "staging" and summary["action"] == "all" and summary["check_mode"] is False
    assert summary["outcome"] == "success" and summary["rollback_executed"] is False
    assert summary["provider"] == "local" and summary["key_id"] == "tokens/refresh"
    assert summary["versions"] == {"current": 1, "next": 2, "primary_before": 1, "primary_after": 2}
    assert summary["allowed_measurements"]["before"] == ["a1" * 48] and summary["allowed_measurements"]["after"] == ["b2" * 48]
    assert [h["name"] for h in summary["hooks"]] == ["preflight", "stage"]
    cmd = "echo stage-hook --apply --key tokens/refresh"
    assert summary["hooks"][0]["command"] == "sha256:" + hashlib.sha256(cmd.encode()).hexdigest()
    assert len(summary["attestation"]) == 2 and summary["attestation"][0]["results"][0]["verified"] is True
    assert summary["changes"][0]["operation"] == "promote"
    assert [p["name"] for p in summary["probes"]] == ["disallowed_measurement_denied"]  # the no_log probe stays censored
    assert summary["health"][0]["status"] == 200
    assert summary["ansible_core_version"] and summary["collection_version"] == "0.1.0"
    assert summary["awx"] == {"awx_job_id": "77"}
    assert "stage-hook" not in json.dumps(result.file_texts())

    events = result.events()
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert events[0]["type"] == "run_start" and events[-1]["type"] == "end" and events[-2]["type"] == "stats"
    types = {e["type"] for e in events}
    assert {"playbook_start", "play_start", "task_start", "task_result", "item_result", "stats", "end"} <= types
    assert not any(isinstance(v, float) for e in events for v in e.values())
    censored = [e for e in events if e["type"] == "task_result" and e["task"] == "A no_log task"][0]
    assert "censored" in censored and "audit" not in censored and "stdout" not in censored
    assert not any("invocation" in e or "ansible_env" in json.dumps(e) for e in events)

    # the set_stats head is a verifiable prefix commitment: it names an actual line of the chain
    head = events[-2]["custom_stats"]["_run"]["tee_kms_evidence"]
    assert head["bundle"] == bundle
    assert events[head["seq"]]["hash"] == head["hash"]
    assert summary["chain_head"] == {"seq": events[-1]["seq"], "hash": events[-1]["hash"]}

    assert subprocess.run(["sha256sum", "-c", "MANIFEST.sha256"], cwd=bundle, capture_output=True, check=False).returncode == 0
    ok = verify(run_playbook, bundle)
    assert ok.rc == 0 and '"verified": true' in ok.stdout, ok.stdout


def test_verify_playbook_reports_tampering(run_playbook):
    result = run_sim(run_playbook)
    bundle = result.bundle
    path = os.path.join(bundle, "events.jsonl")
    lines = open(path).read().splitlines(keepends=True)
    lines[6] = lines[6].replace('"localhost"', '"otherhost"', 1)
    open(path, "w").writelines(lines)
    bad = verify(run_playbook, bundle)
    assert bad.rc != 0
    assert "events.jsonl line 7: hash does not match its content" in bad.stdout


def test_check_mode_bundle_is_a_rehearsal(run_playbook):
    result = run_sim(run_playbook, "--check", extra={"rotation_action": "preflight"})
    assert result.rc == 0, result.stdout + result.stderr
    assert os.path.basename(result.bundle).startswith("staging-preflight-")
    summary = result.summary()
    assert summary["check_mode"] is True and summary["rehearsal"] is True
    assert summary["changes"][0]["check_mode"] is True
    run_log = result.file_texts()["run.log"]
    assert "REHEARSAL" in run_log.splitlines()[0] and "REHEARSAL" in run_log
    assert result.events()[0]["check_mode"] is True


def test_automatic_rollback_outcome(run_playbook):
    result = run_sim(run_playbook, extra={"sim_fail_stage": "true"})
    assert result.rc != 0
    summary = result.summary()
    assert summary["outcome"] == "rolled_back" and summary["rollback_executed"] is True
    assert summary["rollback"]["restored_primary"] == 1
    assert summary["hooks"][1] == dict(summary["hooks"][1], name="stage", outcome="failed", rc=3)
    assert any(f["task"] == "Fail after rollback" for f in summary["failed_tasks"])
    assert ev_verify.verify_bundle(result.bundle)["verified"]


def test_show_commands_and_default_evidence_dir(run_playbook, tmp_path):
    # no evidence_dir extra var: the default artifacts/security/rotation relative to the cwd
    result = run_sim(run_playbook, extra={"show_commands": "true"}, set_evidence_dir=False)
    result.evidence_dir = str(tmp_path / "artifacts" / "security" / "rotation")
    summary = result.summary()
    assert summary["show_commands"] is True
    assert summary["hooks"][0]["command"] == "echo stage-hook --apply --key tokens/refresh"


def test_run_without_env_writes_nothing(run_playbook, tmp_path):
    result = run_playbook("rotation_sim.yml", extra={"evidence_dir": str(tmp_path / "evidence")})
    assert result.rc == 0, result.stdout + result.stderr
    assert not os.path.exists(tmp_path / "evidence")
    assert "Could not read the evidence chain head" in result.stderr + result.stdout  # lookup warns


def test_signed_bundle(run_playbook, tmp_path):
    key = ed25519.Ed25519PrivateKey.generate()
    key_path = tmp_path / "signing.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    pub_path = tmp_path / "signing.pub.pem"
    pub_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    result = run_sim(run_playbook, env={"ALFRED_EVIDENCE_SIGNING_KEY": str(key_path)})
    assert result.rc == 0
    assert "MANIFEST.sig" in result.file_texts()
    summary = result.summary()
    assert summary["signed"] is True
    assert verify(run_playbook, result.bundle, str(pub_path)).rc == 0
    other = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    bad = verify(run_playbook, result.bundle, base64.b64encode(other).decode())
    assert bad.rc != 0 and "MANIFEST.sig: signature does not verify" in bad.stdout


def test_unreadable_signing_key_warns_and_bundle_stays_valid(run_playbook, tmp_path):
    result = run_sim(run_playbook, env={"ALFRED_EVIDENCE_SIGNING_KEY": str(tmp_path / "missing.pem")})
    assert result.rc == 0
    assert "Could not read evidence signing key" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    summary = result.summary()
    assert summary["signed"] is False and "missing.pem" in summary["signing_error"]
    assert ev_verify.verify_bundle(result.bundle)["verified"]
