# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the operator sees after a real rotation: the end-of-run summary on stdout, report.html in
the bundle (read with html.parser and rendered by headless Chromium), the hooks' output in the
evidence, and console and summary.json agreeing on whether a rollback ran.

Real ansible-playbook runs of playbooks/rotate.yml against the simulated enclave fleet.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from workflow_support import KEY_ID, M_CURRENT, M_NEW, M_PROBE

from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.verify import verify_bundle

HOSTILE = "<script>alert('owned')</script>"
FAKE_AWS_KEY = "AKIA" + "Q3EXAMPLEQ3EXAMP"  # an AWS access key id pattern: must be redacted in every output
VALIDATE_HOOK = f"echo smoke-ok; echo \"{HOSTILE}\"; echo key={FAKE_AWS_KEY}; echo warn-on-stderr >&2"


def summary_block(stdout: str) -> list:
    """The lines of the end-of-run summary (from its title to the report line)."""
    lines = stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("ALFRED TEE KMS ") and "SUMMARY" in line]
    assert len(starts) == 1, f"expected one end-of-run summary in stdout:\n{stdout[-4000:]}"
    block = lines[starts[0]:]
    end = next(i for i, line in enumerate(block) if line.startswith("report: "))
    return block[:end + 1]


def newest_bundle(runner) -> Path:
    bundles = sorted(p for p in runner.evidence_dir.iterdir() if p.is_dir())
    assert bundles, f"no evidence bundle under {runner.evidence_dir}"
    return max(bundles, key=lambda p: p.stat().st_mtime)


def test_live_rotation_prints_the_summary_and_the_report_holds_the_tables(key, runner, tmp_path, report_tables, chromium_dom):
    result = runner.run(env={"ALFRED_ROTATION_VALIDATE_CMD": VALIDATE_HOOK, "ALFRED_ROTATION_STAGE_CMD": "echo staged"})
    assert result.rc == 0, result.output
    bundle = newest_bundle(runner)
    summary = json.loads((bundle / "summary.json").read_text())
    block = summary_block(result.stdout)
    # The recorded stdout of this rotation, kept with the test's files for a reader of a failure.
    (tmp_path / "recorded-stdout.txt").write_text(result.stdout)

    # --- the summary, after PLAY RECAP, from the collection's own callback -------------------
    assert result.stdout.index("PLAY RECAP") < result.stdout.index(block[0])
    assert block[0].startswith("ALFRED TEE KMS LIVE SUMMARY")
    assert block[1] == f"env: staging  key: {KEY_ID}  provider: local  action: all  mode: LIVE"
    assert block[2] == "outcome: SUCCESS"
    assert "primary version: 1 -> 2" in block
    assert f"  + {M_NEW[:12]}  added" in block and f"  = {M_CURRENT[:12]}  kept" in block
    # Every enclave by its inventory name, at preflight and at validate, with its measurement.
    for step in ("preflight", "validate"):
        for name, measurement in (("enclave-1", M_CURRENT), ("enclave-2", M_CURRENT), ("enclave-3", M_NEW)):
            assert f"  {step:<10} {name}  {measurement[:12]}  verified" in block, block
    for probe in ("canary: passed", "allowed_decrypt: passed", "disallowed_denied: passed", "unattested_denied: passed"):
        assert any(line.startswith(f"  {probe} - ") for line in block), (probe, block)
    assert any(re.fullmatch(r"  stage: ok rc=0 \(\d+ ms\)", line) for line in block), block
    assert any(re.fullmatch(r"  validate: ok rc=0 \(\d+ ms\)", line) for line in block), block
    assert "rollback: not executed" in block
    assert f"evidence: {bundle}" in block
    assert f"chain head: seq {summary['chain_head']['seq']} sha256 {summary['chain_head']['hash']}" in block
    assert f"report: {bundle}/report.html" in block
    assert FAKE_AWS_KEY not in result.stdout

    # --- hook output in the evidence: redacted tails of both streams -------------------------
    validate = next(h for h in summary["hooks"] if h["name"] == "validate")
    assert validate["stdout_tail"][0] == "smoke-ok" and HOSTILE in validate["stdout_tail"]
    assert validate["stderr_tail"] == ["warn-on-stderr"]
    assert FAKE_AWS_KEY not in json.dumps(summary) and "[REDACTED" in validate["stdout_tail"][2]
    assert next(h for h in summary["hooks"] if h["name"] == "stage")["stdout_tail"] == ["staged"]

    # --- report.html: in the manifest, verified like any file, tables filled from the bundle --
    manifest = (bundle / "MANIFEST.sha256").read_text()
    assert re.search(r"^[0-9a-f]{64}  report\.html$", manifest, re.M)
    assert verify_bundle(str(bundle))["verified"]
    text = (bundle / "report.html").read_text()
    assert FAKE_AWS_KEY not in text and HOSTILE not in text  # escaped, never raw markup
    check_report(report_tables(text), summary, bundle)

    # The same tables in the DOM a browser builds (headless Chromium, network off).
    dom = chromium_dom(bundle / "report.html", tmp_path)
    check_report(report_tables(dom), summary, bundle)

    # A report edited after the run no longer verifies.
    (bundle / "report.html").write_text(text.replace("SUCCESS", "success").replace("enclave-3", "enclave-9"))
    tampered = verify_bundle(str(bundle))
    assert not tampered["verified"] and "report.html" in tampered["reason"], tampered


