#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rotation_plan
short_description: Resolve a key rotation's plan from its inputs and refuse a run that must not start
version_added: 0.3.0
description:
  - O(step=plan), on the controller, reads every input of one key; the first one set wins, in this order, the role
    variable (C(rotation_key_id), C(rotation_env)...), the playbook variable (the runbook's name, C(kms_key_id),
    C(env)...), the runbook's environment variable (E(KMS_KEY_ID)...) and the default.
  - Host and group vars of a key host of the group C(kms_keys) are that key's inputs. The enclaves are
    C(kms_enclave_urls), else the C(enclave_url) of the hosts of the inventory groups C(enclaves) and C(probe_enclaves).
  - M(alfred.tee_kms.rotation_inputs) checks the inputs, and the plan is set as the fact C(rotation_plan), which every
    later task of the role C(alfred.tee_kms.rotation) reads. This step never fails; a refused input is kept in the plan
    and reported by O(step=admit). Run it with C(no_log), since enclave URLs may carry credentials.
  - O(step=admit) refuses the run, before anything changes, for the first of these reasons; an input refused
    at O(step=plan). Two hosts of the play that name one key (every key stops). Under AWX, a many-key run
    reading its enclaves from inventory groups (job slicing would split them), or a job slice with no key
    host. Both C(rotation_action) and the deprecated C(action) given, and different. A live run that no
    evidence bundle records (unless C(allow_no_evidence)). A native rotation or rollback with no enclave to
    prove it against. On success it returns the run context for the evidence.
  - The action plugin fills O(plans) and O(context) from the play; a task gives only O(step).
author:
  - Alfred security engineering (@alfred-security)
extends_documentation_fragment:
  - alfred.tee_kms.attributes.info
options:
  step:
    description: Which step to run.
    type: str
    choices: [plan, admit]
    required: true
  plans:
    description:
      - Filled by the action plugin for O(step=admit). The plan of every host of the play, by host, with the fields the
        refusals need (never enclave URLs or hook commands).
    type: dict
  host:
    description: Filled by the action plugin; the host whose run is admitted.
    type: str
  context:
    description: Filled by the action plugin; what the refusals need to know about the run (AWX, inventory groups, evidence).
    type: dict
seealso:
  - module: alfred.tee_kms.rotation_inputs
"""

EXAMPLES = r"""
- name: Resolve this key's plan
  alfred.tee_kms.rotation_plan:
    step: plan
  no_log: true

- name: Refuse a run that must not start
  alfred.tee_kms.rotation_plan:
    step: admit
"""

RETURN = r"""
ansible_facts:
  description: With O(step=plan), C(rotation_plan), the plan (RV(alfred.tee_kms.rotation_inputs#module:rotation) completed).
  type: dict
  returned: success and O(step=plan)
audit:
  description: With O(step=admit), the run context recorded by the evidence callback.
  type: dict
  returned: O(step=admit)
"""

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.module_base import TeeKmsModule
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.admission import refusal


def handle(mod):
    p = mod.params
    if p["step"] != "admit" or not p["plans"] or p["host"] not in p["plans"]:
        mod.fail_message("Could not admit the rotation: step=plan runs on the controller (the action plugin), and step=admit needs its plans")
    context = dict(p["context"] or {}, check_mode=mod.check_mode)
    plan = p["plans"][p["host"]]
    cause = refusal(p["host"], p["plans"], context)
    audit = plan.get("audit")
    if cause:  # an input refused at step=plan keeps the result rotation_inputs failed with (its error fields)
        extra = dict(plan.get("refused_result") or {}) if cause == plan.get("refused") else {}
        mod.fail_message(cause, **extra, **({"audit": audit} if audit else {}))
    for warning in plan.get("warnings") or []:  # rotation_inputs' warnings, hidden with the plan's no_log result
        mod.warn(warning)
    return {"changed": False, "audit": audit}


def main():
    TeeKmsModule(dict(
        step=dict(type="str", required=True, choices=["plan", "admit"]),
        plans=dict(type="dict"),
        host=dict(type="str"),
        context=dict(type="dict"),
    )).run(handle)


if __name__ == "__main__":
    main()
