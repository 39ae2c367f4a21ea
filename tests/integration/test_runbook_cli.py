# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The runbook wrapper scripts/security/tee-kms-rotation.sh keeps the seed script's CLI.

Bad input exits 1 with a message before Ansible starts; -h exits 0; hook command text is never
echoed unless --show-commands; a --dry-run against a real enclave simulator and local store
changes nothing.

Run: .venv/bin/python -m pytest tests/integration/test_runbook_cli.py
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import registry

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "security" / "tee-kms-rotation.sh"
sys.path.insert(0, str(REPO / "tools" / "enclave_sim"))

from fleet import SimulatorFleet  # noqa: E402  (helper outside the collection)

CURRENT = hashlib.sha384(b"cli-test:current").hexdigest()
NEW = hashlib.sha384(b"cli-test:new").hexdigest()
NEVER = hashlib.sha384(b"cli-test:never").hexdigest()
HOOK_MARKER = "s3cr3t-hook-marker-7f2c"


def clean_env(**extra):
    """The caller's environment without any rotation, Ansible or cloud setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "ALFRED_", "KMS_", "AWS_"))}
    env.update(extra)
    return env


def run_script(*args, env=None, timeout=600):
    return subprocess.run([str(SCRIPT), *args], env=env if env is not None else clean_env(), cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.parametrize("args, message", [
    ([], "missing action"),
    (["--env", "staging"], "missing action"),
    (["rotate", "--env", "staging"], "unknown action 'rotate'"),
    (["all", "stage", "--env", "staging"], "only one action"),
    (["all"], "missing --env"),
    (["all", "--env"], "--env needs a value"),
    (["all", "--env", "--dry-run"], "--env needs a value"),
    (["all", "--env", "qa"], "invalid --env 'qa'"),
    (["all", "--env=dev"], "invalid --env 'dev'"),
    (["all", "--env", "staging", "--evidence-dir"], "--evidence-dir needs a path"),
    (["all", "--env", "staging", "--evidence-dir", "--dry-run"], "--evidence-dir needs a path"),
    (["all", "--env", "staging", "--force"], "unknown option '--force'"),
    (["all", "--env", "staging", "-x"], "unknown option '-x'"),
    (["all", "--env", "production"], "require --confirm-production"),
    (["rollback", "--env", "production", "--dry-run"], "require --confirm-production"),
])
def test_bad_input_exits_1_with_a_message(args, message):
    result = run_script(*args)
    assert result.returncode == 1, result
    assert message in result.stderr
    assert "--help" in result.stderr
    assert "running" not in result.stdout  # Ansible was never started


def _override_args(tmp_path) -> dict:
    """Every spelling ansible-playbook accepts for an extra var, each setting a variable the wrapper sets."""
    from ansible.parsing.vault import VaultLib, VaultSecret

    (tmp_path / "vars.yml").write_text("evidence_dir: /elsewhere\n")
    (tmp_path / "vars.json").write_text(json.dumps({"kms_provider": "aws"}))
    (tmp_path / "vault-pass").write_text("correct horse\n")
    secret = VaultSecret(b"correct horse")
    (tmp_path / "vaulted.yml").write_bytes(VaultLib([("default", secret)]).encrypt("show_commands: true\n", secret))
    return {
        "-e k=v": (["-e", "env=production"], "env (--env)"),
        "-ek=v": (["-erotation_action=rollback"], "rotation_action (the action argument)"),
        "--extra-vars k=v": (["--extra-vars", "action=rollback"], "action (the action argument)"),
        "--extra-vars=": (["--extra-vars=confirm_production=true"], "confirm_production (--confirm-production)"),
        "abbreviated --extra": (["--extra", "kms_key_id=tokens/other"], "kms_key_id (KMS_KEY_ID)"),
        "JSON": (["-e", json.dumps({"env": "production", "confirm_production": True})],
                 "confirm_production (--confirm-production), env (--env)"),
        "YAML": (["-e", "{rotation_stage_cmd: 'true'}"], "rotation_stage_cmd (ALFRED_ROTATION_STAGE_CMD)"),
        "@file YAML": (["-e", f"@{tmp_path / 'vars.yml'}"], "evidence_dir (--evidence-dir)"),
        "@file JSON": (["-e", f"@{tmp_path / 'vars.json'}"], "kms_provider (ALFRED_KMS_PROVIDER)"),
        "@file vaulted": (["--vault-password-file", str(tmp_path / "vault-pass"), "-e", f"@{tmp_path / 'vaulted.yml'}"],
                          "show_commands (--show-commands)"),
    }


@pytest.mark.parametrize("spelling", ["-e k=v", "-ek=v", "--extra-vars k=v", "--extra-vars=", "abbreviated --extra", "JSON", "YAML",
                                      "@file YAML", "@file JSON", "@file vaulted"])
def test_pass_through_arguments_cannot_override_what_the_wrapper_validated(tmp_path, spelling):
    """Issue 22 item 12: `-- -e env=...` after the wrapper's validation made its banner describe another run."""
    args, named = _override_args(tmp_path)[spelling]
    result = run_script("all", "--env", "staging", "--evidence-dir", str(tmp_path / "evidence"), "--", "-i", "hosts.yml", *args,
                        env=clean_env(KMS_KEY_ID="tokens/refresh"))
    assert result.returncode == 1, result
    assert f"error: the ansible-playbook arguments after -- set {named}, which this script sets from its own options and " \
           "environment; use those instead" in result.stderr
    assert "--help" in result.stderr
    assert "running" not in result.stdout and not (tmp_path / "evidence").exists()  # Ansible was never started


