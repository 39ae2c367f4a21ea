# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # How enclave measurements are validated (kms_key, measurement_allowlist).
    DOCUMENTATION = r"""
options:
  measurement_format:
    description:
      - How measurements are checked before anything changes.
      - V(sha384) is 96 hex characters (Nitro PCRs, TDX and SEV-SNP measurements).
      - V(sha256) is 64 hex characters (SGX MRENCLAVE, container image digests).
      - V(opaque) is a printable string of at most 256 characters without spaces or commas.
      - Hex values are normalised to lowercase. All-zero values (debug enclaves) are always refused.
      - When omitted on an existing key, the key's own format is used; a different format is refused.
    type: str
    choices: [sha384, sha256, opaque]
  allow_dev_measurements:
    description:
      - Accept measurements that mark development or debug images, such as C(dev-local-enclave).
      - Never set this for staging or production keys; the rotation playbook refuses them there.
    type: bool
    default: false
"""
