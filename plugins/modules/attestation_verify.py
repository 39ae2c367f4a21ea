#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: attestation_verify
short_description: Verify TEE enclave attestation evidence, live or archived
version_added: 0.1.0
description:
  - Verifies attestation evidence of TEE enclaves and reports the measurement each one proves.
  - Live enclaves listed in O(endpoints) are challenged concurrently, each with a fresh random nonce,
    and their answers are verified.
  - A single document given in O(document) or O(document_path) is verified as of now or as of
    O(verification_time).
  - Three formats are understood. V(alfred) is the alfred enclave runtime contract (Ed25519-signed
    challenge echo). V(nitro) is an AWS Nitro Enclaves attestation document (CBOR COSE_Sign1, ES384,
    certificate chain to the AWS root). V(jwt) is an attestation token (Azure Attestation, Intel Trust
    Authority, GCP Confidential Space) checked against a JWKS.
  - Raw evidence never appears in the results, only its SHA-256 digest.
  - Fails, naming each failed source and check, when any evidence is not verified, unless
    O(fail_on_invalid=false).
author:
  - Alfred security engineering (@alfred-security)
requirements:
  - cryptography
  - cbor2
  - requests (only for an endpoint the environment sends through a proxy, C(HTTP_PROXY) and the like)
extends_documentation_fragment:
  - alfred.tee_kms.attestation
  - alfred.tee_kms.attestation.freshness
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details: The module only reads, so it runs for real in check mode and never reports a change.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  format:
    description:
      - Evidence format.
      - Required with O(endpoints). Detected from the document when omitted with O(document) or
        O(document_path).
    type: str
    choices: [alfred, nitro, jwt]
  endpoints:
    description:
      - Base URLs of live enclaves, for example V(https://enclave-1.internal:8443).
      - For V(alfred) the module sends C(POST <url>/v1/attestation/challenge); for V(nitro) and V(jwt)
        C(GET <url>/v1/attestation/document?format=<format>&nonce=<hex>).
      - Mutually exclusive with O(document) and O(document_path).
    type: list
    elements: str
  document:
    description:
      - One evidence document given inline, raw (alfred JSON, JWT) or base64 of it (nitro CBOR, or any).
      - Treated as secret, since attestation tokens can be bearer credentials.
    type: str
  document_path:
    description:
      - Path on the controller of a file holding one evidence document, raw or base64.
    type: path
  allowed_measurements:
    description:
      - When given, evidence is verified only if its measurement is in this list. Hex values are
        compared case-insensitively.
    type: list
    elements: str
  timeout:
    description:
      - Seconds allowed for each request to an enclave (connect, every read and the whole answer) and
        for fetching O(trust.jwks_url).
      - A slow or dead enclave costs at most this long and never delays the others.
    type: float
    default: 5
  workers:
    description:
      - Maximum number of enclaves attested at the same time.
    type: int
    default: 16
  operation_purpose:
    description:
      - The C(operation_purpose) sent in V(alfred) challenges.
    type: str
    default: attestation-verify
  fail_on_invalid:
    description:
      - Fail when any evidence is not verified. With V(false) the module succeeds and reports every
        result, so that a play can decide.
    type: bool
    default: true
  rotation:
    description:
      - The rules of a key rotation, decided here once (the role C(alfred.tee_kms.rotation) sets this option).
      - Refuses to attest without trust anchors (O(trust), or the flat trust options) unless the format pins its own root
        (V(nitro)), naming the key and where to give them.
      - With O(rotation.protect_target), refuses the target allow-list when a live enclave whose evidence verified runs a
        measurement outside it (the enclaves and measurements named, with their labels); the attestation rows are
        returned with the failure.
    type: dict
    suboptions:
      key_id:
        description: The key being rotated (named in the messages).
        type: str
        required: true
      native:
        description: Whether the collection changes the key itself (the message then says the trust can be kept with the key).
        type: bool
        default: true
      require_trust:
        description: Refuse to attest without trust anchors (a rollback sets V(false), since it must still restore the key).
        type: bool
        default: true
      protect_target:
        description: The target allow-list of the rotation, checked against the verified live measurements.
        type: list
        elements: str
      measurement_labels:
        description: Labels of measurements by measurement, shown next to them in the message.
        type: dict
        default: {}
notes:
  - Runs on the controller. Network access is needed only for O(endpoints) and O(trust.jwks_url).
  - Configuration errors (an unreadable root certificate or JWKS, an unreachable O(trust.jwks_url), a bad
    O(verification_time)) fail the task whatever O(fail_on_invalid) says.
seealso:
  - name: AWS Nitro Enclaves attestation process
    description: The document format and how to verify it.
    link: https://github.com/aws/aws-nitro-enclaves-nsm-api/blob/main/docs/attestation_process.md
  - name: RFC 7515 JSON Web Signature
    description: The compact serialization of O(format=jwt) tokens.
    link: https://www.rfc-editor.org/rfc/rfc7515
  - name: RFC 9052 CBOR Object Signing and Encryption
    description: COSE_Sign1, the envelope of O(format=nitro) documents.
    link: https://www.rfc-editor.org/rfc/rfc9052
"""

EXAMPLES = r"""
- name: Attest every enclave of the inventory group before a rotation
  alfred.tee_kms.attestation_verify:
    format: alfred
    endpoints: "{{ groups['enclaves'] | map('extract', hostvars, 'enclave_url') | list }}"
    trust:
      public_keys:
        - "{{ enclave_runtime_public_key }}"
    allowed_measurements: "{{ kms_allowed_measurements }}"
    max_age: 120
    timeout: 3
  delegate_to: localhost
  run_once: true
  register: attestation

- name: Verify a live Nitro enclave against the pinned AWS root, measuring PCR0, PCR1 and PCR2
  alfred.tee_kms.attestation_verify:
    format: nitro
    endpoints:
      - https://enclave-1.internal:8443
    trust:
      nitro_pcrs: [0, 1, 2]
    allowed_measurements:
      - "{{ enclave_pcr_digest }}"
  delegate_to: localhost

- name: Re-verify an archived Nitro document as of its capture time
  alfred.tee_kms.attestation_verify:
    document_path: artifacts/security/rotation/nitro_attestation.b64
    verification_time: "2024-09-07T14:37:39Z"
    nonce: "{{ archived_nonce_hex }}"
  delegate_to: localhost

- name: Check Azure Attestation tokens of the fleet without failing, then decide
  alfred.tee_kms.attestation_verify:
    format: jwt
    endpoints: "{{ enclave_urls }}"
    trust:
      jwks_url: https://sharedeus.eus.attest.azure.net/certs
      issuer: https://sharedeus.eus.attest.azure.net
      measurement_claim: x-ms-sevsnpvm-launchmeasurement
      algorithms: [RS256]
    fail_on_invalid: false
  delegate_to: localhost
  register: tokens

- name: Stop when an enclave runs an image outside the allow-list
  ansible.builtin.assert:
    that: tokens.measurements | difference(kms_allowed_measurements) | length == 0
"""

RETURN = r"""
results:
  description: One entry per endpoint (in the given order) or for the document.
  returned: always
  type: list
  elements: dict
  contains:
    source:
      description: The endpoint URL (without credentials or query), the document path or V(document).
      type: str
      sample: https://enclave-1.internal:8443
    verified:
      description: Whether the evidence was verified, including the allow-list check.
      type: bool
      sample: true
    measurement:
      description:
        - The measurement the evidence states. Also given for refused evidence that could be parsed,
          to show which image the enclave runs; only verified rows prove it.
      type: str
      sample: e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a
    reason:
      description: V(verified), or the failed check and its cause.
      type: str
      sample: "expired: leaf certificate expired at 2024-09-07T17:37:39Z"
    check:
      description:
        - The failed check, when not verified. One of V(malformed), V(unknown_format), V(signature),
          V(chain), V(expired), V(not_yet_valid), V(stale), V(nonce_mismatch), V(replay),
          V(debug_enclave), V(measurement_not_allowed), V(claims), V(trust), V(fetch).
      type: str
      returned: when not verified
      sample: expired
    format:
      description: The evidence format, given or detected.
      type: str
      sample: nitro
    digest:
      description: C(sha256:) and the hex SHA-256 of the raw evidence; null when nothing was received.
      type: str
      sample: sha256:72ffd835a669cad29f11314fb4185bd89eaed2762e30dc25282c663606ee30ee
    issued_at:
      description: When the verified evidence was issued (UTC).
      type: str
      returned: when verified and the evidence states it
      sample: "2024-09-07T14:37:39Z"
    elapsed_ms:
      description: Milliseconds spent fetching and verifying this endpoint.
      type: int
      returned: for endpoints
      sample: 12
measurements:
  description: Sorted, unique measurements of the verified evidence.
  returned: always
  type: list
  elements: str
  sample:
    - e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a
audit:
  description: The results and measurements again, tagged for the evidence callback that records them.
  returned: always
  type: dict
  contains:
    kind:
      description: Always V(attestation).
      type: str
      sample: attestation
    results:
      description: Same as RV(results).
      type: list
      elements: dict
    measurements:
      description: Same as RV(measurements).
      type: list
      elements: str
    purpose:
      description: The O(operation_purpose), which names the rotation step that attested (V(rotation-preflight), V(rotation-validate)).
      type: str
      sample: rotation-validate
"""

# Imports only the standard library at load time; each verifier checks the libraries it needs
# (cryptography, cbor2), and the live client requests for a proxied endpoint, when they are used.
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import registry as formats
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import trust
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.client import freshness_argument_spec, run
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.module_base import TeeKmsModule
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.lockout import check_lockout, check_trust


def argument_spec() -> dict:
    spec = dict(
        format=dict(type="str", choices=list(formats.names())),
        endpoints=dict(type="list", elements="str"),
        document=dict(type="str", no_log=True),
        document_path=dict(type="path"),
        allowed_measurements=dict(type="list", elements="str"),
        timeout=dict(type="float", default=5),
        workers=dict(type="int", default=16),
        operation_purpose=dict(type="str", default="attestation-verify"),
        fail_on_invalid=dict(type="bool", default=True),
    )
    # The whole trust as one option; the flat trust options stay accepted (deprecated).
    spec["trust"] = dict(type="dict", options=trust.argument_spec())
    spec.update({name: value for name, value in trust.argument_spec().items() if name not in trust.NOT_FLAT})
    spec.update(freshness_argument_spec())
    spec["rotation"] = dict(type="dict", options=dict(
        key_id=dict(type="str", required=True),
        native=dict(type="bool", default=True),
        require_trust=dict(type="bool", default=True),
        protect_target=dict(type="list", elements="str"),
        measurement_labels=dict(type="dict", default={}),
    ))
    return spec


# Each deprecated flat trust option excludes the trust option.
FLAT_TRUST = tuple(name for name in trust.FIELDS if name not in trust.NOT_FLAT)


def handle(mod):
    params = mod.params
    if params["timeout"] <= 0:
        raise InputError("verify", "attestation evidence", "timeout must be positive")
    if params["workers"] < 1:
        raise InputError("verify", "attestation evidence", "workers must be at least 1")
    rotation = params["rotation"]
    if rotation and rotation["require_trust"]:
        # The trust option's suboptions arrive filled with None: a trust is given when one of them is set.
        values = list((params["trust"] or {}).values()) + [params.get(name) for name in FLAT_TRUST]
        given = [value for value in values if value not in (None, "", [], {})]
        check_trust(params["format"], given, rotation["key_id"], rotation["native"])
    result, failure = run(params)
    if failure and params["fail_on_invalid"]:
        mod.fail_message(failure, changed=False, **result)
    if rotation and rotation["protect_target"] is not None:
        try:  # the attestation is recorded either way: it is what the refusal is based on
            check_lockout(result.get("results") or [], result.get("measurements") or [], rotation["protect_target"],
                          rotation["measurement_labels"], rotation["key_id"])
        except InputError as error:
            mod.fail(error, changed=False, **result)
    return dict(result, changed=False)


def main():
    TeeKmsModule(
        argument_spec(),
        required_one_of=[("endpoints", "document", "document_path")],
        mutually_exclusive=[("endpoints", "document", "document_path"), ("jwks", "jwks_url"),
                            ("endpoints", "nonce"), ("endpoints", "verification_time")]
        + [("trust", name) for name in FLAT_TRUST],
        required_by={"endpoints": "format"},
    ).run(handle)


if __name__ == "__main__":
    main()
