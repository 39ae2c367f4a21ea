# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Every invalid input of the runbook fails before anything changes: the exact message, the task
that refused it, and not one byte of the key store changed.

The cases only read the store, so they run as concurrent ansible-playbook processes against one
key (a few at a time, to keep the suite's wall time down); each case is still reported as its own test.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow import inputs
from workflow_support import KEY_ID, M_CURRENT, M_NEW, Key, Runner

INPUTS = "alfred.tee_kms.rotation : Validate the rotation inputs and refuse a run that must not start"
KEY_ID_RULE = "key_id must be 1-256 characters of letters, digits and /_+=.@:- starting with a letter or digit"
MEAS = "Could not validate input kms_allowed_measurements with measurement"
VERSION_REQUIRED = "it is required (set it with -e or the runbook environment variable)"
NEEDS = "Could not validate hook commands: kms_provider=command needs"

# name: (env overrides, extra args, env=..., failing task, exact message)
CASES = {
    "missing_env": ({}, [], None, INPUTS, "Could not validate input env: '' is not one of staging, production"),
    "bad_env": ({}, [], "prod", INPUTS, "Could not validate input env: 'prod' is not one of staging, production"),
    "bad_action": ({}, ["-e", "rotation_action=rotate"], "staging", INPUTS,
                   "Could not validate input rotation_action: 'rotate' is not one of preflight, stage, validate, rollback, all"),
    "bad_provider": ({}, ["-e", "kms_provider=no-such-kms"], "staging", INPUTS,
                     f"Could not validate input kms_provider: 'no-such-kms' is not one of {', '.join(inputs.PROVIDERS)}"),
    "production_without_confirmation": (
        {"ALFRED_ENV": "production"}, [], "production", INPUTS,
        "Could not run a production rotation: confirm_production=true (--confirm-production) is required"),
    "production_confirmation_false": (
        {}, ["-e", "confirm_production=false"], "production", INPUTS,
        "Could not run a production rotation: confirm_production=true (--confirm-production) is required"),
    "alfred_env_mismatch": ({"ALFRED_ENV": "production"}, [], "staging", INPUTS,
                            "Could not run a rotation for env 'staging': ALFRED_ENV is set to 'production' on this controller"),
    "alfred_env_mismatch_in_production": (
        {"ALFRED_ENV": "staging"}, ["-e", "confirm_production=true"], "production", INPUTS,
        "Could not run a rotation for env 'production': ALFRED_ENV is set to 'staging' on this controller"),
    "missing_key_id": ({"KMS_KEY_ID": None}, [], "staging", INPUTS,
                       "Could not validate input kms_key_id: it is required (KMS_KEY_ID)"),
    "malformed_key_id": ({"KMS_KEY_ID": "tokens refresh"}, [], "staging", INPUTS,
                         f"Could not validate key 'tokens refresh': {KEY_ID_RULE}"),
    "missing_current_version": ({"KMS_KEY_VERSION": None}, [], "staging", INPUTS,
                                f"Could not validate input kms_key_version (KMS_KEY_VERSION): {VERSION_REQUIRED}"),
    "missing_next_version": ({"NEXT_KMS_KEY_VERSION": None}, [], "staging", INPUTS,
                             f"Could not validate input next_kms_key_version (NEXT_KMS_KEY_VERSION): {VERSION_REQUIRED}"),
    "non_integer_version": ({"KMS_KEY_VERSION": "one"}, [], "staging", INPUTS,
                            "Could not validate input kms_key_version (KMS_KEY_VERSION): 'one' is not a whole number"),
    "non_integer_next_version": ({"NEXT_KMS_KEY_VERSION": "2.5"}, [], "staging", INPUTS,
                                 "Could not validate input next_kms_key_version (NEXT_KMS_KEY_VERSION): '2.5' is not a whole number"),
    "version_zero": ({"KMS_KEY_VERSION": "0"}, [], "staging", INPUTS,
                     "Could not validate input kms_key_version (KMS_KEY_VERSION): versions start at 1"),
    "next_equals_current": ({"NEXT_KMS_KEY_VERSION": "1"}, [], "staging", INPUTS,
                            "Could not validate input next_kms_key_version: it equals the current version 1; a rotation needs a new version"),
    "next_older_than_current": (
        {"KMS_KEY_VERSION": "2", "NEXT_KMS_KEY_VERSION": "1"}, [], "staging", INPUTS,
        "Could not validate input next_kms_key_version: 1 is older than the current version 2; use rotation_action=rollback to go back"),
    "empty_measurements": (
        {"KMS_ALLOWED_MEASUREMENTS": ""}, [], "staging", INPUTS,
        "Could not validate input kms_allowed_measurements: it is required (KMS_ALLOWED_MEASUREMENTS, comma-separated); "
        "an empty allow-list locks every enclave out"),
    "missing_measurements": (
        {"KMS_ALLOWED_MEASUREMENTS": None}, [], "staging", INPUTS,
        "Could not validate input kms_allowed_measurements: it is required (KMS_ALLOWED_MEASUREMENTS, comma-separated); "
        "an empty allow-list locks every enclave out"),
    "malformed_measurement": (
        {"KMS_ALLOWED_MEASUREMENTS": f"{M_CURRENT},xyz"}, [], "staging", INPUTS,
        f"{MEAS} 'xyz': not hexadecimal (sha384 needs 96 hex characters)"),
    "all_zero_measurement": (
        {"KMS_ALLOWED_MEASUREMENTS": f"{M_CURRENT},{'0' * 96}"}, [], "staging", INPUTS,
        f"{MEAS} '000000000000...00000000': all-zero measurements belong to debug enclaves and are always refused"),
    "dev_local_enclave": (
        {"KMS_ALLOWED_MEASUREMENTS": f"{M_CURRENT},dev-local-enclave"}, ["-e", "kms_measurement_format=opaque"], "staging", INPUTS,
        f"{MEAS} 'dev-local-enclave': development/debug enclave markers are refused"),
    "command_provider_without_hooks": (
        {}, ["-e", "kms_provider=command"], "staging", INPUTS,
        f"{NEEDS} ALFRED_ROTATION_STAGE_CMD, ALFRED_ROTATION_VALIDATE_CMD, ALFRED_ROTATION_ROLLBACK_CMD"),
    "command_provider_without_rollback_hook": (
        {"ALFRED_ROTATION_STAGE_CMD": "echo hook-text-secret-1", "ALFRED_ROTATION_VALIDATE_CMD": "echo hook-text-secret-2"},
        ["-e", "kms_provider=command"], "staging",
        INPUTS, f"{NEEDS} ALFRED_ROTATION_ROLLBACK_CMD"),
    "command_provider_rollback_without_hook": (
        {}, ["-e", "kms_provider=command", "-e", "rotation_action=rollback"], "staging", INPUTS, f"{NEEDS} ALFRED_ROTATION_ROLLBACK_CMD"),
    # Refused by preflight once the key and the live fleet are known, still before any write.
    "current_version_is_not_the_primary": (
        {"KMS_KEY_VERSION": "3", "NEXT_KMS_KEY_VERSION": "4"}, [], "staging",
        "alfred.tee_kms.rotation : Record the pre-rotation snapshot with the key",
        f"Could not start a rotation of key '{KEY_ID}': its primary version is 1, not 3 (KMS_KEY_VERSION); "
        "check the inputs or finish/roll back the rotation in progress"),
    "next_version_skips_one": (
        {"NEXT_KMS_KEY_VERSION": "3"}, [], "staging",
        "alfred.tee_kms.rotation : Record the pre-rotation snapshot with the key",
        f"Could not validate input next_kms_key_version: key '{KEY_ID}' has versions up to 1; the next version can only be 2"),
    "allow_list_locks_out_live_enclaves": (
        {"KMS_ALLOWED_MEASUREMENTS": M_NEW}, [], "staging",
        "alfred.tee_kms.rotation : Verify live attestation of every enclave",
        None),  # message checked below: it names the enclaves' URLs
    "rollback_without_snapshot": (
        {}, ["-e", "rotation_action=rollback"], "staging",
        "alfred.tee_kms.rotation : Restore the snapshot's primary version and allow-list",
        f"Could not roll back key '{KEY_ID}': no snapshot of a pre-rotation state is kept with the key, so there is nothing to restore"),
}
WORKERS = 3
SERIAL = ("rollback_without_snapshot",)


@pytest.fixture(scope="module")
def refused(fleet, trust, inventory, tmp_path_factory):
    """Run every case once, a few at a time, against one key; {name: (Result, store bytes before, after)}."""
    workdir = tmp_path_factory.mktemp("invalid-inputs")
    (workdir / "kms").mkdir(mode=0o700)
    key = Key(workdir / "kms" / "store.json", trust, fleet)
    runners = {}
    for name in CASES:
        (workdir / name).mkdir()
        runners[name] = Runner(key, inventory, trust, workdir / name)
    before = key.store_bytes()

    def run(name):
        env, args, env_name, _task, _msg = CASES[name]
        return name, runners[name].run(args, env=env, env_name=env_name, timeout=300)

    # The rollback case takes and releases the key's lock: alone, after the others, so that no
    # concurrent case can meet its lock.
    concurrent = [name for name in CASES if name not in SERIAL]
    with ThreadPoolExecutor(WORKERS) as pool:
        results = dict(pool.map(run, concurrent))
    after_concurrent = key.store_bytes()
    results.update(run(name) for name in SERIAL)
    for each in runners.values():
        each.cleanup()
    assert after_concurrent == before
    return {"results": results, "before": before, "after": key.store_bytes(), "key": key}


@pytest.mark.parametrize("name", list(CASES))
def test_invalid_input_is_refused_before_anything_changes(name, refused, fleet):
    result = refused["results"][name]
    _env, _args, _env_name, task, message = CASES[name]
    assert result.rc == 2, result.output
    failures = result.failures()
    assert failures, result.output
    assert failures[0][0] == task, result.output
    if message is None:
        locked_out = ", ".join(fleet.urls[n] for n in ("enclave-1", "enclave-2"))
        message = (f"Could not accept the target allow-list for key '{KEY_ID}': it would lock out live enclave(s) {locked_out} "
                   f"running measurement(s) {M_CURRENT}. Add them to KMS_ALLOWED_MEASUREMENTS or retire those enclaves first.")
    assert result.messages()[0] == message
    # Nothing after the refusal changed anything: no task reported a change, no rollback ran.
    assert result.recap["changed"] == (2 if name == "rollback_without_snapshot" else 0), result.output
    assert not result.ran("Promote the new version") and not result.ran("Create the next version without using it")
    # Hook command text never appears, even in a refusal.
    assert "hook-text-secret" not in result.stdout + result.stderr


def test_no_refused_input_changed_the_store(refused):
    """Byte for byte (a rollback without snapshot takes and releases the lock, which leaves the same bytes)."""
    assert refused["after"] == refused["before"]
    state = refused["key"].state()
    assert state == {"primary": 1, "versions": {1: "enabled"}, "allowed": [M_CURRENT], "snapshot_status": None, "lock": None}
