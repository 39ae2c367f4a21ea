# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/rotate.yml with kms_provider=aws through the strict KMS (strict_kms.py: Nitro
Recipient documents verified and policy-evaluated as AWS does, moto underneath) and a
simulated fleet of Nitro-format enclaves: the full rotation, a check-mode rehearsal, a
forced-failure rollback and an emergency rollback in a later, separate run that only knows
the key's alias; and a rotation whose probed enclave has no canary endpoint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aws_support import REPO, aws_env, new_alias

sys.path.insert(0, str(REPO / "tools" / "enclave_sim"))
from fleet import SimulatorFleet  # noqa: E402

M_CURRENT, M_NEW, M_PROBE = "a1" * 48, "b2" * 48, "c3" * 48
TARGET = sorted([M_CURRENT, M_NEW])


@pytest.fixture(scope="module")
def fleet(strict_kms, tmp_path_factory):
    enclaves = [{"name": "enclave-1", "measurement": M_CURRENT}, {"name": "enclave-2", "measurement": M_NEW},
                {"name": "probe-1", "measurement": M_PROBE}]
    with SimulatorFleet(tmp_path_factory.mktemp("sim"), enclaves=enclaves, kms_endpoint=strict_kms.url, env=aws_env()) as running:
        strict_kms.set_root(running.trust["nitro_root_certificate"])
        yield running


@pytest.fixture(scope="module")
def inventory(fleet, tmp_path_factory):
    path = tmp_path_factory.mktemp("inv") / "hosts.json"
    path.write_text(json.dumps({"all": {
        "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
        "children": {"enclaves": {"hosts": {"enclave-1": {"enclave_url": fleet.urls["enclave-1"]},
                                            "enclave-2": {"enclave_url": fleet.urls["enclave-2"]}}},
                     "probe_enclaves": {"hosts": {"probe-1": {"enclave_url": fleet.urls["probe-1"]}}}}}}))
    return str(path)


@pytest.fixture
def aws_key(provider, fleet):
    alias = new_alias()
    provider.create_key(alias, [M_CURRENT], "sha384", nitro_trust(fleet))
    return alias


def nitro_trust(fleet) -> dict:
    return {"root_certificate": fleet.trust["nitro_root_certificate"], "nitro_pcrs": [0]}


def rotate(strict_kms, inventory, fleet, tmp_path, alias, *extra, env=None, current=1, nxt=2, run_env="staging"):
    runbook = {"KMS_KEY_ID": alias, "KMS_KEY_VERSION": str(current), "NEXT_KMS_KEY_VERSION": str(nxt),
               "KMS_ALLOWED_MEASUREMENTS": ",".join(TARGET), "AWS_ENDPOINT_URL": strict_kms.url,
               "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    runbook.update(env or {})
    trust = json.dumps({"attestation_trust": nitro_trust(fleet)})
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", inventory, str(REPO / "playbooks" / "rotate.yml"),
           "-e", f"env={run_env}", "-e", "kms_provider=aws", "-e", trust, "-e", f"evidence_dir={tmp_path / 'evidence'}",
           "-e", "health_delay=0", "-e", "rotation_attestation_format=nitro", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=aws_env(runbook), timeout=600, cwd=str(REPO), check=False)


def state(provider, alias):
    key = provider.describe_key(alias)
    return {"primary": key["primary_version"], "versions": {v["version"]: v["state"] for v in key["versions"]},
            "allowed": sorted(key["allowed_measurements"]), "snapshot": (key.get("snapshot") or {}).get("status"),
            "lock": key.get("lock")}


def summary(tmp_path):
    [bundle] = sorted((tmp_path / "evidence").iterdir(), key=lambda p: p.stat().st_mtime)[-1:]
    return json.loads((bundle / "summary.json").read_text())


def canary_results(tmp_path) -> list:
    return [(p["name"], p.get("result"), p["passed"]) for p in summary(tmp_path)["probes"] if p["name"] in ("canary", "allowed_decrypt")]