@pytest.mark.parametrize("args, message", [
    (["-C"], "error: the ansible-playbook arguments after -- ask for check mode (--check); use --dry-run"),
    (["-e", "@/nonexistent/vars.yml"], "error: could not read the ansible-playbook arguments after --: "),
    (["--no-such-option"], "error: could not read the ansible-playbook arguments after --: unrecognized arguments: --no-such-option"),
])
def test_pass_through_arguments_that_cannot_be_checked_are_refused(tmp_path, args, message):
    result = run_script("all", "--env", "staging", "--", *args, env=clean_env(KMS_KEY_ID="tokens/refresh"))
    assert result.returncode == 1, result
    assert message in result.stderr and "running" not in result.stdout


def test_alfred_env_must_match_env():
    result = run_script("all", "--env", "staging", env=clean_env(ALFRED_ENV="production"))
    assert result.returncode == 1
    assert "ALFRED_ENV is 'production' but --env is 'staging'" in result.stderr


def test_unknown_provider_is_refused():
    # The script's own list (a shell script cannot read the registry) must be the registry's plus the hook provider:
    # a new provider fails here until the script accepts it. The refused name is one no provider will ever have.
    *names, last = list(registry.names()) + ["command"]
    result = run_script("all", "--env", "staging", env=clean_env(ALFRED_KMS_PROVIDER="no-such-kms"))
    assert result.returncode == 1
    assert f"invalid ALFRED_KMS_PROVIDER 'no-such-kms' (expected {', '.join(names)} or {last})" in result.stderr


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_exits_0(flag):
    for args in ([flag], ["all", "--env", "qa", flag]):
        result = run_script(*args)
        assert result.returncode == 0
        assert result.stdout.startswith("Usage: tee-kms-rotation.sh <preflight|stage|validate|rollback|all>")
        for option in ("--env", "--dry-run", "--evidence-dir", "--confirm-production", "--show-commands"):
            assert option in result.stdout
        assert result.stderr == ""


