# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whether a rotation may start: the refusals that look at the whole run, not at one input.

Private module_utils: the API may change without notice between releases. Used by the module
rotation_plan (``step: admit``) once every key of the run has its plan, so that a key named twice
stops every key, before any key changes. The order is that of the runbook's checks: bad input is
named first, then what is wrong with the run as a whole, then what is missing to prove the change.
"""

from __future__ import annotations

# The steps that need live enclaves to prove a change through the attested path (native providers).
_PROVES = {"preflight": "start a rotation of", "stage": "start a rotation of", "all": "start a rotation of", "rollback": "roll back"}


def twins(plans: dict) -> list:
    """The hosts whose key another host of the run also names (by any of its identities), in host order."""
    owners: dict = {}
    for host, plan in plans.items():
        for identity in set(plan.get("key_identities") or ()):
            owners.setdefault(identity, []).append(host)
    shared = {h for hosts in owners.values() if len(hosts) > 1 for h in hosts}
    return [h for h in plans if h in shared]


def _start(plan: dict, host: str) -> str:
    return f"Could not start the {plan['action']} of key '{plan['key_id']}' (inventory host {host})"


def refusal(host: str, plans: dict, context: dict) -> str | None:
    """The first reason the run must not start for ``host``, or None."""
    plan = plans[host]
    if plan.get("refused"):
        return plan["refused"]
    action, key_id = plan["action"], plan["key_id"]
    same = twins({h: p for h, p in plans.items() if not p.get("refused")})
    if same:
        return (f"{_start(plan, host)}: the hosts {', '.join(same)} of the group kms_keys name the same key, and one run must"
                " rotate each key once. Nothing was changed. List each key once.")
    if context.get("awx") and context.get("in_kms_keys") and plan.get("enclaves_from_hosts"):
        return (f"{_start(plan, host)}: under AWX the enclaves of a many-key run must be listed in kms_enclave_urls (and probe"
                " enclaves in kms_probe_enclave_urls), group vars of kms_keys, not read from the inventory groups enclaves and"
                " probe_enclaves, because job slicing splits every inventory host, enclaves included, between slices, and a slice"
                " would check the key against part of the fleet only. Nothing was changed.")
    if context.get("awx") and context.get("kms_keys_empty"):
        return (f"Could not start the {action}: this AWX job holds no host of the group kms_keys (a job slice dealt only other"
                f" hosts: {', '.join(context.get('all_hosts') or [])}), so it would fall back to the single key of the environment."
                " Keep only keys as hosts of a sliced job's inventory. Nothing was changed.")
    if plan.get("action_conflict"):
        return plan["action_conflict"]
    if not context.get("check_mode") and not plan.get("allow_no_evidence") and context.get("evidence_cause"):
        return (f"Could not start the {action} of key '{key_id}': no evidence bundle records this run ({context['evidence_cause']})."
                " Nothing was changed. Enable the callback (ANSIBLE_CALLBACKS_ENABLED=alfred.tee_kms.evidence, or callbacks_enabled"
                " in ansible.cfg), give a writable evidence_dir, or set allow_no_evidence=true to run without evidence.")
    if plan.get("native") and action in _PROVES and not plan.get("has_enclaves"):
        if action == "rollback":
            return (f"Could not roll back key '{key_id}': the inventory group 'enclaves' lists no enclave with an enclave_url,"
                    " so the rollback could not prove that it locks out no live enclave.")
        return (f"Could not start a rotation of key '{key_id}': no enclave to prove the change against (kms_enclave_urls is empty"
                " and the inventory group 'enclaves' lists no enclave with an enclave_url; give the inventory with -i), so the new"
                " version and allow-list could not be proven through the attested path.")
    return None