def check_report(report, summary: dict, bundle: Path) -> None:
    assert report.active == [] and report.external == [], (report.active, report.external)
    facts = report.facts("run")
    assert facts["Environment"] == "staging" and facts["Key"] == KEY_ID and facts["Mode"] == "LIVE"
    assert facts["Outcome"] == "success" and facts["Operator"]
    assert facts["Chain head"] == f"seq {summary['chain_head']['seq']} sha256 {summary['chain_head']['hash']}"
    assert facts["Signature"] == "not signed (no signing key configured)"
    assert report.rows("versions") == [["before", "1", ""], ["create_version", "1", ""], ["set_primary", "2", ""],
                                       ["after", "2", ""]]
    assert report.rows("allowlist") == [["added", M_NEW], ["kept", M_CURRENT]]
    assert report.tables["attestation"][0] == ["Enclave", "URL", "preflight: measurement", "preflight: result",
                                               "validate: measurement", "validate: result"]
    rows = {row[0]: row for row in report.rows("attestation")}
    assert set(rows) == {"enclave-1", "enclave-2", "enclave-3"}
    assert rows["enclave-3"][2:] == [M_NEW, "verified", M_NEW, "verified"]
    assert rows["enclave-1"][2:] == [M_CURRENT, "verified", M_CURRENT, "verified"]
    probes = report.rows("probes")
    assert [p[0] for p in probes] == [p["name"] for p in summary["probes"]]
    assert all(p[1] == "passed" for p in probes), probes
    hooks = {row[0]: row for row in report.rows("hooks")}
    assert hooks["validate"][1:3] == ["ok", "0"] and hooks["stage"][1:3] == ["ok", "0"]
    assert hooks["validate"][4].startswith("sha256:")  # the command text stays secret
    # Hostile hook output is text in the page, not an element.
    assert report.outputs[("validate", "stdout")].splitlines()[:2] == ["smoke-ok", HOSTILE]
    assert report.outputs[("validate", "stderr")] == "warn-on-stderr"
    assert dict(report.rows("rollback"))["Executed"] == "no"


