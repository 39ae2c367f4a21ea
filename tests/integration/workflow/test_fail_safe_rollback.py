# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An emergency rollback that cannot lock out the fleet, and rotation locks that are right in both
directions: a dead run's lock can be broken by name for a rollback, a live run's lock in another
PID namespace (a container on the host network, same hostname) is never taken over."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workflow_support import KEY_ID, M_CURRENT, M_NEW, ROTATED, TARGET, kill_group, wait_for

M_OTHER = "d4" * 48  # a third image: enclave-2 moves to it in the test below
# A run in an AWX container that was killed: another hostname, boot and PID namespace.
DEAD_OWNER = "awx@automation-job-41-x7k2p/pid:9/start:5531/boot:0f0e4b1c-2d6a-4e3f-9a7b-1c2d3e4f5a6b/pidns:4026532801"


def _summary(runner, before: set) -> dict:
    new = [p for p in runner.evidence_dir.glob("*/summary.json") if p not in before]
    assert len(new) == 1, new
    return json.loads(new[0].read_text())


def _bundles(runner) -> set:
    return set(runner.evidence_dir.glob("*/summary.json"))


def test_rollback_keeps_live_enclave_measurement(key, runner, fleet):
    """Rotate A -> [A, B]; later every enclave moves to B and A is retired (allow-list [B]). An
    incident rollback must not restore [A] while the enclaves run B: the completed rotation's
    snapshot is refused for a key changed since; forced (with a reason, recorded), B is kept."""
    first = runner.run()
    assert first.rc == 0, first.output
    assert key.state() == ROTATED
    for name in ("enclave-1", "enclave-2"):
        fleet.configure(name, mode="ok", measurement=M_NEW)
    key.provider.set_allowed_measurements(KEY_ID, [M_NEW])  # A retired, protecting B
    key.encrypt_canary(label="after retiring A")
    retired = key.state()

    refused = runner.run(["-e", "rotation_action=rollback"], versions=False)
    assert refused.rc == 2, refused.output
    assert refused.failed_tasks()[0] == "alfred.tee_kms.rotation : Restore the snapshot's primary version and allow-list"
    assert (f"Could not roll back key '{KEY_ID}': its snapshot belongs to the rotation to version 2, which is completed, "
            "and the key has changed since (primary 2, allow-list b2b2b2b2b2b2b2b2...)") in refused.messages()[0]
    assert "force_rollback=true with force_rollback_reason" in refused.messages()[0]
    assert key.state() == retired

    stored = key.store_bytes()
    no_reason = runner.run(["-e", "rotation_action=rollback", "-e", "force_rollback=true"], versions=False)
    assert no_reason.rc == 2, no_reason.output
    assert no_reason.failed_tasks() == ["alfred.tee_kms.rotation : Validate the rotation inputs and refuse a run that must not start"]
    assert "force_rollback_reason" in no_reason.messages()[0]
    assert key.store_bytes() == stored

    before = _bundles(runner)
    forced = runner.run(["-e", "rotation_action=rollback", "-e", "force_rollback=true",
                         "-e", json.dumps({"force_rollback_reason": "INC-4711 version 2 suspected"})], versions=False)
    assert forced.rc == 0, forced.output
    state = key.state()
    assert state["primary"] == 1
    assert state["allowed"] == sorted([M_CURRENT, M_NEW])  # the snapshot's A, and B kept: every enclave runs B
    rollback = _summary(runner, before)["rollback"]
    assert rollback["forced"] is True and rollback["force_reason"] == "INC-4711 version 2 suspected"
    assert rollback["kept_live_measurements"] == [M_NEW]
    assert set(key.decrypt_all_canaries("enclave-1")) == {1, 2}  # enclave-1 now runs B


