#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: measurement_allowlist
short_description: Set which enclave measurements may decrypt under a token encryption key
version_added: 0.1.0
description:
  - Changes the attestation policy of a key, that is the set of enclave measurements whose
    verified evidence lets a caller decrypt.
  - Every value is validated before anything changes. The allow-list can never become empty,
    and a measurement listed in O(protect) (for example the measurement of every live enclave)
    can never be removed; such a request fails and changes nothing.
author:
  - Alfred security engineering (@alfred-security)
extends_documentation_fragment:
  - alfred.tee_kms.provider
  - alfred.tee_kms.provider.options
  - alfred.tee_kms.measurements
  - alfred.tee_kms.attributes
  - alfred.tee_kms.env_guard
options:
  measurements:
    description: The measurements to set, add or remove.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(exact) makes the allow-list exactly O(measurements).
      - V(present) adds O(measurements). V(absent) removes them.
    type: str
    choices: [exact, present, absent]
    default: exact
  protect:
    description:
      - Measurements that must stay allowed after the change; the module refuses otherwise.
    type: list
    elements: str
    default: []
  labels:
    description:
      - Names of measurements, as a mapping of measurement to label (the C(measurement_labels) of
        RV(alfred.tee_kms.rotation_inputs#module:rotation)). Shown next to the measurements in the
        diff and in error messages; they never change what is allowed.
    type: dict
    default: {}
seealso:
  - module: alfred.tee_kms.attestation_verify
  - module: alfred.tee_kms.kms_key_info
"""

EXAMPLES = r"""
- name: Allow the new enclave image while keeping every live image allowed
  alfred.tee_kms.measurement_allowlist:
    key_id: tokens/refresh
    measurements: "{{ target_measurements }}"
    state: exact
    protect: "{{ live_attestation.measurements }}"
"""

RETURN = r"""
allowed_measurements:
  description: The allow-list after the run (predicted in check mode).
  type: list
  elements: str
  returned: always
  sample: ["e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a"]
added:
  description: Measurements added by the run.
  type: list
  elements: str
  returned: always
removed:
  description: Measurements removed by the run.
  type: list
  elements: str
  returned: always
"""

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.measurements import normalize_list
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import ConflictError, InputError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.module import KmsModule
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import audit
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.rules import public_state


def target_list(current: list, requested: list, state: str) -> list:
    if state == "exact":
        return list(requested)
    if state == "present":
        return current + [m for m in requested if m not in current]
    return [m for m in current if m not in requested]


def _named(measurement: str, labels: dict) -> str:
    return f"{measurement[:16]}..." + (f" ({labels[measurement]})" if measurement in labels else "")


def _shown(measurements: list, labels: dict) -> list:
    """Measurements for the diff: labelled ones as ``<hex>  # <label>``."""
    return [f"{m}  # {labels[m]}" if m in labels else m for m in measurements]


def allowlist_diff(mod, key_id, current, after, labels=None):
    """The allow-list change; on AWS, the key policies it writes, as readable JSON.

    Computed before anything is written, so the real run shows the same diff as check mode.
    """
    labels = labels or {}
    diff = {"before": {"allowed_measurements": _shown(current, labels)}, "after": {"allowed_measurements": _shown(after, labels)}}
    policy_diff = getattr(mod.provider, "policy_diff", None)
    if policy_diff is not None:
        policies = policy_diff(key_id, after)
        diff["before"]["key_policies"] = policies["before"]
        diff["after"]["key_policies"] = policies["after"]
    return diff


def handle(mod):
    p = mod.params
    key_id = p["key_id"]
    before = public_state(mod.provider.describe_key(key_id))
    fmt = before["measurement_format"]
    if p["measurement_format"] and p["measurement_format"] != fmt:
        raise InputError("update the allow-list of", f"key '{key_id}'",
                         f"measurement_format {p['measurement_format']} differs from the key's {fmt}")
    action = "update the allow-list of key '%s' with" % key_id
    requested = normalize_list(p["measurements"], fmt, p["allow_dev_measurements"], action=action)
    protect = normalize_list(p["protect"], fmt, allow_dev=True, action=action)
    current = before["allowed_measurements"]
    after = target_list(current, requested, p["state"])
    if not after:
        raise InputError("update the allow-list of", f"key '{key_id}'", "the result would be empty and lock every enclave out")
    labels = {str(k).lower(): str(v) for k, v in (p["labels"] or {}).items()}
    dropped = [m for m in protect if m not in after]
    if dropped:
        raise InputError("update the allow-list of", f"key '{key_id}'",
                         f"it would drop protected measurement(s) {', '.join(_named(m, labels) for m in dropped)}, locking out live enclaves")
    added = [m for m in after if m not in current]
    removed = [m for m in current if m not in after]
    changed = bool(added or removed)
    if changed and before.get("pending_deletion_at"):  # refuse in check mode too, as the real run would
        raise ConflictError("update the allow-list of", f"key '{key_id}'", f"it is scheduled for deletion on {before['pending_deletion_at']}")
    diff = allowlist_diff(mod, key_id, current, after, labels) if changed and mod.diff_mode else None
    if not changed:
        after = list(current)  # report what the key holds, not the order the request used
    elif not mod.check_mode:
        mod.provider.set_allowed_measurements(key_id, after)
        after = public_state(mod.provider.describe_key(key_id))["allowed_measurements"]
    result = {"changed": changed, "allowed_measurements": after, "added": added, "removed": removed}
    if changed:
        result["audit"] = audit.change("set_allowed_measurements", key_id, current, after, mod.check_mode)
        if diff is not None:
            result["diff"] = diff
    return result


def main():
    KmsModule(dict(
        measurements=dict(type="list", elements="str", required=True),
        state=dict(type="str", default="exact", choices=["exact", "present", "absent"]),
        protect=dict(type="list", elements="str", default=[]),
        measurement_format=dict(type="str", choices=["sha384", "sha256", "opaque"]),
        allow_dev_measurements=dict(type="bool", default=False),
        labels=dict(type="dict", default={}),
    ), env_guard=True).run(handle)


if __name__ == "__main__":
    main()