def test_failed_stage_hook_console_summary_and_report_agree_on_the_rollback(key, runner, report_tables):
    failing = "echo half-done; echo 'stage broke: quota' >&2; exit 7"
    result = runner.run(env={"ALFRED_ROTATION_STAGE_CMD": failing})
    assert result.rc == 2, result.output
    bundle = newest_bundle(runner)
    summary = json.loads((bundle / "summary.json").read_text())
    assert result.messages()[-1].endswith("- rolled back to the pre-rotation snapshot."), result.messages()
    assert summary["rollback"]["executed"] is True and summary["outcome"] == "rolled_back"
    block = summary_block(result.stdout)
    assert "outcome: ROLLED_BACK" in block
    assert "  cause: Could not run the stage hook: it exited with code 7" in block
    # The stage hook runs after the allow-list gained the new image, which a live enclave already
    # runs: the rollback keeps it (issue 13), so nothing is restored and the rotation is closed.
    assert ("rollback: executed: the key was already at its pre-rotation snapshot; the interrupted rotation was closed"
            in block), block
    assert any(re.fullmatch(r"  stage: failed rc=7 \(\d+ ms\)", line) for line in block), block
    stage = summary["hooks"][0]
    assert (stage["stdout_tail"], stage["stderr_tail"]) == (["half-done"], ["stage broke: quota"])
    run_log = (bundle / "run.log").read_text()
    assert re.search(r"\] ERROR     stdout: half-done\n.*\] ERROR     stderr: stage broke: quota$", run_log, re.M), run_log[-3000:]
    report = report_tables((bundle / "report.html").read_text())
    assert dict(report.rows("rollback"))["Executed"] == "yes"
    assert report.rows("versions")[-2][0] == "rollback" and report.rows("versions")[-1][:2] == ["after", "1"]
    assert report.outputs[("stage", "stderr")] == "stage broke: quota"


def test_failed_stage_that_left_the_key_unchanged_reports_the_rollback_that_closed_it(key, runner):
    """The allow-list already is the target and the stage hook fails before the promotion: the restore
    finds the key at its snapshot and closes the interrupted rotation. Console, summary.json and the
    summary block all say the rollback ran, and what it found."""
    key.provider.set_allowed_measurements(KEY_ID, [M_CURRENT, M_NEW])
    result = runner.run(env={"ALFRED_ROTATION_STAGE_CMD": "exit 5"})
    assert result.rc == 2, result.output
    assert result.messages()[-1].endswith("- rolled back to the pre-rotation snapshot."), result.messages()
    summary = json.loads((newest_bundle(runner) / "summary.json").read_text())
    assert summary["rollback"]["executed"] is True and summary["rollback"]["outcome"] == "already_at_snapshot"
    assert summary["rollback_executed"] is True and summary["outcome"] == "rolled_back"
    assert ("rollback: executed: the key was already at its pre-rotation snapshot; the interrupted rotation was closed"
            in summary_block(result.stdout))
    assert key.state()["snapshot_status"] == "rolled_back"
    assert key.state()["primary"] == 1 and key.state()["lock"] is None


def test_command_provider_hooks_are_the_transition_and_the_rollback(key, runner, tmp_path):
    """kms_provider=command: the hooks ARE the rotation. A failing stage hook is followed by the
    rollback hook; summary.json and the console both say the rollback hook rolled back."""
    env = {"ALFRED_ROTATION_PREFLIGHT_CMD": "echo preflight-ok", "ALFRED_ROTATION_STAGE_CMD": "echo moving; exit 4",
           "ALFRED_ROTATION_VALIDATE_CMD": "echo smoke-ok", "ALFRED_ROTATION_ROLLBACK_CMD": "echo restored-v1"}
    result = runner.run(["-e", "kms_provider=command"], env=env)
    assert result.rc == 2, result.output
    summary = json.loads((newest_bundle(runner) / "summary.json").read_text())
    assert result.messages()[-1].endswith("- rolled back by the rollback hook."), result.messages()
    assert summary["rollback"]["executed"] is True and summary["rollback"]["via"] == "rollback hook"
    assert summary["rollback_executed"] is True and summary["outcome"] == "rolled_back"
    assert summary["transition"]["evidence"] == "hooks"
    assert [(h["name"], h["outcome"], h["rc"]) for h in summary["transition"]["hooks"]] == [
        ("preflight", "ok", 0), ("stage", "failed", 4), ("rollback", "ok", 0)]
    assert next(h for h in summary["hooks"] if h["name"] == "rollback")["stdout_tail"] == ["restored-v1"]
    block = summary_block(result.stdout)
    assert "rollback: executed by the rollback hook: ok rc=0" in block
    assert "  (kms_provider=command: these hooks are the evidence of the transition)" in block
    assert "primary version: 1 -> 2 (planned; the hooks carried out the transition)" in block

    # The successful runbook model: the summary names the hooks as the transition evidence.
    env["ALFRED_ROTATION_STAGE_CMD"] = "echo moved-to-v2"
    ok = runner.run(["-e", "kms_provider=command"], env=env)
    assert ok.rc == 0, ok.output
    summary = json.loads((newest_bundle(runner) / "summary.json").read_text())
    assert summary["outcome"] == "success" and summary["rollback"] == {"executed": False}
    assert [(h["name"], h["outcome"]) for h in summary["transition"]["hooks"]] == [
        ("preflight", "ok"), ("stage", "ok"), ("validate", "ok")]
    assert next(h for h in summary["hooks"] if h["name"] == "stage")["stdout_tail"] == ["moved-to-v2"]


