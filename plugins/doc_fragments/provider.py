# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The provider options, in one file: adding a provider changes this file, not the modules
    # (docs/providers/adding-a-provider.md). tests/unit/plugins/doc_fragments/test_provider_docs.py
    # checks these fragments against the registry and every provider's argument_spec.
    #
    # alfred.tee_kms.provider: the options every KMS module shares (action group alfred.tee_kms.kms),
    # which the KMS modules extend together with alfred.tee_kms.provider.options.
    DOCUMENTATION = r"""
options:
  provider:
    description:
      - Which KMS holds the key.
      - V(local) is the embedded software KMS kept in one file (O(store_path)).
      - V(aws) is AWS KMS; O(key_id) is then an alias (C(alias/...)) and every version is its own KMS key.
      - V(vault) is HashiCorp Vault or OpenBao Transit; O(key_id) is then the Transit key name and versions are Transit key versions.
    type: str
    choices: [local, aws, vault]
    default: local
  key_id:
    description:
      - The key to manage or read, for example C(tokens/refresh) (local) or C(alias/tokens-refresh) (aws).
    type: str
    required: true
attributes:
  action_group:
    description: Use C(group/alfred.tee_kms.kms) in C(module_defaults) to set the provider options once.
    support: full
    membership:
      - alfred.tee_kms.kms
requirements:
  - cryptography >= 42.0
"""

    # alfred.tee_kms.provider.options: every provider's own options, one section per provider (the
    # provider selects which of them it reads: registry.provider_options). Extended by every module
    # that takes the provider options, the KMS modules and rotation_inputs.
    OPTIONS = r"""
options:
  # --- local (plugins/module_utils/_kms/local.py)
  store_path:
    description:
      - Path of the local KMS store file. Required with O(provider=local).
      - The file holds key material; it must be a regular file of mode C(0600) owned by the current user.
      - If not set, the environment variable E(ALFRED_TEE_KMS_STORE) is used.
    type: path
  # --- aws (plugins/module_utils/_kms/aws.py), named as amazon.aws names them
  region:
    description:
      - AWS region (O(provider=aws)). If not set, E(AWS_REGION) or E(AWS_DEFAULT_REGION) is used.
    type: str
    aliases: [aws_region, ec2_region]
  endpoint_url:
    description:
      - URL of the AWS KMS API to connect to instead of the public endpoint (private endpoints, test servers).
      - If not set, E(AWS_URL) or E(AWS_ENDPOINT_URL) is used.
    type: str
    aliases: [aws_endpoint_url, ec2_url]
  access_key:
    description:
      - AWS access key ID. If not set, E(AWS_ACCESS_KEY_ID), E(AWS_ACCESS_KEY) or E(EC2_ACCESS_KEY) is used.
    type: str
    aliases: [aws_access_key_id, aws_access_key, ec2_access_key]
  secret_key:
    description:
      - AWS secret access key. If not set, E(AWS_SECRET_ACCESS_KEY), E(AWS_SECRET_KEY) or E(EC2_SECRET_KEY) is used.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key, ec2_secret_key]
  session_token:
    description:
      - AWS session token for temporary credentials. If not set, E(AWS_SESSION_TOKEN) is used.
    type: str
    aliases: [aws_session_token, security_token, aws_security_token, access_token]
  profile:
    description:
      - Named AWS profile. If not set, E(AWS_PROFILE) or E(AWS_DEFAULT_PROFILE) is used.
      - When explicit keys are given as well, the explicit keys win.
    type: str
    aliases: [aws_profile]
  validate_certs:
    description:
      - Whether to verify TLS certificates of the AWS endpoint.
    type: bool
    default: true
    aliases: [aws_validate_certs]
  aws_ca_bundle:
    description:
      - CA bundle for the AWS endpoint. If not set, E(AWS_CA_BUNDLE) is used.
    type: path
  # --- vault (plugins/module_utils/_kms/vault.py), named as community.hashi_vault names them
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
  - boto3 >= 1.34 (only with O(provider=aws))
  - hvac >= 2.1 (only with C(provider=vault))
"""

    # alfred.tee_kms.provider.vault: the vault provider's options alone, for vault_key_access (a Vault
    # administrator's module, which has no provider option). The same text as the vault section of
    # OPTIONS: the test compares them.
    VAULT = r"""
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
