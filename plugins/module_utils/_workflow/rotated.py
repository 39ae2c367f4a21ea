# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whether a key shows the rotation that was planned (validate reads the key once and checks this).

Private module_utils: the API may change without notice between releases.
"""

from __future__ import annotations

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import ConflictError


def check_rotated(key: dict, expected: dict) -> None:
    """Raise unless ``next_version`` is primary, ``current_version`` still enabled and the allow-list the target."""
    current, target = expected["current_version"], expected["next_version"]
    previous = next((v for v in key.get("versions") or () if v.get("version") == current), {"state": "missing"})
    found = sorted(key.get("allowed_measurements") or [])
    if key.get("primary_version") == target and previous.get("state") == "enabled" and found == sorted(expected["allowed_measurements"]):
        return
    raise ConflictError("validate", f"the rotation of key '{key.get('key_id')}'",
                        f"expected primary version {target} with version {current} still enabled and the target allow-list;"
                        f" found primary {key.get('primary_version')}, version {current} {previous.get('state')}, allow-list"
                        f" {', '.join(key.get('allowed_measurements') or [])}.")