def test_rehearsal_is_named_as_one_and_claims_nothing_it_did_not_do(key, runner, report_tables):
    stored = key.store_bytes()
    result = runner.run(["--check", "--diff"], env={"ALFRED_ROTATION_STAGE_CMD": "echo staged"})
    assert result.rc == 0, result.output
    assert key.store_bytes() == stored
    bundle = newest_bundle(runner)
    assert re.fullmatch(r"staging-all-check-\d{8}T\d{6}Z", bundle.name), bundle.name
    summary = json.loads((bundle / "summary.json").read_text())

    # Probes that did not run are skipped with the reason, in the console, summary.json and the report.
    for task in ("Prove the new version through the attested path before promoting it",
                 "Enforcement probes - allowed enclave decrypts under the new and the previous version",
                 "Enforcement probe - a disallowed measurement is denied", "Enforcement probe - an unattested caller is denied"):
        assert result.ran(task, "skipping") and not result.ran(task, "ok|changed"), task
    names = ["canary", "allowed_decrypt", "allowed_decrypt", "disallowed_denied", "unattested_denied"]
    assert [p["name"] for p in summary["probes"]] == names
    assert all(p["skipped"] is True and p["passed"] is None and p["detail"].startswith("not run in check mode: ")
               for p in summary["probes"]), summary["probes"]
    block = summary_block(result.stdout)
    assert block[0].startswith("ALFRED TEE KMS REHEARSAL SUMMARY") and "mode: REHEARSAL" in block[1]
    assert any(line.startswith("  canary: skipped - not run in check mode: ") for line in block), block
    assert "primary version: 1 -> 1 (rehearsal: would become 2)" in block
    assert f"  + {M_NEW[:12]}  would_add" in block
    assert f"evidence: {bundle}" in block
    assert all(row[1] == "skipped" for row in report_tables((bundle / "report.html").read_text()).rows("probes"))

    # Lock and snapshot tasks show, as a diff, what the live run would do.
    lock = diff_after(result, "Take the rotation lock for the whole change")
    assert '-    "lock": null' in lock and '+    "lock": {' in lock and '"ttl_seconds": 3600' in lock, lock
    snapshot = diff_after(result, "Record the pre-rotation snapshot with the key")
    assert '+    "snapshot": {' in snapshot and '"primary_version": 1' in snapshot and '"status": "recorded"' in snapshot, snapshot
    marked = diff_after(result, "Mark the snapshot as a rotation in progress")
    assert '+    "snapshot_status": "in_progress"' in marked, marked
    assert result.ran("Take the rotation lock for the whole change", "changed")


