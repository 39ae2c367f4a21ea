# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Options every KMS module shares (action group alfred.tee_kms.kms). Each provider's own
    # options are in its own fragment, alfred.tee_kms.provider_<name>; every KMS module extends
    # all of them (tests/unit/plugins/doc_fragments/test_provider_docs.py checks it).
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
