# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One key's rotation plan, completed on the controller from its resolved inputs.

Controller-only. ``rotation_inputs`` (module side) checks and normalises the inputs; this adds what
the role's tasks need to run without reading a raw input again: the steps that apply, the
enclaves, the options of the KMS modules (``module_defaults``), the hooks' environment and the run
options. The admission (``_workflow/admission.py``) needs only the slim view ``for_admission``.
"""

from __future__ import annotations

import os

# The steps each rotation_action runs, in order (the role's entry points).
STEPS = {"preflight": ["preflight"], "stage": ["preflight", "stage"], "validate": ["validate"],
         "rollback": ["rollback"], "all": ["preflight", "stage", "validate"]}
HOOK_PROVIDER = "command"


def enclaves(inputs: dict, inventory_urls, inventory_probe_urls) -> dict:
    """The enclaves the run attests and probes: kms_enclave_urls (kms_probe_enclave_urls), else the inventory's."""
    given, given_probe = inputs["kms_enclave_urls"], inputs["kms_probe_enclave_urls"]
    return {"enclave_urls": list(given or inventory_urls), "probe_enclave_urls": list(given_probe or inventory_probe_urls),
            # Read from the inventory groups: a sliced AWX job would see part of them (admission refuses it).
            "enclaves_from_hosts": not given or (not given_probe and bool(inventory_probe_urls))}


def provider_options(inputs: dict) -> dict:
    """Where the key lives: the provider options of every KMS module (the command provider has no module)."""
    options = {"key_id": inputs["kms_key_id"] or None}
    if inputs["kms_provider"] != HOOK_PROVIDER:
        options["provider"] = inputs["kms_provider"]
    if inputs["kms_store_path"]:  # relative to the directory ansible-playbook was started from
        options["store_path"] = os.path.realpath(os.path.expanduser(str(inputs["kms_store_path"])))
    for option, name in (("region", "kms_aws_region"), ("endpoint_url", "kms_aws_endpoint_url")):
        if inputs[name]:
            options[option] = inputs[name]
    return options


def module_args(inputs: dict, action: str, urls: dict, environ=None) -> dict:
    """The arguments of rotation_inputs, which checks every input before anything changes."""
    environ = os.environ if environ is None else environ
    return dict(
        provider_options(inputs),
        provider=inputs["kms_provider"], env=inputs["env"], action=action, confirm_production=inputs["confirm_production"],
        alfred_env=environ.get("ALFRED_ENV", ""), current_version=inputs["kms_key_version"],
        next_version=inputs["next_kms_key_version"], allowed_measurements=inputs["kms_allowed_measurements"],
        measurement_format=inputs["kms_measurement_format"], measurement_labels=inputs["kms_measurement_labels"],
        show_commands=inputs["show_commands"], break_lock_owner=inputs["break_lock_owner"],
        force_rollback=inputs["force_rollback"], force_rollback_reason=inputs["force_rollback_reason"],
        enclave_urls=urls["enclave_urls"] + urls["probe_enclave_urls"],
        health_check_urls={"api": inputs["api_healthcheck_url"], "enclave": inputs["enclave_healthcheck_url"]},
        allow_http_enclaves=inputs["allow_http_enclaves"], allow_kms_accepted_only=inputs["allow_kms_accepted_only"],
        hooks={hook: inputs[f"rotation_{hook}_cmd"] for hook in ("preflight", "stage", "validate", "rollback")},
    )


def complete(checked: dict, inputs: dict, action: str, urls: dict) -> dict:
    """The plan every later task reads: the checked inputs plus the run's options, steps and module options."""
    plan = dict(checked)
    # The key id rotation_inputs checked, not the raw input: every task that changes the key takes this one.
    # Every module of the action group alfred.tee_kms.kms takes the env guard's options, so one set serves them all.
    options = dict(provider_options(inputs), key_id=checked["key_id"], env=inputs["env"], confirm_production=inputs["confirm_production"])
    plan.update(
        urls,
        steps=STEPS.get(action, []),
        module_defaults=options,
        attestation_format=inputs["attestation_format"], attestation_trust=inputs["attestation_trust"] or {},
        health_retries=inputs["health_retries"], health_delay=inputs["health_delay"],
        hook_timeout=inputs["rotation_hook_timeout"], log_files=inputs["rotation_log_files"],
        auto_rollback=inputs["auto_rollback"], allow_no_evidence=inputs["allow_no_evidence"],
        lock_ttl=inputs["lock_ttl"], break_stale_lock=inputs["break_stale_lock"],
        break_lock_owner=inputs["break_lock_owner"] or None, force_rollback=inputs["force_rollback"],
        force_rollback_reason=inputs["force_rollback_reason"] or None, probe_timeout=inputs["probe_timeout"],
        hook_environment={
            "ALFRED_ROTATION_ENV": str(inputs["env"]), "ALFRED_ROTATION_ACTION": action, "KMS_KEY_ID": str(inputs["kms_key_id"] or ""),
            "KMS_KEY_VERSION": str(inputs["kms_key_version"] or ""), "NEXT_KMS_KEY_VERSION": str(inputs["next_kms_key_version"] or ""),
            # The normalised allow-list (labels of name=hex entries removed), as the runbook's hooks expect it.
            "KMS_ALLOWED_MEASUREMENTS": checked.get("hook_allowed_measurements", ""),
        },
    )
    return plan


def refused(inputs: dict, action: str, urls: dict, failure: dict) -> dict:
    """The plan of a key whose inputs were refused: enough to name the key, and the refusal admission reports."""
    return {"action": action, "key_id": inputs["kms_key_id"] or None, "native": inputs["kms_provider"] != HOOK_PROVIDER,
            "steps": [], "refused": str(failure.get("msg") or "Could not validate the rotation inputs"),
            "refused_result": {"error": failure["error"]} if "error" in failure else {},
            "audit": failure.get("audit"), **urls}


ADMISSION_FIELDS = ("action", "key_id", "native", "key_identities", "refused", "refused_result", "action_conflict",
                    "allow_no_evidence", "enclaves_from_hosts", "audit", "warnings")


def for_admission(plan: dict) -> dict:
    """What the refusals read of a plan: no enclave URL (they may carry credentials), no module options."""
    slim = {k: plan[k] for k in ADMISSION_FIELDS if k in plan}
    slim["has_enclaves"] = bool(plan.get("enclave_urls"))
    return slim
