#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: kms_probe
short_description: Prove a key version and its attestation policy work, through the attested decrypt path
version_added: 0.1.0
description:
  - V(canary) encrypts a random canary under O(version) with the token encryption context
    C({token_key_id, token_version}) marked as a canary, fetches fresh evidence from the live enclave at
    O(enclave_url) and decrypts through the attested path. The rotation runs it before promoting.
  - V(allowed_decrypt) is the same check as an enforcement probe after the rotation.
  - V(disallowed_denied) checks that an enclave outside the allow-list is refused. With
    O(enclave_url) (a probe enclave running a disallowed image) it uses a real decrypt; otherwise
    it asks the key's policy about a random measurement.
  - V(unattested_denied) checks that a caller without evidence is refused.
  - V(decrypt) decrypts a given O(ciphertext) (for example a canary from an earlier step).
  - With O(provider=aws) and O(attestation_format=nitro) the controller never sees a plaintext
    (KMS answers C(CiphertextForRecipient), which only the enclave can open). The probes then
    ask KMS itself and pass on its answer (C(CiphertextForRecipient) for an allowed enclave,
    C(AccessDeniedException) for a disallowed or missing document); V(canary) and
    V(allowed_decrypt) also ask the enclave's canary endpoint for a proof that it decrypted the
    canary, bound to a fresh nonce. C(result) says what was shown - C(decrypt_proven),
    C(kms_accepted_only) (the enclave has no canary endpoint), C(kms_denied) or C(kms_allowed).
    V(decrypt) is refused there.
  - With O(provider=vault) only the enclave can log in (the key's JWT role refuses the tokens an
    enclave's public endpoint hands out), so the controller never decrypts. V(canary) and
    V(allowed_decrypt) ask the enclave's canary endpoint, where the enclave logs in with its own
    login token and proves the decrypt (C(decrypt_proven); C(unproven) and a failure without a canary
    endpoint). V(disallowed_denied) asks the probe enclave the same and passes when Vault refuses its
    login. V(unattested_denied) also fetches a token from O(enclave_url)'s public attestation endpoint
    and passes only when Vault refuses it at login (RV(probe.public_token_refused)). V(decrypt) is refused.
  - A C(kms_accepted_only) result proves no decrypt by the enclave. With O(env=production) it does not pass
    unless O(allow_kms_accepted_only=true), recorded in the probe's C(accepted_by); otherwise it passes with a
    warning.
  - With O(env=production) a plain C(http://) O(enclave_url) is refused before anything is encrypted unless
    O(allow_http_enclaves=true).
  - Canary plaintexts never leave the module; only digests and ciphertexts are returned. Canaries are
    encrypted under the token context plus C(tee_kms_purpose=canary), which real tokens never carry.
  - In check mode nothing is encrypted or decrypted; the task is reported as skipped, with the reason
    in RV(skip_reason) (a rehearsal has not made the change the probe would prove).
author:
  - Alfred security engineering (@alfred-security)
extends_documentation_fragment:
  - alfred.tee_kms.provider
  - alfred.tee_kms.provider.options
  - alfred.tee_kms.attributes.info
  - alfred.tee_kms.env_guard.read_only
options:
  probe:
    description: Which probe to run.
    type: str
    required: true
    choices: [canary, allowed_decrypt, disallowed_denied, unattested_denied, decrypt]
  version:
    description: Key version to encrypt under. Default is the primary version.
    type: int
  enclave_url:
    description:
      - Base URL of the enclave that provides the attestation evidence (or, with O(provider=vault) and the AWS
        Recipient flow, that proves the decrypt through its canary endpoint).
    type: str
  attestation_format:
    description: Evidence format the enclave serves.
    type: str
    choices: [alfred, nitro, jwt]
    default: alfred
  ciphertext:
    description: Ciphertext for O(probe=decrypt).
    type: str
  context:
    description: Encryption context for O(probe=decrypt).
    type: dict
  timeout:
    description: Seconds to wait for the enclave.
    type: float
    default: 5
  fail_on_failed_probe:
    description: Fail the task when the probe does not pass.
    type: bool
    default: true
  env:
    description:
      - The environment of the run. V(production) refuses a C(kms_accepted_only) result and a plain C(http://)
        O(enclave_url) unless the matching allowance below is set.
    type: str
    choices: [staging, production]
  allow_kms_accepted_only:
    description:
      - Let a C(kms_accepted_only) result pass in production (recorded as C(accepted_by) in the probe and its audit record).
    type: bool
    default: false
  allow_http_enclaves:
    description:
      - Let a plain C(http://) O(enclave_url) be used in production.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Canary through the attested path before promoting version 3
  alfred.tee_kms.kms_probe:
    key_id: tokens/refresh
    probe: canary
    version: 3
    enclave_url: https://enclave-1.internal:8443
"""

RETURN = r"""
probe:
  description: The probe's outcome.
  type: dict
  returned: always
  sample: {"name": "canary", "passed": true, "version": 3, "detail": "decrypted through the attested path",
           "canary_sha256": "5f1c...", "ciphertext": "tkms1.eyJr...", "context": {"token_key_id": "tokens/refresh", "token_version": "3"}}
  contains:
    result:
      description:
        - With O(provider=aws) and O(attestation_format=nitro), and with O(provider=vault), what the probe showed
          (see the description).
      type: str
      returned: when the enclave proved or was refused the decrypt (AWS Recipient flow, Vault)
      sample: decrypt_proven
    public_token_refused:
      description:
        - O(provider=vault), V(unattested_denied) with O(enclave_url) only. Whether Vault refused to log in a
          token fetched from the enclave's public attestation endpoint, as anyone who reaches the enclave can.
      type: bool
      returned: when checked
      sample: true
    accepted_by:
      description:
        - For a C(kms_accepted_only) result that passed, what accepted it - V(allow_kms_accepted_only), or the
          environment (C(env staging), C(no env given)).
      type: str
      returned: when a kms_accepted_only result passed
      sample: allow_kms_accepted_only
    warnings:
      description: What the operator must read about this probe (also given as module warnings).
      type: list
      elements: str
      returned: when there is a warning
skip_reason:
  description: Why the probe did not run (check mode).
  type: str
  returned: in check mode
  sample: "not run in check mode: the canary probe needs the key as the live run leaves it (new version, new allow-list), and a rehearsal changes nothing"
"""

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import registry as formats
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import TeeKmsError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.module import KmsModule
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import audit
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.probes import judge_kms_accepted_only, run_probe
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.urls import check_enclave_urls


class ProbeFailed(TeeKmsError):
    code = "probe_failed"


def handle(mod):
    p = mod.params
    if mod.check_mode:
        # Skipped, not "ok": a rehearsal has not created the version or applied the allow-list that
        # the probe would prove, so a pass here would claim something nobody checked.
        reason = (f"not run in check mode: the {p['probe']} probe needs the key as the live run leaves it "
                  "(new version, new allow-list), and a rehearsal changes nothing")
        row = {"name": p["probe"], "passed": None, "skipped": True, "detail": reason}
        return {"changed": False, "skipped": True, "skip_reason": reason, "msg": reason, "probe": row, "audit": audit.probe(row)}
    if p["env"] == "production":  # only refused here: rotation_inputs already warned about http in staging
        check_enclave_urls(p["env"], [p["enclave_url"]], p["allow_http_enclaves"], action=f"run the {p['probe']} probe against")
    row = run_probe(mod.provider, p["probe"], p["key_id"], p["version"], p["enclave_url"], p["attestation_format"],
                    p["timeout"], p["ciphertext"], p["context"])
    row = judge_kms_accepted_only(row, p["env"], p["allow_kms_accepted_only"])
    for warning in row.get("warnings") or []:
        mod.warn(warning)
    record = audit.probe(row)
    if not row["passed"] and p["fail_on_failed_probe"]:
        mod.fail(ProbeFailed("pass", f"the {p['probe']} probe on key '{p['key_id']}'", row["detail"]), probe=row, audit=record)
    return {"changed": False, "probe": row, "audit": record}


def main():
    KmsModule(dict(
        probe=dict(type="str", required=True, choices=["canary", "allowed_decrypt", "disallowed_denied", "unattested_denied", "decrypt"]),
        version=dict(type="int"),
        enclave_url=dict(type="str"),
        attestation_format=dict(type="str", default="alfred", choices=list(formats.names())),
        ciphertext=dict(type="str"),
        context=dict(type="dict"),
        timeout=dict(type="float", default=5),
        fail_on_failed_probe=dict(type="bool", default=True),
        env=dict(type="str", choices=["staging", "production"]),
        confirm_production=dict(type="bool", default=False),
        allow_kms_accepted_only=dict(type="bool", default=False),
        allow_http_enclaves=dict(type="bool", default=False),
    )).run(handle)


if __name__ == "__main__":
    main()
