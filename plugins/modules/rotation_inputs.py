#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rotation_inputs
short_description: Validate the inputs of a key rotation before anything changes
version_added: 0.1.0
description:
  - Checks every input of the rotation runbook (environment, action, production confirmation,
    E(ALFRED_ENV), key id, versions, allowed measurements, hook commands) and returns the
    normalised rotation plan used by the roles.
  - Fails with a message naming the input and the cause; nothing is ever changed.
  - Hook command text is accepted only to check which hooks are configured; it is never returned.
  - The provider options (C(playbooks/rotate.yml) passes those of the action group C(alfred.tee_kms.kms)) say where
    the key lives; the plan's C(key_identities) name the key one way, so that a many-key run can refuse two hosts
    that name one key.
author:
  - Alfred security engineering (@alfred-security)
extends_documentation_fragment:
  - alfred.tee_kms.attributes.info
  - alfred.tee_kms.attestation.key_trust
  - alfred.tee_kms.provider.options
options:
  env:
    description: Target environment.
    type: str
    required: true
  action:
    description:
      - Rotation action (the step to run). C(playbooks/rotate.yml) sets it from its variable C(rotation_action)
        (the deprecated C(action) is still read there).
    type: str
    default: all
  confirm_production:
    description: Must be V(true) when O(env=production).
    type: bool
    default: false
  alfred_env:
    description: Value of E(ALFRED_ENV) on the controller; when not empty it must equal O(env).
    type: str
  provider:
    description: V(local), V(aws) or V(command) (the hooks do the rotation).
    type: str
    default: local
  key_id:
    description: Key to rotate (E(KMS_KEY_ID)).
    type: str
  current_version:
    description: Current primary version (E(KMS_KEY_VERSION)). A whole number with native providers.
    type: raw
  next_version:
    description: Version to rotate to (E(NEXT_KMS_KEY_VERSION)). Must differ from O(current_version).
    type: raw
  allowed_measurements:
    description: Target allow-list, a list or the runbook's comma-separated string (E(KMS_ALLOWED_MEASUREMENTS)).
    type: raw
  measurement_format:
    description: How measurements are validated. Development markers are always refused here.
    type: str
    choices: [sha384, sha256, opaque]
    default: sha384
  measurement_labels:
    description:
      - Names for measurements, as a mapping of label to measurement (C(kms_measurement_labels)), for
        example C(api-v42) for the current image. Labels never allow anything; they name images in diffs, the
        end-of-run summary, C(report.html) and error messages.
      - O(allowed_measurements) may label entries inline as C(name=hex) (hex formats only).
      - A measurement with two different labels, or a label naming two measurements, is refused.
    type: dict
  hooks:
    description: Hook commands by name (V(preflight), V(stage), V(validate), V(rollback)); secret, never returned.
    type: dict
  show_commands:
    description: Whether hook command text may appear in evidence.
    type: bool
    default: false
  lock_owner:
    description:
      - Rotation lock owner; default identifies this controller process, host, boot and PID namespace
        (C(user@host/pid:N/start:T/boot:B/pidns:I)).
    type: str
  break_lock_owner:
    description:
      - The owner of a lock to break (M(alfred.tee_kms.rotation_lock) O(alfred.tee_kms.rotation_lock#module:break_lock_owner)).
        Only checked here; refused unless O(action=rollback) with a native provider.
    type: str
  force_rollback:
    description:
      - Only checked here (M(alfred.tee_kms.rotation_snapshot) applies it as O(alfred.tee_kms.rotation_snapshot#module:force)).
        Refused unless O(action=rollback) with a O(force_rollback_reason).
    type: bool
    default: false
  force_rollback_reason:
    description: Why the rollback is forced; recorded in the evidence.
    type: str
  enclave_urls:
    description:
      - Every enclave URL the run calls (the enclaves it attests and the probe enclaves). With O(env=production)
        a plain C(http://) URL is refused, before anything changes, unless O(allow_http_enclaves=true); with
        O(env=staging) the module warns. The plain-http URLs are returned and recorded either way.
    type: list
    elements: str
    default: []
  health_check_urls:
    description:
      - The runbook's health-check URLs; returned as the plan's C(health_checks).
      - C(enclave) is an enclave URL and follows the rule of O(enclave_urls); C(api) (the token API) does not.
    type: dict
    suboptions:
      api:
        description: E(ALFRED_ROTATION_API_HEALTHCHECK_URL), which must answer HTTP 200.
        type: str
      enclave:
        description: 'E(ALFRED_ROTATION_ENCLAVE_HEALTHCHECK_URL); must answer HTTP 200 with C({"status": "ok"}).'
        type: str
  allow_http_enclaves:
    description:
      - Allow plain C(http://) enclave URLs in production (recorded in the run context of the evidence).
    type: bool
    default: false
  allow_kms_accepted_only:
    description:
      - Only recorded here and returned in the plan; M(alfred.tee_kms.kms_probe) applies it
        (O(alfred.tee_kms.kms_probe#module:allow_kms_accepted_only)).
    type: bool
    default: false
seealso:
  - module: alfred.tee_kms.rotation_lock
  - module: alfred.tee_kms.rotation_snapshot
"""

EXAMPLES = r"""
- name: Validate the runbook inputs
  alfred.tee_kms.rotation_inputs:
    env: "{{ env }}"
    action: "{{ rotation_action }}"
    confirm_production: "{{ confirm_production }}"
    alfred_env: "{{ lookup('ansible.builtin.env', 'ALFRED_ENV') }}"
    key_id: "{{ kms_key_id }}"
    current_version: "{{ kms_key_version }}"
    next_version: "{{ next_kms_key_version }}"
    allowed_measurements: "{{ kms_allowed_measurements }}"
  register: rotation_inputs
"""

RETURN = r"""
rotation:
  description:
    - The normalised rotation plan.
    - C(native) is true when the collection changes the key through a registered provider, false with
      O(provider=command), where the operator's hook commands rotate the key.
    - With O(attestation_trust), its normal form under C(attestation_trust) (public keys in canonical base64,
      root certificate and JWKS read from the files they name).
    - C(health_checks) (from O(health_check_urls)), C(allow_http_enclaves), C(allow_kms_accepted_only),
      C(http_enclave_urls) (the plain-http enclave URLs the run was allowed to call) and C(hook_allowed_measurements)
      (E(KMS_ALLOWED_MEASUREMENTS) for the hooks, the normalised target allow-list or else the input as given).
    - C(key_identities) name the key whatever the spelling of its options. The first is the provider, where its keys
      live and the key id (local the store's real path; aws the region and endpoint, vault the URL, namespace and
      mount point, with each endpoint URL's scheme and host lowercased and its default port, credentials and trailing
      slash dropped). With aws a second one is the ARN of the KMS key behind the alias, read from the KMS (absent
      when the alias does not exist). Two keys are the same when any of their identities are equal.
  type: dict
  returned: success
  sample: {"env": "staging", "action": "all", "provider": "local", "native": true, "key_id": "tokens/refresh", "current_version": 1,
           "next_version": 2, "target_measurements": ["e72a..."], "measurement_labels": {"e72a...": "api-v42"}, "hooks_configured": {"stage": false},
           "lock_owner": "sre@ops-1/pid:4242/start:991/boot:6a0e.../pidns:4026531836", "check_mode": false, "show_commands": false,
           "key_identities": ["local|/var/lib/alfred/kms-store.json|tokens/refresh"]}
audit:
  description: The run context recorded by the evidence callback.
  type: dict
  returned: success
"""

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import trust as key_trust
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import TeeKmsError
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.module_base import TeeKmsModule
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import audit
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import registry
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.inputs import hook_allowed_measurements, validate_inputs
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.urls import check_enclave_urls, health_checks


def check_urls(mod, plan: dict) -> list:
    """The URLs the run calls, after the other inputs (bad input is named first): the health checks into
    the plan; plain-http enclave URLs refused in production unless allowed, warned about otherwise."""
    p = mod.params
    health = p["health_check_urls"] or {}
    plan.update(health_checks=health_checks(health.get("api"), health.get("enclave")),
                allow_http_enclaves=p["allow_http_enclaves"], allow_kms_accepted_only=p["allow_kms_accepted_only"])
    http, warnings = check_enclave_urls(plan["env"], p["enclave_urls"], p["allow_http_enclaves"])
    more, warned = check_enclave_urls(plan["env"], [health.get("enclave")], p["allow_http_enclaves"],
                                      action="check the health of", obj="the enclaves at")
    plan["http_enclave_urls"] = http + more
    for warning in warnings + warned:
        mod.warn(warning)
    return warnings + warned


def handle(mod):
    params = dict(mod.params, check_mode=mod.check_mode)
    plan = validate_inputs(params)
    try:  # aws reads the key behind the alias: a KMS that cannot be reached fails here, the run's context recorded
        plan["key_identities"] = registry.key_identities(params) if plan["native"] else [f"{plan['provider']}|{plan['key_id']}"]
    except TeeKmsError as error:
        mod.fail(error, audit=audit.run_context(plan))
    if params.get("attestation_trust") is not None:  # checked before anything changes, as kms_key will
        plan["attestation_trust"] = key_trust.validate(params["attestation_trust"], key_trust.KEY)
    warnings = check_urls(mod, plan)
    plan["hook_allowed_measurements"] = hook_allowed_measurements(plan, params["allowed_measurements"])
    return {"changed": False, "rotation": plan, "audit": audit.run_context(plan, warnings)}


def main():
    # Where the key lives: the provider options of every KMS module; provider and key_id are validated here.
    TeeKmsModule(dict(
        registry.argument_spec(),
        env=dict(type="str", required=True),
        action=dict(type="str", default="all"),
        confirm_production=dict(type="bool", default=False),
        alfred_env=dict(type="str"),
        provider=dict(type="str", default=registry.DEFAULT_PROVIDER),
        key_id=dict(type="str"),
        current_version=dict(type="raw"),
        next_version=dict(type="raw"),
        allowed_measurements=dict(type="raw"),
        measurement_labels=dict(type="dict"),
        measurement_format=dict(type="str", default="sha384", choices=["sha384", "sha256", "opaque"]),
        hooks=dict(type="dict", no_log=True),
        show_commands=dict(type="bool", default=False),
        lock_owner=dict(type="str"),
        break_lock_owner=dict(type="str"),
        force_rollback=dict(type="bool", default=False),
        force_rollback_reason=dict(type="str"),
        attestation_trust=dict(type="dict", options=key_trust.argument_spec()),
        enclave_urls=dict(type="list", elements="str", default=[]),
        health_check_urls=dict(type="dict", options=dict(api=dict(type="str"), enclave=dict(type="str"))),
        allow_http_enclaves=dict(type="bool", default=False),
        allow_kms_accepted_only=dict(type="bool", default=False),
    )).run(handle)


if __name__ == "__main__":
    main()
