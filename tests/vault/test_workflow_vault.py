# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/rotate.yml with kms_provider=vault against a real OpenBao server and simulated
enclaves serving jwt attestation tokens: the check-mode rehearsal, the rotation, an emergency
rollback in a later run that knows only the key name, and the automatic rollback of a failing
validate. After each run every canary written so far still decrypts through the enclave's own login.
The rotation itself also runs as the least-privilege identity an administrator sets up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from vault_support import (
    M_CURRENT, M_NEW, M_PROBE, REPO, TARGET, enclave_decrypts, new_key, new_key_id, rotation_approle, server_state, trust_of, vault_env,
)


def rotate(bao, inventory, fleet, tmp_path, key_id, *extra, env=None):
    runbook = {"KMS_KEY_ID": key_id, "KMS_KEY_VERSION": "1", "NEXT_KMS_KEY_VERSION": "2",
               "KMS_ALLOWED_MEASUREMENTS": ",".join(TARGET)}
    runbook.update(env or {})
    trust = json.dumps({"attestation_format": "jwt", "attestation_trust": trust_of(fleet)})
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", inventory, str(REPO / "playbooks" / "rotate.yml"),
           "-e", "env=staging", "-e", "kms_provider=vault", "-e", trust, "-e", f"evidence_dir={tmp_path / 'evidence'}",
           "-e", "health_delay=0", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=vault_env(bao, runbook), timeout=600, cwd=str(REPO), check=False)


def summary(tmp_path):
    [bundle] = sorted((tmp_path / "evidence").iterdir(), key=lambda p: p.stat().st_mtime)[-1:]
    return json.loads((bundle / "summary.json").read_text())


class Canaries:
    """Ciphertexts written under each version as the rotation goes; all must keep decrypting."""

    def __init__(self, provider, key_id, fleet):
        self.provider, self.key_id, self.fleet, self.sealed = provider, key_id, fleet, []

    def add(self, version):
        # Marked as a canary: an enclave's canary endpoint decrypts nothing else.
        context = {"canary": str(len(self.sealed)), "tee_kms_purpose": "canary"}
        plaintext = f"canary {len(self.sealed)} v{version}".encode()
        self.sealed.append((self.provider.encrypt(self.key_id, plaintext, context, version=version), context, plaintext))

    def all_decrypt(self):
        for ciphertext, context, plaintext in self.sealed:
            assert enclave_decrypts(self.fleet, "enclave-1", self.key_id, ciphertext, context, plaintext), ciphertext
        return True


def test_rehearsal_rotation_emergency_rollback_and_automatic_rollback(bao, inventory, fleet, tmp_path, provider):
    key_id = new_key(bao, fleet, provider)
    canaries = Canaries(provider, key_id, fleet)
    canaries.add(1)
    initial = server_state(bao, key_id)

    rehearsal = rotate(bao, inventory, fleet, tmp_path, key_id, "--check", "--diff")
    assert rehearsal.returncode == 0, rehearsal.stdout[-3000:]
    assert server_state(bao, key_id) == initial
    assert '"primary_version": 2' in rehearsal.stdout  # --diff shows the promotion
    assert summary(tmp_path)["check_mode"] is True

    run = rotate(bao, inventory, fleet, tmp_path, key_id)
    assert run.returncode == 0, run.stdout[-3000:]
    rotated = server_state(bao, key_id)
    assert {k: rotated[k] for k in ("versions", "primary", "allowed", "lock", "min_decryption_version")} == {
        "versions": [1, 2], "primary": 2, "allowed": TARGET, "lock": None, "min_decryption_version": 1}
    assert rotated["snapshot"]["status"] == "completed"
    assert summary(tmp_path)["outcome"] == "success"
    assert provider.evaluate_policy(key_id, M_NEW) and not provider.evaluate_policy(key_id, M_PROBE)
    canaries.add(2)
    assert canaries.all_decrypt()

    # A later, separate run knows only the key: the snapshot kept in KV restores version 1.
    rollback = rotate(bao, inventory, fleet, tmp_path, key_id, "-e", "rotation_action=rollback",
                      env={"KMS_KEY_VERSION": "", "NEXT_KMS_KEY_VERSION": "", "KMS_ALLOWED_MEASUREMENTS": ""})
    assert rollback.returncode == 0, rollback.stdout[-3000:]
    at_snapshot = server_state(bao, key_id)
    assert {k: at_snapshot[k] for k in ("versions", "primary", "allowed", "lock", "min_decryption_version")} == {
        "versions": [1, 2], "primary": 1, "allowed": [M_CURRENT], "lock": None, "min_decryption_version": 1}
    assert at_snapshot["snapshot"]["status"] == "rolled_back"
    assert canaries.all_decrypt()

    # Rotating again, a failing validate hook rolls back automatically and fails the run.
    failed = rotate(bao, inventory, fleet, tmp_path, key_id, env={"ALFRED_ROTATION_VALIDATE_CMD": "exit 4"})
    assert failed.returncode != 0
    assert "Could not run the validate hook: it exited with code 4" in failed.stdout
    after = server_state(bao, key_id)
    assert {k: after[k] for k in ("versions", "primary", "allowed", "lock")} == {
        "versions": [1, 2], "primary": 1, "allowed": [M_CURRENT], "lock": None}
    assert summary(tmp_path)["outcome"] == "rolled_back"
    assert canaries.all_decrypt()
    assert bao.root_token not in run.stdout + failed.stdout + rollback.stdout


