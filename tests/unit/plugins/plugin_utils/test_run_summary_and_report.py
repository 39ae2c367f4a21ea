# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The end-of-run summary and report.html rendered from summary.json content: the views for a
live run, a rehearsal, kms_provider=command and a rollback, and HTML escaping of every value
that comes from operators or enclaves (read back with html.parser)."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.alfred.tee_kms.plugins.plugin_utils._evidence_report import render_report
from ansible_collections.alfred.tee_kms.plugins.plugin_utils._run_summary import allowlist_diff, render_summary, versions

M1, M2, M3 = "a1" * 48, "b2" * 48, "c3" * 48
URL = "http://127.0.0.1:9/enclaves/"
EVIL = "<script>alert(1)</script>\"'&<img src=x onerror=alert(2)>"


def attestation(purpose, rows):
    return {"purpose": purpose, "task": "t", "results": [
        {"source": URL + name, "verified": measurement is not None, "measurement": measurement,
         "reason": "verified" if measurement else reason} for name, measurement, reason in rows]}


LIVE = {
    "env": "staging", "action": "all", "provider": "local", "key_id": "tokens/refresh", "outcome": "success",
    "rehearsal": False, "check_mode": False, "failed_tasks": [], "chain_head": {"seq": 9, "hash": "f" * 64},
    "versions": {"current": 1, "next": 2, "primary_before": 1, "primary_after": 2},
    "allowed_measurements": {"before": [M1, M3], "after": [M1, M2], "target": [M1, M2]},
    "attestation": [attestation("rotation-preflight", [("enclave-1", M1, None), ("enclave-2", None, "stale evidence")]),
                    attestation("rotation-validate", [("enclave-1", M1, None)])],
    "probes": [{"name": "canary", "passed": True, "detail": "decrypted"}],
    "hooks": [{"name": "validate", "outcome": "ok", "rc": 0, "duration_ms": 5, "command_sha256": "sha256:ab",
               "stdout_tail": ["smoke-ok"], "stderr_tail": []}],
    "rollback": {"executed": False}, "changes": [], "measurement_labels": {M2: "api-v43"},
    "enclave_names": {URL + "enclave-1": "enclave-1", URL + "enclave-2": "enclave-2"}, "awx": {}, "signed": False,
}


def test_live_summary_lists_every_fact():
    text = render_summary(LIVE, "/evidence/staging-all-1")
    lines = text.splitlines()
    assert lines[0].startswith("ALFRED TEE KMS LIVE SUMMARY") and lines[2] == "outcome: SUCCESS"
    assert "primary version: 1 -> 2" in lines
    assert lines[lines.index("allow-list:") + 1:lines.index("allow-list:") + 4] == [
        f"  + {M2[:12]} (api-v43)  added", f"  - {M3[:12]}  removed", f"  = {M1[:12]}  kept"]
    assert "  preflight  enclave-2  -  stale evidence" in lines
    assert f"  validate   enclave-1  {M1[:12]}  verified" in lines
    assert "  validate: ok rc=0 (5 ms)" in lines and "rollback: not executed" in lines
    assert lines[-3:] == ["evidence: /evidence/staging-all-1", f"chain head: seq 9 sha256 {'f' * 64}",
                          "report: /evidence/staging-all-1/report.html"]


def test_rehearsal_marks_predictions_and_skipped_probes():
    summary = dict(copy.deepcopy(LIVE), rehearsal=True, check_mode=True,
                   probes=[{"name": "canary", "passed": None, "skipped": True, "detail": "not run in check mode: why"}])
    summary["versions"]["primary_after"] = 1
    summary["allowed_measurements"]["after"] = [M1, M3]
    assert versions(summary) == {"before": 1, "after": 1, "note": "rehearsal: would become 2"}
    assert [(r["change"], r["measurement"]) for r in allowlist_diff(summary)] == [
        ("would_add", M2), ("would_remove", M3), ("kept", M1)]
    text = render_summary(summary, "/b")
    assert "ALFRED TEE KMS REHEARSAL SUMMARY" in text and "  canary: skipped - not run in check mode: why" in text


def test_command_provider_and_rollback_by_hook():
    summary = dict(copy.deepcopy(LIVE), provider="command", outcome="rolled_back",
                   failed_tasks=[{"task": "Run the stage hook", "msg": "Could not run the stage hook: it exited with code 4"}],
                   rollback={"executed": True, "via": "rollback hook", "outcome": "ok", "rc": 0})
    summary["versions"] = {"current": "v1", "next": "v2", "primary_before": None, "primary_after": None}
    summary["allowed_measurements"] = {"before": None, "after": None, "target": [M1, M2]}
    assert [r["change"] for r in allowlist_diff(summary)] == ["target", "target"]
    lines = render_summary(summary, "/b").splitlines()
    assert "primary version: v1 -> v2 (planned; the hooks carried out the transition)" in lines
    assert "  cause: Could not run the stage hook: it exited with code 4" in lines
    assert "rollback: executed by the rollback hook: ok rc=0" in lines


