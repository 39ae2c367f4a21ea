#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: kms_key_info
short_description: Read the versions and measurement allow-list of a token encryption key
version_added: 0.1.0
description:
  - Reads a key's versions, primary version and allowed enclave measurements, plus the
    rotation lock and the rollback snapshot kept with the key.
  - Never returns key material.
author:
  - Alfred security engineering (@alfred-security)
extends_documentation_fragment:
  - alfred.tee_kms.provider
  - alfred.tee_kms.provider.options
  - alfred.tee_kms.attributes.info
  - alfred.tee_kms.env_guard.read_only
options:
  missing_ok:
    description:
      - When the key does not exist, return RV(exists=false) instead of failing.
    type: bool
    default: false
  env:
    description:
      - The environment of the run about to change the key. Fails when the key belongs to another
        environment (a key without one passes; a rotation records it).
    type: str
    choices: [staging, production]
  lock_owner:
    description:
      - The owner of the rotation about to start (its C(lock_owner)). Fails when another rotation holds the key's lock, as
        M(alfred.tee_kms.rotation_lock) O(alfred.tee_kms.rotation_lock#module:state=checked) would (a lock whose holder is
        provably gone does not count), so that reading the key and checking its lock is one task.
    type: str
  expect_rotated:
    description:
      - The rotation the key must show, checked outside check mode (a rehearsal changed nothing). Fails unless the primary
        version is O(expect_rotated.next_version), O(expect_rotated.current_version) is still enabled and the allow-list is
        O(expect_rotated.allowed_measurements).
    type: dict
    suboptions:
      current_version:
        description: The version before the rotation.
        type: int
        required: true
      next_version:
        description: The version the rotation promoted.
        type: int
        required: true
      allowed_measurements:
        description: The target allow-list.
        type: list
        elements: str
        required: true
seealso:
  - module: alfred.tee_kms.kms_key
  - module: alfred.tee_kms.kms_key_version
  - module: alfred.tee_kms.measurement_allowlist
"""

EXAMPLES = r"""
- name: Read the refresh-token key from the local store
  alfred.tee_kms.kms_key_info:
    key_id: tokens/refresh
    store_path: /var/lib/alfred/kms-store.json
  register: refresh_key

- name: Read an AWS KMS key by alias
  alfred.tee_kms.kms_key_info:
    provider: aws
    key_id: alias/tokens-refresh
    region: eu-west-1
"""

RETURN = r"""
exists:
  description: Whether the key exists.
  type: bool
  returned: always
  sample: true
key:
  description: The key's state; empty when the key does not exist.
  type: dict
  returned: always
  contains:
    key_id:
      description: The key identifier.
      type: str
      sample: tokens/refresh
    primary_version:
      description: The version used to encrypt.
      type: int
      sample: 2
    versions:
      description: Every version with its state (V(enabled), V(disabled) or V(destroy_scheduled)).
      type: list
      elements: dict
      sample: [{"version": 1, "state": "enabled", "created_at": "2026-11-25T10:00:00Z"}]
    allowed_measurements:
      description: Enclave measurements allowed to decrypt.
      type: list
      elements: str
      sample: ["e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a"]
    measurement_format:
      description: How the key's measurements are validated.
      type: str
      sample: sha384
    env:
      description: The environment the key belongs to (V(staging) or V(production)); null for a key that records none yet.
      type: str
      sample: staging
    lock:
      description: The rotation lock, if held.
      type: dict
      sample: {"owner": "alice@ops-1", "acquired_at": "2026-11-25T10:00:00Z", "expires_at": "2026-11-25T10:30:00Z"}
    snapshot:
      description: The pre-rotation snapshot used by rollback, if recorded.
      type: dict
      sample: {"primary_version": 1, "allowed_measurements": ["..."], "taken_at": "2026-11-25T10:00:00Z"}
    attestation_trust:
      description:
        - The attestation trust anchors kept with the key (public keys, root certificate, JWKS, issuer, ...;
          nothing secret), as given to M(alfred.tee_kms.kms_key) O(alfred.tee_kms.kms_key#module:attestation_trust).
        - The role C(alfred.tee_kms.rotation) verifies live attestation against them when no trust is given.
      type: dict
      sample: {"public_keys": ["MCowBQYDK2VwAyEA..."]}
audit:
  description: The key state as recorded by the evidence callback.
  type: dict
  returned: when the key exists
"""

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.module import KmsModule
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import audit
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.rules import public_state
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.guard import check_key_env
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.locks import check_lock_free
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.rotated import check_rotated


def handle(mod):
    state = mod.provider.find_key(mod.params["key_id"]) if mod.params["missing_ok"] else mod.provider.describe_key(mod.params["key_id"])
    if state is None:
        return {"changed": False, "exists": False, "key": {}}
    key = public_state(state) | {"lock": state.get("lock"), "snapshot": state.get("snapshot"),
                                 "attestation_trust": state.get("attestation_trust") or {}}
    if mod.params["env"]:
        check_key_env(key, mod.params["env"])
    if mod.params["lock_owner"]:
        check_lock_free(mod.params["key_id"], key["lock"], mod.params["lock_owner"])
    if mod.params["expect_rotated"] and not mod.check_mode:
        check_rotated(key, mod.params["expect_rotated"])
    return {"changed": False, "exists": True, "key": key, "audit": audit.key_state(key)}


def main():
    KmsModule(dict(missing_ok=dict(type="bool", default=False),
                   env=dict(type="str", choices=["staging", "production"]),
                   confirm_production=dict(type="bool", default=False),
                   lock_owner=dict(type="str"),
                   expect_rotated=dict(type="dict", options=dict(
                       current_version=dict(type="int", required=True), next_version=dict(type="int", required=True),
                       allowed_measurements=dict(type="list", elements="str", required=True))))).run(handle)


if __name__ == "__main__":
    main()