@pytest.mark.parametrize("show", [False, True])
def test_hook_text_is_echoed_only_with_show_commands(tmp_path, show):
    # KMS_KEY_ID is missing, so the playbook refuses the inputs right away: enough to see
    # what the script and Ansible print.
    env = clean_env(ALFRED_ROTATION_STAGE_CMD=f"echo {HOOK_MARKER}",
                    ALFRED_TEE_KMS_STORE=str(tmp_path / "store.json"))
    args = ["preflight", "--env", "staging", "--evidence-dir", str(tmp_path / "evidence")]
    result = run_script(*args, *(["--show-commands"] if show else []), env=env)
    assert result.returncode == 2, result
    assert "running " in result.stdout
    assert (HOOK_MARKER in result.stdout) is show
    assert "stage hook: set (command text hidden" in result.stdout or show
    if not show:
        assert HOOK_MARKER not in result.stderr
        for path in (tmp_path / "evidence").rglob("*"):
            if path.is_file():
                assert HOOK_MARKER not in path.read_text(encoding="utf-8")


def test_dry_run_against_a_real_simulator_changes_nothing(tmp_path):
    enclaves = [{"name": "enclave-1", "measurement": CURRENT}, {"name": "enclave-2", "measurement": CURRENT},
                {"name": "enclave-3", "measurement": NEW}, {"name": "probe-1", "measurement": NEVER}]
    store = tmp_path / "store" / "kms-store.json"
    evidence = tmp_path / "evidence dir"  # a space: the path must survive as one extra var
    with SimulatorFleet(tmp_path / "sim", enclaves=enclaves) as fleet:
        urls = fleet.urls
        inventory = tmp_path / "hosts.yml"
        inventory.write_text(json.dumps({"all": {"children": {
            "enclaves": {"hosts": {n: {"enclave_url": urls[n]} for n in ("enclave-1", "enclave-2", "enclave-3")}},
            "probe_enclaves": {"hosts": {"probe-1": {"enclave_url": urls["probe-1"]}}}}}}))
        trust = {"public_keys": fleet.trust["alfred_public_keys"]}
        base_env = clean_env(ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ALFRED_TEE_KMS_STORE=str(store))
        created = subprocess.run(
            [str(Path(sys.executable).parent / "ansible"), "localhost", "-m", "alfred.tee_kms.kms_key", "-a",
             json.dumps({"key_id": "tokens/cli-test", "allowed_measurements": [CURRENT], "attestation_trust": trust})],
            env=base_env, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
        assert created.returncode == 0, created.stdout + created.stderr
        before = store.read_bytes()

        env = dict(base_env, KMS_KEY_ID="tokens/cli-test", KMS_KEY_VERSION="1", NEXT_KMS_KEY_VERSION="2",
                   KMS_ALLOWED_MEASUREMENTS=f"{CURRENT},{NEW}", ALFRED_ROTATION_STAGE_CMD=f"echo {HOOK_MARKER}")
        del env["ANSIBLE_CONFIG"]  # the script must set it itself
        result = run_script("all", "--env", "staging", "--dry-run", "--evidence-dir", str(evidence),
                            "--", "-i", str(inventory), "-e", json.dumps({"attestation_trust": trust}), env=env)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    assert store.read_bytes() == before
    assert "dry run (check mode" in result.stdout
    assert "-e rotation_action=all" in result.stdout  # the variable that is not an Ansible keyword
    assert "reserved name" not in result.stdout + result.stderr
    assert HOOK_MARKER not in result.stdout + result.stderr
    bundles = [p for p in evidence.iterdir() if p.is_dir()]
    assert len(bundles) == 1 and bundles[0].name.startswith("staging-all-check-")
    # The wrapper's run ends with the collection's summary, saying it was a rehearsal and where the bundle is.
    assert "\nALFRED TEE KMS REHEARSAL SUMMARY " in result.stdout and f"\nevidence: {bundles[0]}\n" in result.stdout
    summary = json.loads((bundles[0] / "summary.json").read_text(encoding="utf-8"))
    assert summary["check_mode"] is True
    assert summary["outcome"] == "success"
    assert summary["env"] == "staging" and summary["action"] == "all"
    assert summary["versions"]["primary_before"] == 1 and summary["versions"]["primary_after"] == 1
    for path in bundles[0].iterdir():
        assert HOOK_MARKER not in path.read_text(encoding="utf-8")