def test_rollback_does_not_protect_a_measurement_only_refused_evidence_claims(key, runner, fleet):
    """Issue 22 item 4. Rotate A -> [A, B, D]; enclave-2 moves to D (verified evidence), enclave-3 runs B
    but signs with an untrusted key. The emergency rollback keeps D (a live enclave proves it runs
    it) and does not keep B: an answer whose evidence is refused proves nothing, it is reported
    (attestation row, warning, rollback record), never protected."""
    fleet.configure("enclave-2", measurement=M_OTHER)
    first = runner.run(env={"KMS_ALLOWED_MEASUREMENTS": f"{M_CURRENT},{M_NEW},{M_OTHER}"})
    assert first.rc == 0, first.output
    assert key.state()["allowed"] == sorted([M_CURRENT, M_NEW, M_OTHER]) and key.state()["primary"] == 2
    key.encrypt_canary(label="after rotation")
    fleet.configure("enclave-3", mode="bad-signature")  # still claims B

    before = _bundles(runner)
    rollback = runner.run(["-e", "rotation_action=rollback"], versions=False)
    assert rollback.rc == 0, rollback.output
    state = key.state()
    assert state["primary"] == 1 and state["snapshot_status"] == "rolled_back"
    assert state["allowed"] == sorted([M_CURRENT, M_OTHER])  # B, claimed only by refused evidence, is gone
    summary = _summary(runner, before)
    rows = {row["source"]: row for entry in summary["attestation"] for row in entry["results"]}
    refused = rows[fleet.urls["enclave-3"]]
    assert refused["verified"] is False and refused["measurement"] == M_NEW and "signature" in refused["reason"]
    assert summary["rollback"]["kept_live_measurements"] == [M_OTHER]
    assert summary["rollback"]["refused_live_claims"] == [
        {"source": fleet.urls["enclave-3"], "measurement": M_NEW, "reason": refused["reason"]}]
    warning = (f"Not kept measurement {M_NEW[:16]}... that enclave {fleet.urls['enclave-3']} claims: its evidence was refused "
               f"({refused['reason']})")
    assert warning in rollback.flat
    assert any(warning in w["message"] for w in summary["warnings"]), summary["warnings"]
    run_log = next(p for p in runner.evidence_dir.glob("*/run.log") if p.parent / "summary.json" not in before).read_text()
    assert re.search(r"\] WARNING \[localhost\] alfred\.tee_kms\.rotation : Restore the snapshot's primary version and "
                     r"allow-list: " + re.escape(warning), run_log), run_log[-3000:]
    assert set(key.decrypt_all_canaries("enclave-2")) == {1, 2}  # enclave-2 (D, verified) still decrypts


def test_rollback_of_an_interrupted_rotation_keeps_every_live_enclave(key, runner):
    """The ordinary case stays automatic: a failed stage rolls back without force, and the
    measurement the rotation allowed for a live enclave (enclave-3 runs B) stays allowed."""
    result = runner.run(env={"ALFRED_ROTATION_VALIDATE_CMD": "exit 3"})
    assert result.rc == 2, result.output
    state = key.state()
    assert state["primary"] == 1 and state["allowed"] == TARGET and state["snapshot_status"] == "rolled_back"
    assert "Kept measurement(s) b2b2b2b2b2b2b2b2... allowed beside the snapshot's allow-list" in result.flat


def test_emergency_rollback_breaks_dead_runs_lock(key, runner):
    """A killed AWX container left a live (unexpired) lock: another hostname, so it is never taken
    over on its own. The operator names it (break_lock_owner) for the rollback; the evidence records
    the previous owner. A wrong name breaks nothing, and no other action may break a lock."""
    first = runner.run()
    assert first.rc == 0, first.output
    key.provider.acquire_lock(KEY_ID, DEAD_OWNER, 3600)

    held = runner.run(["-e", "rotation_action=rollback"], versions=False)
    assert held.rc == 2, held.output
    assert f"another rotation holds it (owner '{DEAD_OWNER}'" in held.messages()[0]
    assert f"a rollback can break it with break_lock_owner='{DEAD_OWNER}'" in held.messages()[0]
    assert key.state()["lock"]["owner"] == DEAD_OWNER and key.state()["primary"] == 2

    wrong = runner.run(["-e", "rotation_action=rollback", "-e", "break_lock_owner=sre@ops-1/pid:1/start:1"], versions=False)
    assert wrong.rc == 2, wrong.output
    assert f"it is held by '{DEAD_OWNER}', not by 'sre@ops-1/pid:1/start:1' (break_lock_owner); nothing was broken" in wrong.output
    assert key.state()["lock"]["owner"] == DEAD_OWNER

    stored = key.store_bytes()
    not_rollback = runner.run(["-e", json.dumps({"break_lock_owner": DEAD_OWNER})])
    assert not_rollback.rc == 2, not_rollback.output
    assert not_rollback.failed_tasks() == ["alfred.tee_kms.rotation : Validate the rotation inputs and refuse a run that must not start"]
    assert "only accepted with rotation_action=rollback" in not_rollback.messages()[0]
    assert key.store_bytes() == stored

    before = _bundles(runner)
    broken = runner.run(["-e", "rotation_action=rollback", "-e", json.dumps({"break_lock_owner": DEAD_OWNER})], versions=False)
    assert broken.rc == 0, broken.output
    assert f"Broke the rotation lock of '{DEAD_OWNER}' on the operator's request (break_lock_owner)" in broken.flat
    state = key.state()
    assert state["primary"] == 1 and state["lock"] is None
    changes = _summary(runner, before)["changes"]
    assert [c["before"]["owner"] for c in changes if c["operation"] == "lock_broken"] == [DEAD_OWNER]


