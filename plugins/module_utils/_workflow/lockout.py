# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The rotation's rules about live attestation, decided once, here: trust anchors are required, and
a target allow-list must not lock out a live enclave (attestation_verify's ``rotation`` option).

Private module_utils: the API may change without notice between releases. The stage applies the
allow-list with every live measurement protected (measurement_allowlist ``protect``), so this check
at preflight is what names the enclaves to the operator before anything changes.
"""

from __future__ import annotations

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.registry import formats_with_builtin_root
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError


def check_trust(fmt: str, trust, key_id: str, native: bool) -> None:
    """Refuse to attest a rotation's enclaves without trust anchors (a format with a pinned root needs none)."""
    if trust or fmt in formats_with_builtin_root():  # a pinned root (nitro) needs no anchors
        return
    kept = ", or keep them with the key (playbooks/create_key.yml, alfred.tee_kms.kms_key attestation_trust)" if native else ""
    raise InputError("verify", f"the live attestation of the enclaves for key '{key_id}'",
                     f"no trust anchors for format {fmt}. Give them with -e @trust.yml (attestation_trust in playbooks/rotate.yml,"
                     f" rotation_attestation_trust for the role){kept}.")


def _named(measurement: str, labels: dict) -> str:
    return f"{measurement} ({labels[measurement]})" if measurement in labels else measurement


def check_lockout(results: list, measurements: list, target: list, labels: dict, key_id: str) -> None:
    """Refuse a target allow-list that leaves out the measurement of a live enclave whose evidence verified."""
    if not set(measurements or ()) - set(target):
        return
    out = [r for r in results if r.get("measurement") not in target]
    unique = list(dict.fromkeys(r.get("measurement") for r in out))
    raise InputError("accept", f"the target allow-list for key '{key_id}'",
                     f"it would lock out live enclave(s) {', '.join(str(r.get('source')) for r in out)} running measurement(s)"
                     f" {', '.join(_named(str(m), labels or {}) for m in unique)}. Add them to KMS_ALLOWED_MEASUREMENTS or retire"
                     " those enclaves first.")
