# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Options of the vault provider (plugins/module_utils/_kms/vault.py), named as community.hashi_vault names them.
    DOCUMENTATION = r"""
options:
  url:
    description:
      - URL of the Vault or OpenBao server (C(provider=vault)). If not set, E(VAULT_ADDR) or E(BAO_ADDR) is used.
    type: str
  token:
    description:
      - Vault token for O(auth_method=token). If not set, E(VAULT_TOKEN) or E(BAO_TOKEN) is used.
      - Needs the capabilities listed in the collection's docs/providers/vault.md; it is never used to decrypt.
    type: str
  namespace:
    description:
      - Vault namespace (Vault Enterprise, OpenBao). If not set, E(VAULT_NAMESPACE) or E(BAO_NAMESPACE) is used.
    type: str
  auth_method:
    description:
      - How the collection logs in to Vault. If not set, E(ANSIBLE_HASHI_VAULT_AUTH_METHOD) is used (as community.hashi_vault does).
    type: str
    choices: [token, approle]
    default: token
  role_id:
    description:
      - AppRole role ID for O(auth_method=approle). If not set, E(VAULT_ROLE_ID) or E(BAO_ROLE_ID) is used.
    type: str
  secret_id:
    description:
      - AppRole secret ID for O(auth_method=approle). If not set, E(VAULT_SECRET_ID) or E(BAO_SECRET_ID) is used.
    type: str
  approle_mount_point:
    description:
      - Mount point of the AppRole auth method.
    type: str
    default: approle
  ca_cert:
    description:
      - CA bundle that signs the server's TLS certificate. If not set, E(VAULT_CACERT) or E(BAO_CACERT) is used.
    type: path
    aliases: [cacert]
  vault_validate_certs:
    description:
      - Whether to verify the server's TLS certificate (C(validate_certs) of community.hashi_vault; the name
        C(validate_certs) belongs to the aws provider's options).
    type: bool
    default: true
  mount_point:
    description:
      - Mount point of the Transit secrets engine that holds the key.
    type: str
    default: transit
  kv_mount_point:
    description:
      - Mount point of the KV version 2 secrets engine that holds the primary-version record, the rotation lock and
        the rollback snapshot (under C(tee-kms/<key_id>/)).
    type: str
    default: secret
  jwt_mount_point:
    description:
      - Mount point of the JWT auth method that enclaves log in to with their attestation token; the collection
        writes the role C(tee-kms-<key_id>) there, whose bound claims are the allow-list.
    type: str
    default: jwt
requirements:
  - hvac >= 2.1 (only with C(provider=vault))
"""
