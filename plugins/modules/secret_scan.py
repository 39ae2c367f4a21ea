#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: secret_scan
short_description: Count secret-pattern findings in log files, optionally only new ones
version_added: 0.1.0
description:
  - Scans files for credentials that must never appear in logs - AWS access key ids and secret
    keys, PEM private key blocks, JWTs, bearer tokens, OAuth access/refresh tokens,
    C(password=...) style assignments, credentials in URLs - and, optionally, for known secret
    values given in O(known_secrets) (raw, JSON-escaped and base64 forms).
  - Long hex strings (enclave measurements, digests, hashes) are never findings.
  - Used by the rotation's validate phase. Record C(offsets) at preflight, pass them as O(since)
    at validate, and fail on any finding written in between.
  - Findings are never returned in clear; C(samples) are masked excerpts with file and line.
options:
  paths:
    description: Files or directories (scanned recursively) to scan; shell-style globs (C(**) too) are expanded.
    type: list
    elements: path
    required: true
  since:
    description:
      - Byte offset per file, as returned in C(offsets) by a previous scan. Only content after the
        offset is scanned, and every finding there counts as new.
      - A file smaller than its offset (truncated or rotated) is scanned from the start; a file
        without an offset (created since) is scanned whole.
    type: dict
  baseline:
    description:
      - Used when O(since) is not given. A previous result's C(by_detector) (or the whole previous
        result), or a total count. C(new_findings) is the per-detector increase over it.
    type: raw
  known_secrets:
    description: Secret values to look for in addition to the patterns (values shorter than 6 characters are ignored).
    type: list
    elements: str
    default: []
  fail_on_new:
    description: Fail when C(new_findings) is greater than zero.
    type: bool
    default: false
  ignore_missing:
    description: Do not fail when a path or glob matches nothing (it is listed in C(missing)).
    type: bool
    default: false
  max_samples:
    description: Maximum number of masked samples returned.
    type: int
    default: 10
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
author:
  - Alfred security engineering (@alfred-security)
"""

EXAMPLES = r"""
- name: Preflight - remember where the logs end
  alfred.tee_kms.secret_scan:
    paths:
      - /var/log/alfred/api.log
      - /var/log/alfred/enclave/*.log
    ignore_missing: true
  register: scan_before

- name: Validate - no secret written to the logs since preflight
  alfred.tee_kms.secret_scan:
    paths:
      - /var/log/alfred/api.log
      - /var/log/alfred/enclave/*.log
    since: "{{ scan_before.offsets }}"
    ignore_missing: true
    fail_on_new: true

- name: Compare whole files with an earlier count instead
  alfred.tee_kms.secret_scan:
    paths: [/var/log/alfred]
    baseline: "{{ scan_before.by_detector }}"
"""

RETURN = r"""
by_detector:
  description: Findings per detector in the scanned content (detectors with no finding are omitted).
  returned: always
  type: dict
  sample: {"aws_access_key_id": 1, "jwt": 2}
total:
  description: Total findings in the scanned content.
  returned: always
  type: int
  sample: 3
new_findings:
  description: Findings after O(since) offsets, or the increase over O(baseline), or C(total).
  returned: always
  type: int
  sample: 1
samples:
  description: Masked excerpts of findings.
  returned: always
  type: list
  elements: dict
  sample: [{"file": "/var/log/alfred/api.log", "line": 42, "detector": "jwt", "excerpt": "auth=[REDACTED:jwt]"}]
offsets:
  description: Size in bytes of every scanned file at scan time; pass as O(since) to a later scan.
  returned: always
  type: dict
  sample: {"/var/log/alfred/api.log": 183442}
files:
  description: Files scanned.
  returned: always
  type: list
  elements: str
  sample: ["/var/log/alfred/api.log"]
missing:
  description: Paths or globs that matched nothing.
  returned: always
  type: list
  elements: str
  sample: []
audit:
  description: Audit record for the evidence callback (kind C(secret_scan)).
  returned: always
  type: dict
  sample: {"kind": "secret_scan", "by_detector": {"jwt": 1}, "total": 1, "new_findings": 1}
"""

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError, TeeKmsError
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.module_base import TeeKmsModule
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import audit
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.secret_patterns import scan_paths


class ScanFailed(TeeKmsError):
    code = "scan_failed"


def handle(mod):
    p = mod.params
    baseline = p["baseline"]
    if baseline is not None and not isinstance(baseline, dict):
        try:
            baseline = int(baseline)
        except (TypeError, ValueError):
            raise InputError("use", "the secret scan baseline", "expected a by_detector dict, a previous result or an integer") from None
    result = scan_paths(p["paths"], since=p["since"], baseline=baseline,
                        max_samples=max(0, p["max_samples"]), known_values=p["known_secrets"])
    result["changed"] = False
    result["audit"] = audit.secret_scan(result)
    if result["missing"] and not p["ignore_missing"]:
        mod.fail(ScanFailed("scan for", "secrets", f"{', '.join(result['missing'])} matched no file"), **result)
    if result["errors"]:
        mod.fail(ScanFailed("scan for", "secrets", "; ".join(result["errors"])), **result)
    if p["fail_on_new"] and result["new_findings"] > 0:
        where = ", ".join(f"{s['file']}:{s['line']} ({s['detector']})" for s in result["samples"][:5])
        detail = ", ".join(f"{k}: {v}" for k, v in result["by_detector"].items())
        mod.fail_message(f"Secret scan found {result['new_findings']} new finding(s) ({detail})"
                         + (f" at {where}" if where else "") + "; see samples (masked)", **result)
    return result


def main():
    TeeKmsModule(dict(
        paths=dict(type="list", elements="path", required=True),
        since=dict(type="dict"),
        baseline=dict(type="raw"),
        known_secrets=dict(type="list", elements="str", default=[], no_log=True),
        fail_on_new=dict(type="bool", default=False),
        ignore_missing=dict(type="bool", default=False),
        max_samples=dict(type="int", default=10),
    )).run(handle)


if __name__ == "__main__":
    main()