def test_measurement_labels_name_images_in_diff_summary_report_and_errors(key, runner, tmp_path, report_tables, chromium_dom):
    """Labels come inline (name=hex in KMS_ALLOWED_MEASUREMENTS) and from kms_measurement_labels; a
    hostile label is text everywhere, never markup."""
    hostile = "<script>alert('label')</script>"
    labels = json.dumps({"kms_measurement_labels": {hostile: M_PROBE}})
    env = {"KMS_ALLOWED_MEASUREMENTS": f"api-v42={M_CURRENT},api-v43={M_NEW}"}
    result = runner.run(["--diff", "-e", labels], env=env)
    assert result.rc == 0, result.output
    bundle = newest_bundle(runner)
    summary = json.loads((bundle / "summary.json").read_text())
    assert summary["measurement_labels"] == {M_CURRENT: "api-v42", M_NEW: "api-v43", M_PROBE: hostile}
    assert key.state()["allowed"] == sorted([M_CURRENT, M_NEW])  # the labels never reach the key
    # The allow-list diff names the images.
    assert f'+        "{M_NEW}  # api-v43"' in result.stdout, result.output
    block = summary_block(result.stdout)
    assert f"  + {M_NEW[:12]} (api-v43)  added" in block and f"  = {M_CURRENT[:12]} (api-v42)  kept" in block
    assert f"  validate   enclave-3  {M_NEW[:12]} (api-v43)  verified" in block

    text = (bundle / "report.html").read_text()
    assert hostile not in text and "&lt;script&gt;" in text
    for report in (report_tables(text), report_tables(chromium_dom(bundle / "report.html", tmp_path))):
        assert report.active == [], report.active
        assert report.rows("allowlist") == [["added", f"{M_NEW} api-v43"], ["kept", f"{M_CURRENT} api-v42"]]
        rows = {row[0]: row for row in report.rows("attestation")}
        assert rows["enclave-3"][2:] == [f"{M_NEW} api-v43", "verified", f"{M_NEW} api-v43", "verified"]
        assert dict(report.rows("labels")) == {M_CURRENT: "api-v42", M_NEW: "api-v43", M_PROBE: hostile}
    assert verify_bundle(str(bundle))["verified"]

    # An error message names the image by its label: an allow-list that would lock out enclave-3.
    refused = runner.run(env={"KMS_ALLOWED_MEASUREMENTS": f"api-v42={M_CURRENT}", "KMS_KEY_VERSION": "2",
                              "NEXT_KMS_KEY_VERSION": "3"}, args=["-e", json.dumps({"kms_measurement_labels": {"api-v43": M_NEW}})])
    assert refused.rc == 2, refused.output
    assert refused.messages()[0].endswith(f"running measurement(s) {M_NEW} (api-v43). Add them to KMS_ALLOWED_MEASUREMENTS "
                                          "or retire those enclaves first."), refused.messages()


def test_bad_measurement_labels_are_refused_naming_the_label(key, runner):
    stored = key.store_bytes()
    cases = {
        # A typo in a labelled entry: the message names the label.
        f"api-v42={M_CURRENT[:-2]},api-v43={M_NEW}": "Could not validate input kms_allowed_measurements with measurement "
                                                     "labelled 'api-v42': has 94 hex characters, sha384 needs 96",
        # One image, two names.
        f"api-v42={M_CURRENT},api-v43={M_CURRENT.upper()},{M_NEW}": "Could not validate input kms_allowed_measurements with "
                                                                    f"measurement {M_CURRENT[:12]}...{M_CURRENT[-8:]}: it is "
                                                                    "labelled both 'api-v42' and 'api-v43'",
    }
    for value, message in cases.items():
        result = runner.run(env={"KMS_ALLOWED_MEASUREMENTS": value})
        assert result.rc == 2, result.output
        assert result.failed_tasks() == ["alfred.tee_kms.rotation : Validate the rotation inputs and refuse a run that must not start"], result.output
        assert result.messages()[0] == message, result.messages()
    assert key.store_bytes() == stored


def diff_after(result, task_fragment: str) -> str:
    """The --diff text printed for a task (between its header and its status line)."""
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("TASK [") and task_fragment in line)
    end = next(i for i in range(start + 1, len(lines)) if re.match(r"^(ok|changed|skipping|fatal): ", lines[i]))
    text = "\n".join(lines[start + 1:end])
    assert text.strip(), f"no diff shown for {task_fragment!r}:\n" + "\n".join(lines[start:end + 1])
    return text


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run with pytest")
