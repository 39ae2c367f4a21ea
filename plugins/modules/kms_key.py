#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: kms_key
short_description: Create a token encryption key with its enclave measurement allow-list
version_added: 0.1.0
description:
  - Creates a key with version 1 as primary and an initial allow-list of enclave measurements
    that may decrypt under it, or schedules the whole key for deletion.
  - For a key that exists, O(state=present) never replaces what the key holds silently. A different
    O(env) is refused (a key's environment never changes). A different O(attestation_trust) is refused with
    both values named, unless O(update_trust=true), which replaces it (recorded in the evidence).
    O(allowed_measurements) only applies when the key is created; a different one is refused with
    O(exact_allowlist=true), else ignored with a warning. Change the allow-list of an existing key with
    M(alfred.tee_kms.measurement_allowlist) or a rotation, and its versions with M(alfred.tee_kms.kms_key_version).
author:
  - Alfred security engineering (@alfred-security)
extends_documentation_fragment:
  - alfred.tee_kms.provider
  - alfred.tee_kms.provider.options
  - alfred.tee_kms.measurements
  - alfred.tee_kms.attributes
  - alfred.tee_kms.destruction
  - alfred.tee_kms.attestation.key_trust
  - alfred.tee_kms.env_guard
options:
  state:
    description:
      - V(present) creates the key when it does not exist.
      - V(absent) schedules every version of the key for destruction after O(pending_window_days);
        it requires O(allow_destroy=true).
    type: str
    choices: [present, absent]
    default: present
  allowed_measurements:
    description:
      - Measurements allowed to decrypt. Required, and not empty, when the key is created.
    type: list
    elements: str
  env:
    description:
      - The environment the key is created for, recorded with it; a rotation for another environment is then
        refused before it changes anything. An existing key that belongs to another environment, or records
        none, fails the task.
      - V(production) needs O(confirm_production=true) to create the key.
    type: str
    choices: [staging, production]
  exact_allowlist:
    description:
      - For a key that exists, refuse O(allowed_measurements) that differ from the key's allow-list instead of
        ignoring them with a warning. C(playbooks/create_key.yml) sets it (its create finds the key exactly as
        given, or changes nothing).
    type: bool
    default: false
  update_trust:
    description:
      - Replace the O(attestation_trust) of an existing key when it differs. Without it a different trust is
        refused, naming both. The replacement is recorded in the evidence (C(update_trust) in the change record).
    type: bool
    default: false
  description:
    description: Free-text description stored with the key (local provider).
    type: str
seealso:
  - module: alfred.tee_kms.kms_key_info
  - module: alfred.tee_kms.measurement_allowlist
"""

EXAMPLES = r"""
- name: Create the refresh-token key, allowing the current enclave image
  alfred.tee_kms.kms_key:
    key_id: tokens/refresh
    store_path: /var/lib/alfred/kms-store.json
    allowed_measurements:
      - e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a
    attestation_trust:
      public_keys: ["{{ enclave_signing_public_key }}"]

- name: Schedule a retired key for destruction in 30 days
  alfred.tee_kms.kms_key:
    key_id: tokens/legacy
    state: absent
    allow_destroy: true
"""

RETURN = r"""
key:
  description: The key's state after the run (predicted in check mode). Empty when the key does not exist.
  type: dict
  returned: always
  sample: {"key_id": "tokens/refresh", "primary_version": 1,
           "versions": [{"version": 1, "state": "enabled", "created_at": "2026-11-25T10:00:00Z"}],
           "allowed_measurements": ["e72a..."], "measurement_format": "sha384"}
diff:
  description: Key state before and after, in diff mode.
  type: dict
  returned: when diff mode is on and the key changed
"""

import datetime

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import trust as key_trust
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.measurements import normalize_list
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.module import KmsModule
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import audit
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.guard import existing_key_conflicts
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.rules import (
    DESTRUCTION_ARGSPEC,
    check_pending_days,
    public_state,
    utcnow_iso,
)


def handle(mod):
    p = mod.params
    key_id = p["key_id"]
    current = mod.provider.find_key(key_id)
    before = public_state(current) if current else {}

    if p["state"] == "absent":
        if not current or current.get("pending_deletion_at"):
            return {"changed": False, "key": before}
        if not p["allow_destroy"]:
            raise InputError("schedule deletion of", f"key '{key_id}'", "state=absent destroys every version; set allow_destroy=true to confirm")
        check_pending_days(p["pending_window_days"], f"key '{key_id}'")
        when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=p["pending_window_days"])
        after = dict(before, versions=[dict(v, state="destroy_scheduled") for v in before["versions"]],
                     pending_deletion_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"))
        if not mod.check_mode:
            mod.provider.schedule_key_deletion(key_id, p["pending_window_days"])
            after = public_state(mod.provider.describe_key(key_id))
        return _result(mod, "schedule_key_deletion", key_id, before, after)

    trust = None if p["attestation_trust"] is None else key_trust.validate(p["attestation_trust"], key_trust.KEY)
    if current is None:
        fmt = p["measurement_format"] or "sha384"
        allowed = normalize_list(p["allowed_measurements"], fmt, p["allow_dev_measurements"], action="create")
        if not allowed:
            raise InputError("create", f"key '{key_id}'", "allowed_measurements must list at least one measurement")
        after = {"key_id": key_id, "primary_version": 1, "versions": [{"version": 1, "state": "enabled", "created_at": utcnow_iso()}],
                 "allowed_measurements": allowed, "measurement_format": fmt, "env": p["env"], "pending_deletion_at": None}
        if not mod.check_mode:
            after = public_state(mod.provider.create_key(key_id, allowed, fmt, trust, p["description"], env=p["env"]))
        return _result(mod, "create_key", key_id, before, after)

    if p["measurement_format"] and p["measurement_format"] != before["measurement_format"]:
        raise InputError("update", f"key '{key_id}'",
                         f"measurement_format {p['measurement_format']} differs from the key's {before['measurement_format']}")
    wanted = None if p["allowed_measurements"] is None else \
        normalize_list(p["allowed_measurements"], before["measurement_format"], p["allow_dev_measurements"], action="check")
    found = existing_key_conflicts(key_id, current, wanted, p["env"], trust, p["update_trust"], p["exact_allowlist"])
    for warning in found["warnings"]:
        mod.warn(warning)
    if not found["trust"]:
        return {"changed": False, "key": before, "audit": audit.key_state(before)}
    if not mod.check_mode:
        mod.provider.set_attestation_trust(key_id, trust)
    result = _result(mod, "set_attestation_trust", key_id, {"attestation_trust": found["trust"]["before"]}, {"attestation_trust": trust})
    result["audit"]["update_trust"] = True
    result["key"] = before
    return result


def _result(mod, operation, key_id, before, after):
    result = {"changed": True, "key": after if "key_id" in after else before,
              "audit": audit.change(operation, key_id, before, after, mod.check_mode)}
    return mod.add_diff(result, before, after)


def main():
    KmsModule(dict(
        state=dict(type="str", default="present", choices=["present", "absent"]),
        allowed_measurements=dict(type="list", elements="str"),
        measurement_format=dict(type="str", choices=["sha384", "sha256", "opaque"]),
        allow_dev_measurements=dict(type="bool", default=False),
        attestation_trust=dict(type="dict", options=key_trust.argument_spec()),
        description=dict(type="str"),
        update_trust=dict(type="bool", default=False),
        exact_allowlist=dict(type="bool", default=False),
        **DESTRUCTION_ARGSPEC,
    ), env_guard=True).run(handle)


if __name__ == "__main__":
    main()