def test_rotation_and_rollback_as_the_least_privilege_identity(bao, inventory, fleet, tmp_path, provider):
    """A whole rotate.yml (its probes included: the public-token login refused) and a rollback as the
    AppRole vault_key_access sets up, which can change nothing but its key's allow-list (finding 2)."""
    key_id = new_key_id()
    role_id, secret_id = rotation_approle(bao, fleet, "rotation-workflow", [key_id])
    new_key(bao, fleet, provider, key_id)
    identity = {"VAULT_TOKEN": None, "ANSIBLE_HASHI_VAULT_AUTH_METHOD": "approle", "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}
    run = rotate(bao, inventory, fleet, tmp_path, key_id, env=identity)
    assert run.returncode == 0, run.stdout[-3000:]
    assert {k: server_state(bao, key_id)[k] for k in ("primary", "allowed", "lock")} == {"primary": 2, "allowed": TARGET, "lock": None}
    probes = {p["name"]: p for p in summary(tmp_path)["probes"]}
    assert probes["unattested_denied"]["passed"] and probes["unattested_denied"]["public_token_refused"] is True, probes
    assert probes["allowed_decrypt"]["result"] == "decrypt_proven", probes
    rollback = rotate(bao, inventory, fleet, tmp_path, key_id, "-e", "rotation_action=rollback",
                      env=dict(identity, KMS_KEY_VERSION="", NEXT_KMS_KEY_VERSION="", KMS_ALLOWED_MEASUREMENTS=""))
    assert rollback.returncode == 0, rollback.stdout[-3000:]
    assert {k: server_state(bao, key_id)[k] for k in ("primary", "allowed", "lock")} == {"primary": 1, "allowed": [M_CURRENT], "lock": None}
    assert secret_id not in run.stdout + rollback.stdout


def playbook(bao, name, *extra, env=None):
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), str(REPO / "playbooks" / name), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=vault_env(bao, env), timeout=600, cwd=str(REPO), check=False)


def test_administrator_setup_then_create_key_as_the_rotation_identity(bao, fleet, tmp_path):
    """The documented order: vault_setup.yml (administrator; rehearsal, run, re-run), then create_key.yml as the
    rotation identity, which could not have written the role or the policies itself."""
    key_id = new_key_id()
    trust = json.dumps({"attestation_format": "jwt", "attestation_trust": trust_of(fleet)})
    if "approle/" not in bao.api("GET", "sys/auth")["data"]:
        bao.api("POST", "sys/auth/approle", {"type": "approle"})
    bao.api("POST", "auth/approle/role/setup-playbook", {"token_policies": []})
    setup = ("-e", trust, "-e", "vault_rotation_approle=setup-playbook")
    rehearsal = playbook(bao, "vault_setup.yml", *setup, "--check", "--diff", env={"KMS_KEY_ID": key_id})
    assert rehearsal.returncode == 0 and "changed=1" in rehearsal.stdout, rehearsal.stdout[-3000:]
    assert bao.api("GET", "auth/approle/role/setup-playbook")["data"]["token_policies"] == []
    applied = playbook(bao, "vault_setup.yml", *setup, env={"KMS_KEY_ID": key_id})
    assert applied.returncode == 0 and "changed=1" in applied.stdout, applied.stdout[-3000:]
    again = playbook(bao, "vault_setup.yml", *setup, env={"KMS_KEY_ID": key_id})
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-3000:]
    assert bao.api("GET", "auth/approle/role/setup-playbook")["data"]["token_policies"] == [f"tee-kms-{key_id}-rotation"]
    role_id = bao.api("GET", "auth/approle/role/setup-playbook/role-id")["data"]["role_id"]
    secret_id = bao.api("POST", "auth/approle/role/setup-playbook/secret-id")["data"]["secret_id"]
    identity = {"VAULT_TOKEN": None, "ANSIBLE_HASHI_VAULT_AUTH_METHOD": "approle", "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id,
                "KMS_KEY_ID": key_id, "KMS_ALLOWED_MEASUREMENTS": M_CURRENT}
    created = playbook(bao, "create_key.yml", "-e", "env=staging", "-e", "kms_provider=vault", "-e", trust, env=identity)
    assert created.returncode == 0, created.stdout[-3000:]
    assert server_state(bao, key_id)["allowed"] == [M_CURRENT]
    no_audience = playbook(bao, "vault_setup.yml", env={"KMS_KEY_ID": new_key_id()})
    assert no_audience.returncode != 0 and "login_audience is required" in no_audience.stdout, no_audience.stdout[-3000:]
    assert bao.root_token not in rehearsal.stdout + applied.stdout and secret_id not in created.stdout
