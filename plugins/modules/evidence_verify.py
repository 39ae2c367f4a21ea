#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: evidence_verify
short_description: Verify an evidence bundle offline (hash chain, manifest, signature)
version_added: 0.1.0
description:
  - Verifies a bundle written by the P(alfred.tee_kms.evidence#callback) callback without network
    access and without changing anything.
  - Checks that every line of C(events.jsonl) is intact and linked (C(seq) continuous from 0, first
    C(prev) 64 zeros, every C(prev) the previous C(hash), every C(hash) the SHA-256 of the canonical
    JSON of its line), that C(summary.json) records the actual chain head and that the chain ends
    with its C(end) event, that C(MANIFEST.sha256) lists exactly the files present with matching
    hashes, and, when O(public_key) is given, that C(MANIFEST.sig) is a valid Ed25519 signature.
  - Any edit, deletion, insertion, reordering or truncation is detected; C(reason) names the first
    problem with its file and line.
  - Every C(events.jsonl) line must be the canonical JSON of its event (sorted keys, no whitespace, no
    duplicate keys); symbolic links and entries that are neither regular files nor directories are refused.
options:
  path:
    description: Bundle directory.
    type: path
    required: true
  public_key:
    description:
      - Ed25519 public key to check C(MANIFEST.sig) with, as PEM text, a path to a PEM file, or
        base64 of the 32 raw key bytes.
      - When given, a missing signature is a failure. When not given, a bundle that holds
        C(MANIFEST.sig) is not verified (its signature could not be checked).
    type: str
  fail_on_invalid:
    description: Fail the task when the bundle does not verify. With C(false), return C(verified=false).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
seealso:
  - plugin: alfred.tee_kms.evidence
    plugin_type: callback
  - plugin: alfred.tee_kms.evidence_head
    plugin_type: lookup
author:
  - Alfred security engineering (@alfred-security)
"""

EXAMPLES = r"""
- name: Verify the evidence bundle of a rotation run
  alfred.tee_kms.evidence_verify:
    path: artifacts/security/rotation/production-all-20260216T101500Z
    public_key: /etc/alfred/evidence-signing.pub.pem
  delegate_to: localhost

- name: Check a bundle without failing, and report why it is not valid
  alfred.tee_kms.evidence_verify:
    path: "{{ bundle }}"
    fail_on_invalid: false
  register: check

- name: Show the result
  ansible.builtin.debug:
    msg: "{{ check.verified | ternary('verified, ' ~ check.events ~ ' events', check.reason) }}"
"""

RETURN = r"""
verified:
  description:
    - Whether the bundle is intact (and signed by O(public_key) when given).
    - A bundle that holds C(MANIFEST.sig) is verified only with O(public_key); without it the signature
      could not be checked and the bundle is reported as not verified.
  returned: always
  type: bool
  sample: true
events:
  description: Number of intact events read from C(events.jsonl) (up to the first problem).
  returned: always
  type: int
  sample: 57
reason:
  description: The first problem found, naming the file and line; C(null) when verified.
  returned: always
  type: str
  sample: "events.jsonl line 7: hash does not match its content"
chain_head:
  description: C(seq) and C(hash) of the last intact event.
  returned: always
  type: dict
  sample: {"seq": 56, "hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
signed:
  description: Whether C(MANIFEST.sig) is present.
  returned: always
  type: bool
  sample: true
signature_verified:
  description: Result of the signature check; C(null) when no O(public_key) was given.
  returned: always
  type: bool
  sample: true
files:
  description: Files covered by the manifest (when the manifest was read).
  returned: always
  type: list
  elements: str
  sample: ["events.jsonl", "run.log", "summary.json"]
audit:
  description: Audit record for the evidence callback (kind C(evidence_verify)).
  returned: always
  type: dict
  sample: {"kind": "evidence_verify", "verified": true, "events": 57, "reason": null}
"""

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.module_base import TeeKmsModule
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import audit
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence.verify import verify_bundle


def handle(mod):
    path = mod.params["path"]
    result = dict(verify_bundle(path, mod.params["public_key"]))
    result.pop("path", None)
    result["changed"] = False
    result["audit"] = audit.evidence_verify(result)
    if not result["verified"] and mod.params["fail_on_invalid"]:
        mod.fail_message(f"Could not verify evidence bundle '{path}': {result['reason']}", **result)
    return result


def main():
    TeeKmsModule(dict(
        path=dict(type="path", required=True),
        public_key=dict(type="str", no_log=False),
        fail_on_invalid=dict(type="bool", default=True),
    )).run(handle)


if __name__ == "__main__":
    main()
