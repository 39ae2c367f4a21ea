#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: kms_key_version
short_description: Create, promote, disable or enable a version of a token encryption key
version_added: 0.1.0
description:
  - Versions are sequential. O(state=present) creates the next version (n+1) as an enabled,
    non-primary version, so it can be proven to work before anything encrypts under it.
  - O(state=primary) promotes the version (creating it first when it is n+1). Only an enabled
    version can be promoted.
  - O(state=disabled) and O(state=enabled) change whether a version can be used. The primary
    version cannot be disabled.
  - O(state=destroy_scheduled) schedules the version for destruction after O(pending_window_days);
    it requires O(allow_destroy=true). Rotation and rollback never use it.
author:
  - Alfred security engineering (@alfred-security)
extends_documentation_fragment:
  - alfred.tee_kms.provider
  - alfred.tee_kms.provider.options
  - alfred.tee_kms.attributes
  - alfred.tee_kms.destruction
  - alfred.tee_kms.env_guard
options:
  report_state:
    description:
      - Also return the key's state after the task as an evidence record (the C(key_state) of
        M(alfred.tee_kms.kms_key_info); in check mode the key as it is, unchanged), so that a step ending with
        this task needs no read of its own.
    type: bool
    default: false
  version:
    description: The version number.
    type: int
    required: true
  state:
    description: The wanted state of the version.
    type: str
    choices: [present, primary, disabled, enabled, destroy_scheduled]
    default: present
seealso:
  - module: alfred.tee_kms.kms_key_info
"""

EXAMPLES = r"""
- name: Stage version 3 without using it yet
  alfred.tee_kms.kms_key_version:
    key_id: tokens/refresh
    version: 3
    state: present

- name: Promote version 3 once the canary decrypted through the attested path
  alfred.tee_kms.kms_key_version:
    key_id: tokens/refresh
    version: 3
    state: primary
"""

RETURN = r"""
key:
  description: The key's state after the run (predicted in check mode).
  type: dict
  returned: always
  sample: {"key_id": "tokens/refresh", "primary_version": 3, "versions": [{"version": 3, "state": "enabled", "created_at": "2026-11-25T10:00:00Z"}]}
version:
  description: The version's entry after the run.
  type: dict
  returned: always
  sample: {"version": 3, "state": "enabled", "created_at": "2026-11-25T10:00:00Z"}
primary:
  description: Whether the version is the primary version after the run.
  type: bool
  returned: always
"""

import copy

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import ConflictError, InputError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.module import KmsModule
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import audit
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import rules


def plan(state: dict, version: int, wanted: str) -> list:
    """The provider calls needed, checked against the rules; raises before any change."""
    exists = any(v["version"] == version for v in state["versions"])
    steps = []
    if not exists:
        if wanted not in ("present", "primary"):
            rules.find_version(state, version, {"enabled": "enable", "disabled": "disable"}.get(wanted, "schedule destruction of"))
        rules.check_next_version(state, version)
        steps.append(("create_version", version))
        state["versions"].append({"version": version, "state": "enabled", "created_at": rules.utcnow_iso()})
    entry = rules.find_version(state, version, "change")
    if wanted == "primary" and state["primary_version"] != version:
        rules.check_promote(state, version)
        steps.append(("set_primary", version))
        state["primary_version"] = version
    elif wanted in ("enabled", "disabled", "destroy_scheduled") and entry["state"] != wanted:
        rules.check_set_state(state, version, wanted)
        steps.append(("set_version_state", wanted))
        entry["state"] = wanted
    return steps


def handle(mod):
    p = mod.params
    key_id, version, wanted = p["key_id"], p["version"], p["state"]
    if version < 1:
        raise InputError("manage", f"version {version} of key '{key_id}'", "versions start at 1")
    if wanted == "destroy_scheduled":
        if not p["allow_destroy"]:
            raise InputError("schedule destruction of", f"version {version} of key '{key_id}'",
                             "destruction is irreversible after the pending window; set allow_destroy=true to confirm")
        rules.check_pending_days(p["pending_window_days"], f"version {version} of key '{key_id}'")
    before = rules.public_state(mod.provider.describe_key(key_id))
    after = copy.deepcopy(before)
    steps = plan(after, version, wanted)
    if steps and before.get("pending_deletion_at"):  # refuse in check mode too, as the real run would
        action = {"create_version": "create a version of", "set_primary": "promote a version of"}.get(steps[0][0], "change the state of a version of")
        raise ConflictError(action, f"key '{key_id}'", f"it is scheduled for deletion on {before['pending_deletion_at']}")
    if steps and not mod.check_mode:
        for operation, argument in steps:
            if operation == "create_version":
                mod.provider.create_version(key_id, version)
            elif operation == "set_primary":
                mod.provider.set_primary(key_id, version)
            else:
                mod.provider.set_version_state(key_id, version, argument, p["pending_window_days"])
        after = rules.public_state(mod.provider.describe_key(key_id))
    result = {
        "changed": bool(steps),
        "key": after,
        "version": rules.find_version(after, version, "read"),
        "primary": after["primary_version"] == version,
    }
    records = []
    if steps:
        records.append(audit.change("+".join(s[0] for s in steps), key_id, _view(before), _view(after), mod.check_mode))
        mod.add_diff(result, _view(before), _view(after))
    if p["report_state"]:  # what the key is now: predicted states are not recorded as read
        records.append(audit.key_state(before if mod.check_mode else after))
    if records:
        result["audit"] = records[0] if len(records) == 1 else records
    return result


def _view(state):
    return {"primary_version": state["primary_version"], "versions": {str(v["version"]): v["state"] for v in state["versions"]}}


def main():
    KmsModule(dict(
        version=dict(type="int", required=True),
        report_state=dict(type="bool", default=False),
        state=dict(type="str", default="present", choices=["present", "primary", "disabled", "enabled", "destroy_scheduled"]),
        **rules.DESTRUCTION_ARGSPEC,
    ), env_guard=True).run(handle)


if __name__ == "__main__":
    main()
