#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rotation_lock
short_description: Hold the per-key rotation lock so two rotations never run at once
version_added: 0.1.0
description:
  - The lock is kept with the key (owner and expiry), so it works across controllers and AWX containers.
  - O(state=acquired) takes or renews the lock. Another owner's live lock fails the task with its
    owner and expiry. A lock is taken over without confirmation only when its holder is provably
    dead, that is when it ran on this very host, in this boot and in this PID namespace (the owner
    records all three) and its process is gone. Any other lock (another host, an AWX container that
    was killed, a container with its own PID namespace on the host network) is broken only by an
    operator, with O(break_lock_owner) at any time or with O(break_stale_lock=true) once expired.
  - O(state=checked) only reports whether the lock could be taken (used by preflight).
  - O(state=released) releases the lock if this owner holds it.
author:
  - Alfred security engineering (@alfred-security)
extends_documentation_fragment:
  - alfred.tee_kms.provider
  - alfred.tee_kms.provider.options
  - alfred.tee_kms.attributes
  - alfred.tee_kms.env_guard
options:
  state:
    description: What to do with the lock.
    type: str
    choices: [acquired, checked, released]
    default: acquired
  owner:
    description: Lock owner, normally the C(lock_owner) key of RV(alfred.tee_kms.rotation_inputs#module:rotation).
    type: str
    required: true
  ttl:
    description: Seconds the lock stays valid without renewal.
    type: int
    default: 3600
  break_stale_lock:
    description: Break another owner's lock once it has expired. Confirm first that its run is gone.
    type: bool
    default: false
  break_lock_owner:
    description:
      - Break the lock held by exactly this owner (as the lock's error message names it), expired or
        not. Confirm first that its run is gone; the playbook allows it for O(state=acquired) with
        C(action=rollback) only.
      - When another owner holds the lock, nothing is broken and the task fails. The result and the
        audit record name the previous owner.
    type: str
seealso:
  - module: alfred.tee_kms.rotation_inputs
"""

EXAMPLES = r"""
- name: Take the rotation lock for the whole change
  alfred.tee_kms.rotation_lock:
    key_id: tokens/refresh
    owner: "{{ rotation_inputs.rotation.lock_owner }}"
    ttl: 3600
"""

RETURN = r"""
lock:
  description: The lock after the run (predicted in check mode); empty when released.
  type: dict
  returned: always
  sample: {"owner": "sre@ops-1/pid:4242/start:991", "acquired_at": "2026-11-25T10:00:00Z", "expires_at": "2026-11-25T11:00:00Z"}
taken_over:
  description: The owner whose lock was taken over because its process is gone, if any.
  type: str
  returned: when a lock was taken over
broken_lock_owner:
  description: The owner whose lock was broken on the operator's request (O(break_lock_owner)).
  type: str
  returned: when a lock was broken
"""

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import LockHeldError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.module import KmsModule
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import audit
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.rules import lock_conflict
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.locks import holder_is_gone


def handle(mod):
    p = mod.params
    key_id, owner = p["key_id"], p["owner"]
    lock = mod.provider.get_lock(key_id)

    broken = None

    def record(after):
        # Breaking a lock is recorded as such, with the previous owner's lock as "before".
        return audit.change("lock_broken" if broken else f"lock_{p['state']}", key_id, lock, after, mod.check_mode)

    if p["state"] == "released":
        if not lock or lock["owner"] != owner:
            return {"changed": False, "lock": lock or {}}
        if not mod.check_mode:
            mod.provider.release_lock(key_id, owner)
        return mod.add_diff({"changed": True, "lock": {}, "audit": record(None)}, {"lock": lock}, {"lock": None})

    takeover, broken = _takeover(mod, key_id, lock)
    if not takeover:
        error = lock_conflict(key_id, lock, owner, p["break_stale_lock"])
        if error:
            raise error
    if p["state"] == "checked":
        return {"changed": False, "lock": lock or {}}
    if mod.check_mode:
        # What the live run would take, shown as a diff: this rehearsal holds no lock.
        predicted = {"owner": owner, "ttl_seconds": p["ttl"]}
        return mod.add_diff({"changed": True, "lock": {"owner": owner}, "audit": record({"owner": owner})},
                            {"lock": lock}, {"lock": predicted})
    new = mod.provider.acquire_lock(key_id, owner, p["ttl"], break_stale=p["break_stale_lock"], takeover_from=takeover)
    result = mod.add_diff({"changed": True, "lock": new, "audit": record(new)}, {"lock": lock}, {"lock": new})
    if broken:
        result["broken_lock_owner"] = broken
        mod.warn(f"Broke the rotation lock of '{broken}' on the operator's request (break_lock_owner)")
    elif takeover:
        result["taken_over"] = takeover
        mod.warn(f"Took over the rotation lock of '{takeover}': its process on this host is gone")
    return result


def _takeover(mod, key_id, lock):
    """(owner to take the lock from, the same owner when an operator broke it by name)."""
    p = mod.params
    named = p["break_lock_owner"]
    if not lock or lock["owner"] == p["owner"]:
        if named:
            mod.warn(f"No rotation lock of '{named}' to break on key '{key_id}': " + ("it is not locked" if not lock else "this run holds it"))
        return None, None
    if named:
        if lock["owner"] != named:
            raise LockHeldError("break the rotation lock on", f"key '{key_id}'",
                                f"it is held by '{lock['owner']}', not by '{named}' (break_lock_owner); nothing was broken")
        return named, named
    return (lock["owner"], None) if holder_is_gone(lock["owner"]) else (None, None)


def main():
    KmsModule(dict(
        state=dict(type="str", default="acquired", choices=["acquired", "checked", "released"]),
        owner=dict(type="str", required=True),
        ttl=dict(type="int", default=3600),
        break_stale_lock=dict(type="bool", default=False),
        break_lock_owner=dict(type="str"),
    ), env_guard=True).run(handle)


if __name__ == "__main__":
    main()