def test_live_lock_in_other_pid_namespace_not_taken_over(key, runner, tmp_path):
    """A rotation runs in its own PID namespace (a container on the host network: same hostname)
    and holds the lock while its stage hook runs. Its pid means nothing here, so a rotation started
    beside it must not take its lock over."""
    unshare = shutil.which("unshare")
    probe = subprocess.run([unshare or "unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, check=False) \
        if unshare else None
    if probe is None or probe.returncode != 0:
        pytest.skip("cannot create a PID namespace here (unshare --pid needs root or user namespaces)")
    marker = tmp_path / "stage-hook-started"
    contained = runner.start(env={"ALFRED_ROTATION_STAGE_CMD": f"touch {marker}; exec sleep 6301"},
                             prefix=(unshare, "--pid", "--fork", "--mount-proc"))
    try:
        wait_for(marker.exists, 240, "the contained run's stage hook to start", proc=contained)
        lock = key.state()["lock"]
        assert lock is not None

        beside = runner.run()
        assert beside.rc == 2, beside.output
        assert "Took over the rotation lock" not in beside.output
        assert f"another rotation holds it (owner '{lock['owner']}'" in beside.output
        assert key.state()["lock"] == lock
        assert contained.poll() is None
    finally:
        kill_group(contained)  # the namespace's init dies with it, and the hook with the namespace


def test_env_mismatch_refused_before_change(key, runner):
    """The key was rotated as staging (a key created before keys recorded their environment: the
    first rotation records it, and says so); a later run as production, even confirmed and with
    ALFRED_ENV agreeing, is refused before it changes anything."""
    first = runner.run()
    assert first.rc == 0, first.output
    assert "recorded no environment (created before keys recorded one); it now belongs to env 'staging'" in first.flat
    assert key.raw()["env"] == "staging"

    stored = key.store_bytes()
    for action in ("all", "rollback"):
        # allow_http_enclaves: the simulated fleet serves plain http, which production refuses without it.
        production = runner.run(["-e", "confirm_production=true", "-e", f"rotation_action={action}", "-e", "allow_http_enclaves=true"],
                                env={"ALFRED_ENV": "production"}, env_name="production", versions=action != "rollback")
        assert production.rc == 2, production.output
        assert production.failed_tasks()[0] in ("alfred.tee_kms.rotation : Read the key state and check that no other rotation holds its lock",
                                                "alfred.tee_kms.rotation : Read the key state before the rollback")
        assert (f"Could not rotate key '{KEY_ID}': it belongs to env 'staging', not to the run's env 'production'; "
                "it is only changed by a run with env=staging") in production.messages()[0]
        assert key.store_bytes() == stored


def test_production_key_rotated_as_staging_is_refused(key, runner, tmp_path):
    """A key created for production (kms_key env=production) rotated with env=staging: refused
    before any change, so confirm_production can never be skipped by naming another env."""
    store = tmp_path / "kms" / "prod.json"
    created = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-m", "alfred.tee_kms.kms_key", "-a",
         json.dumps({"key_id": KEY_ID, "store_path": str(store), "allowed_measurements": [M_CURRENT], "env": "production",
                     "confirm_production": True, "attestation_trust": runner.trust})],
        env=runner.env(), capture_output=True, text=True, check=False)
    assert created.returncode == 0, created.stdout + created.stderr
    stored = store.read_bytes()
    staging = runner.run(env={"ALFRED_TEE_KMS_STORE": str(store)})
    assert staging.rc == 2, staging.output
    assert (f"Could not rotate key '{KEY_ID}': it belongs to env 'production', not to the run's env 'staging'; "
            "it is only changed by a run with env=production with confirm_production=true") in staging.messages()[0]
    assert store.read_bytes() == stored
