# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Options of the local provider (plugins/module_utils/_kms/local.py).
    DOCUMENTATION = r"""
options:
  store_path:
    description:
      - Path of the local KMS store file. Required with O(provider=local).
      - The file holds key material; it must be a regular file of mode C(0600) owned by the current user.
      - If not set, the environment variable E(ALFRED_TEE_KMS_STORE) is used.
    type: path
"""
