# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The audit protocol: records that modules return under ``audit`` for the evidence callback.

Private module_utils: the API may change without notice between releases.
"""

from __future__ import annotations

import hashlib

AUDIT_KINDS = ("run_context", "key_state", "attestation", "hook", "change", "rollback", "probe", "health", "secret_scan")
OUTCOMES = ("success", "failed", "rolled_back")


def iter_audits(result) -> list[dict]:
    """Every ``audit`` dict of a task result: top-level and inside loop ``results``."""
    found = []
    if not isinstance(result, dict):
        return found
    audit = result.get("audit")
    if isinstance(audit, dict) and isinstance(audit.get("kind"), str):
        found.append(audit)
    elif isinstance(audit, list):
        found.extend(a for a in audit if isinstance(a, dict) and isinstance(a.get("kind"), str))
    items = result.get("results")
    if isinstance(items, list):
        for item in items:
            found.extend(iter_audits(item))
    return found


def command_digest(command) -> str:
    return "sha256:" + hashlib.sha256(str(command).encode("utf-8")).hexdigest()