def test_rehearsal_rotation_emergency_rollback_and_automatic_rollback(strict_kms, inventory, fleet, tmp_path, provider, aws_key):
    """One key through the runbook's whole life on AWS, four runs (each run costs ~40 s here)."""
    rehearsal = rotate(strict_kms, inventory, fleet, tmp_path, aws_key, "--check", "--diff")
    assert rehearsal.returncode == 0, rehearsal.stdout[-3000:]
    assert state(provider, aws_key) == {"primary": 1, "versions": {1: "enabled"}, "allowed": [M_CURRENT],
                                        "snapshot": None, "lock": None}
    assert '"primary_version": 2' in rehearsal.stdout  # --diff shows the promotion
    assert summary(tmp_path)["check_mode"] is True

    run = rotate(strict_kms, inventory, fleet, tmp_path, aws_key)
    assert run.returncode == 0, run.stdout[-3000:]
    assert state(provider, aws_key) == {"primary": 2, "versions": {1: "enabled", 2: "enabled"}, "allowed": TARGET,
                                        "snapshot": "completed", "lock": None}
    assert summary(tmp_path)["outcome"] == "success"
    # KMS itself decided (Recipient verified, CiphertextForRecipient), and the enclave proved the decrypt.
    assert canary_results(tmp_path) == [("canary", "decrypt_proven", True), ("allowed_decrypt", "decrypt_proven", True),
                                        ("allowed_decrypt", "decrypt_proven", True)]
    assert ("Decrypt", "recipient") in strict_kms.decisions and ("Decrypt", "AccessDeniedException") in strict_kms.decisions
    # The collection's own statements gate Decrypt on PCR0 on every enabled version.
    assert provider.evaluate_policy(aws_key, M_NEW) and not provider.evaluate_policy(aws_key, M_PROBE)

    # A later, separate run knows only the alias: the snapshot kept with the keys restores version 1.
    rollback = rotate(strict_kms, inventory, fleet, tmp_path, aws_key, "-e", "rotation_action=rollback",
                      env={"KMS_KEY_VERSION": "", "NEXT_KMS_KEY_VERSION": "", "KMS_ALLOWED_MEASUREMENTS": ""})
    assert rollback.returncode == 0, rollback.stdout[-3000:]
    # enclave-2 runs M_NEW, which the rotation allowed: the rollback keeps it (never locks out a live enclave).
    at_snapshot = {"primary": 1, "versions": {1: "enabled", 2: "enabled"}, "allowed": TARGET,
                   "snapshot": "rolled_back", "lock": None}
    assert state(provider, aws_key) == at_snapshot

    # Rotating again, a failing validate hook rolls back automatically and fails the run.
    failed = rotate(strict_kms, inventory, fleet, tmp_path, aws_key, env={"ALFRED_ROTATION_VALIDATE_CMD": "exit 4"})
    assert failed.returncode != 0
    assert "Could not run the validate hook: it exited with code 4" in failed.stdout
    assert state(provider, aws_key) == at_snapshot
    assert summary(tmp_path)["outcome"] == "rolled_back"


def run_log(tmp_path) -> str:
    [bundle] = sorted((tmp_path / "evidence").iterdir(), key=lambda p: p.stat().st_mtime)[-1:]
    return (bundle / "run.log").read_text()


NO_PROOF = ("probe passed on KMS's answer alone (kms_accepted_only): the enclave has no canary endpoint, so no decrypt by the "
            "enclave is proven")