@pytest.fixture
def hostile_summary():
    summary = copy.deepcopy(LIVE)
    summary.update(env=EVIL, key_id=EVIL, outcome=EVIL, measurement_labels={M1: EVIL, M2: EVIL + "2"},
                   enclave_names={URL + "enclave-1": EVIL}, awx={"awx_job_id": EVIL, "awx_job_template_name": EVIL},
                   operator=EVIL, failed_tasks=[{"task": EVIL, "msg": EVIL}], signing_error=EVIL)
    summary["hooks"][0].update(name=EVIL, stdout_tail=[EVIL, "</pre><script>x()</script>"], stderr_tail=[EVIL])
    summary["attestation"][0]["results"][1]["reason"] = EVIL
    summary["probes"][0]["detail"] = EVIL
    return summary


def test_report_escapes_every_value(hostile_summary, report_tables):
    text = render_report(hostile_summary)
    assert "<script" not in text.lower() and "<img" not in text.lower()
    report = report_tables(text)
    assert report.active == [] and report.external == []
    facts = report.facts("run")
    # Every hostile value is shown as the exact text it was.
    assert facts["Environment"] == facts["Key"] == facts["Outcome"] == facts["Operator"] == " ".join(EVIL.split())
    assert facts["Signature"] == "NOT signed: " + " ".join(EVIL.split())
    assert report.title.startswith(EVIL)
    rows = report.rows("attestation")
    assert rows[0][0] == " ".join(EVIL.split()) and rows[0][2] == f"{M1} " + " ".join(EVIL.split())
    assert rows[1][2:] == ["-", " ".join(EVIL.split()), "-", "not attested"]
    assert report.rows("probes")[0][2] == " ".join(EVIL.split())
    assert report.outputs[(EVIL, "stdout")] == EVIL + "\n</pre><script>x()</script>"
    assert dict(report.rows("labels")) == {M1: " ".join(EVIL.split()), M2: " ".join((EVIL + "2").split())}


def test_report_loads_nothing_and_states_its_signature(report_tables):
    unsigned = render_report(LIVE)
    assert "Content-Security-Policy" in unsigned and "default-src 'none'" in unsigned
    assert "http://" not in unsigned.replace(URL, "") and "https://" not in unsigned
    assert report_tables(unsigned).facts()["Signature"] == "not signed (no signing key configured)"
    signed = report_tables(render_report(dict(LIVE, signed=True, signing_public_key="QUJD")))
    assert signed.facts()["Signature"] == "signed (Ed25519 over MANIFEST.sha256, public key QUJD)"
    assert signed.rows("allowlist") == [["added", f"{M2} api-v43"], ["removed", M3], ["kept", M1]]
    assert signed.rows("versions") == [["before", "1", ""], ["after", "2", ""]]


# Issue 22 item 8: what enclaves and KMS endpoints sent, as the summary quotes it.
TERMINAL = "\x1b]0;owned\x07\x1b[2J\x9b1A\rok\u202e\nforged: SUCCESS"
TERMINAL_SHOWN = "\\x1b]0;owned\\x07\\x1b[2J\\x9b1A\\x0dok\\u202e\\x0aforged: SUCCESS"


def _raw_controls(text: str) -> list:
    return sorted({hex(ord(c)) for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F or c == "\u202e"})


def test_summary_escapes_control_sequences_from_enclaves_and_kms():
    summary = copy.deepcopy(LIVE)
    summary["attestation"][0]["results"][1]["reason"] = "signature: " + TERMINAL
    summary["attestation"][0]["results"][1]["measurement"] = TERMINAL
    summary["probes"][0]["detail"] = "KMS refused it (" + TERMINAL + ")"
    summary["failed_tasks"] = [{"task": "t", "msg": "Could not decrypt: AWS KMS answered " + TERMINAL}]
    summary["enclave_names"] = {URL + "enclave-2": TERMINAL}
    text = render_summary(summary, "/evidence/" + TERMINAL)
    assert _raw_controls(text) == []
    lines = text.splitlines()
    assert not any(line.startswith("forged") for line in lines)  # a line feed cannot forge a line of its own
    assert f"  preflight  {TERMINAL_SHOWN}  {TERMINAL_SHOWN[:12]}  signature: {TERMINAL_SHOWN}" in lines
    assert f"  canary: passed - KMS refused it ({TERMINAL_SHOWN})" in lines
    assert f"  cause: Could not decrypt: AWS KMS answered {TERMINAL_SHOWN}" in lines
    assert f"evidence: /evidence/{TERMINAL_SHOWN}" in lines
