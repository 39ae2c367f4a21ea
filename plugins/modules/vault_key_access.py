#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: vault_key_access
short_description: Set up who may use a Vault/OpenBao Transit key (a Vault administrator, once per key)
version_added: 0.2.0
description:
  - Writes the three Vault objects that decide who reaches a key's plaintext, which the identity
    that runs rotations must not be able to change
    (C(docs/providers/vault.md) of the collection).
  - The ACL policy C(tee-kms-<key>-decrypt), decrypt on this key only.
  - The JWT auth role C(tee-kms-<key>). It admits only tokens whose audience is O(login_audience),
    which an enclave mints inside itself to log in, never the attestation tokens its public
    endpoint hands to anyone. It refuses a token the second its C(exp) has passed (a few seconds of
    clock skew aside), and its login gives a one-use, one-minute token with the decrypt policy only.
    Its bound claims on O(measurement_claim) are the allow-list; an existing role keeps them, a new one
    admits nobody until M(alfred.tee_kms.kms_key) creates the key.
  - The ACL policy C(tee-kms-<key>-rotation) of the rotation identity, exactly the paths a rotation of
    this key uses, with C(allowed_parameters) pinning what it may write (the role's bound claims only;
    a Transit key of the collection's type only). With O(rotation_approle) the policy is added to that
    AppRole role's C(token_policies).
  - Run it with an administrator's token, before the key is created and whenever O(login_audience)
    changes. Idempotent; the rotation identity cannot run it.
author:
  - Alfred security engineering (@alfred-security)
extends_documentation_fragment:
  - alfred.tee_kms.provider.vault
  - alfred.tee_kms.attributes
options:
  key_id:
    description: The Transit key name (one path segment of letters, digits, V(_), V(.) and V(-)).
    type: str
    required: true
  login_audience:
    description:
      - The audience of the enclaves' login tokens, the key's C(attestation_trust.login_audience).
      - Must differ from the audience of the attestation tokens the enclaves hand out.
    type: str
    required: true
  measurement_claim:
    description: The claim holding the measurement, as in the key's C(attestation_trust.measurement_claim).
    type: str
    default: measurement
  rotation_approle:
    description:
      - The AppRole role (on O(approle_mount_point)) of the identity that runs rotations; the key's rotation
        policy is added to its C(token_policies), which keep every other policy they have.
    type: str
seealso:
  - module: alfred.tee_kms.kms_key
"""

EXAMPLES = r"""
- name: Let the enclaves, and the rotation AppRole, use key tokens-refresh
  alfred.tee_kms.vault_key_access:
    key_id: tokens-refresh
    login_audience: tee-kms-login
    rotation_approle: tee-kms-rotation
  environment:
    VAULT_ADDR: https://vault.internal:8200
    VAULT_TOKEN: "{{ vault_admin_token }}"
"""

RETURN = r"""
updated:
  description: The objects written (V(decrypt_policy), V(rotation_policy), V(role), V(approle_policies)); empty when all were right.
  type: list
  elements: str
  returned: always
  sample: [role, rotation_policy]
names:
  description: The names of the key's policies and role.
  type: dict
  returned: always
  sample: {"decrypt_policy": "tee-kms-tokens-refresh-decrypt", "role": "tee-kms-tokens-refresh",
           "rotation_policy": "tee-kms-tokens-refresh-rotation"}
rotation_policy:
  description: The rotation identity's policy text for the key (what the server holds after a run).
  type: str
  returned: always
"""

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.module_base import TeeKmsModule
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms import registry
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.vault import VaultKmsProvider, check_name
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.vault_access import ADMIN, AccessSetup


def handle(mod):
    p = mod.params
    check_name(p["key_id"], ADMIN)
    provider = registry.build_provider(dict(p, provider=VaultKmsProvider.name))
    setup = AccessSetup(provider, p["key_id"], p["login_audience"], p["measurement_claim"], p["rotation_approle"],
                        p["approle_mount_point"])
    outcome = setup.apply(mod.check_mode)
    result = {"changed": outcome["changed"], "updated": outcome["updated"], "names": outcome["names"],
              "rotation_policy": outcome["after"]["rotation_policy"]}
    return mod.add_diff(result, outcome["before"], outcome["after"])


def main():
    spec = {name: dict(value) for name, value in VaultKmsProvider.argument_spec.items()}
    spec.update(key_id=dict(type="str", required=True), login_audience=dict(type="str", required=True),
                measurement_claim=dict(type="str", default="measurement"), rotation_approle=dict(type="str"))
    TeeKmsModule(spec).run(handle)


if __name__ == "__main__":
    main()