def test_an_enclave_without_the_canary_endpoint_gives_kms_accepted_only(strict_kms, inventory, fleet, tmp_path, provider, aws_key):
    """Staging lets kms_accepted_only pass, and warns on stdout and in run.log (issue 22 item 7a)."""
    fleet.configure("enclave-1", canary=False)
    try:
        run = rotate(strict_kms, inventory, fleet, tmp_path, aws_key)
    finally:
        fleet.configure("enclave-1", canary=True)
    assert run.returncode == 0, run.stdout[-3000:]
    assert canary_results(tmp_path) == [("canary", "kms_accepted_only", True), ("allowed_decrypt", "kms_accepted_only", True),
                                        ("allowed_decrypt", "kms_accepted_only", True)]
    assert state(provider, aws_key)["primary"] == 2
    staging = ("(accepted by env staging; a production run refuses it unless allow_kms_accepted_only=true)")
    output = " ".join((run.stdout + run.stderr).split())
    assert f"[WARNING]: The canary {NO_PROOF} {staging}" in output
    assert f"[WARNING]: The allowed_decrypt {NO_PROOF} {staging}" in output
    assert len(re.findall(r"\] WARNING \[localhost\] .*" + re.escape(f"{NO_PROOF} {staging}"), run_log(tmp_path))) == 3
    assert {p.get("accepted_by") for p in summary(tmp_path)["probes"] if p.get("result") == "kms_accepted_only"} == {"env staging"}


def test_production_refuses_kms_accepted_only_unless_allowed_by_name(strict_kms, inventory, fleet, tmp_path, provider, aws_key):
    """Issue 22 item 7a. In production, KMS's answer alone (no canary endpoint: no decrypt by the enclave
    proven) fails the canary before promotion (rolled back) and validate's allowed-decrypt probe; with
    allow_kms_accepted_only=true it passes, and the evidence records the allowance and each probe it accepted."""
    production = ("-e", "confirm_production=true", "-e", "allow_http_enclaves=true")  # the simulated fleet serves plain http
    fleet.configure("enclave-1", canary=False)
    try:
        refused = rotate(strict_kms, inventory, fleet, tmp_path, aws_key, *production, run_env="production")
        assert refused.returncode != 0, refused.stdout[-3000:]
        flat = " ".join(refused.stdout.split())
        assert (f"Could not pass the canary probe on key '{aws_key}': KMS answered CiphertextForRecipient for the enclave's "
                "attestation document; the enclave has no canary endpoint, so no decrypt by the enclave is proven; a production "
                "run needs that proof (set allow_kms_accepted_only=true to accept KMS's answer alone; the run records it)") in flat
        assert "- rolled back to the pre-rotation snapshot." in flat
        assert state(provider, aws_key)["primary"] == 1 and state(provider, aws_key)["snapshot"] == "rolled_back"
        assert canary_results(tmp_path) == [("canary", "kms_accepted_only", False)]
        assert summary(tmp_path)["outcome"] == "rolled_back"

        allowed = rotate(strict_kms, inventory, fleet, tmp_path, aws_key, *production, "-e", "allow_kms_accepted_only=true",
                         run_env="production")
        assert allowed.returncode == 0, allowed.stdout[-3000:]
        assert state(provider, aws_key)["primary"] == 2
        record = summary(tmp_path)
        assert record["env"] == "production" and record["run_context"]["allow_kms_accepted_only"] is True
        assert [(p["name"], p["result"], p["passed"], p["accepted_by"]) for p in record["probes"] if p.get("result") == "kms_accepted_only"] \
            == [(name, "kms_accepted_only", True, "allow_kms_accepted_only") for name in ("canary", "allowed_decrypt", "allowed_decrypt")]
        accepted = f"{NO_PROOF} (accepted by allow_kms_accepted_only, recorded)"
        assert len(re.findall(r"\] WARNING \[localhost\] .*" + re.escape(accepted), run_log(tmp_path))) == 3

        # validate alone, without the allowance, on the rotated key: its allowed-decrypt probe refuses; nothing changes.
        validate = rotate(strict_kms, inventory, fleet, tmp_path, aws_key, *production, "-e", "rotation_action=validate",
                          run_env="production")
        assert validate.returncode != 0, validate.stdout[-3000:]
        flat = " ".join(validate.stdout.split())
        assert f"Could not pass the allowed_decrypt probe on key '{aws_key}'" in flat and "a production run needs that proof" in flat
        assert "- nothing was rolled back (validate changes nothing)." in flat
        assert state(provider, aws_key)["primary"] == 2 and state(provider, aws_key)["allowed"] == TARGET
    finally:
        fleet.configure("enclave-1", canary=True)
