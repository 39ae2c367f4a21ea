# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Trust anchors: what evidence of each format must be signed by.
    # The trust fields are written twice here, as the suboptions of attestation_verify's trust
    # (DOCUMENTATION) and of a key's attestation_trust (KEY_TRUST), because ansible-test reads
    # doc fragments as plain strings. They mirror plugins/module_utils/_attestation/trust.py;
    # tests/unit/plugins/module_utils/_attestation/test_trust.py checks that all of them agree.
    # Use as alfred.tee_kms.attestation (attestation_verify)
    DOCUMENTATION = r"""
options:
  trust:
    description:
      - Which evidence is trusted, as one dictionary (the same fields as the C(attestation_trust) of a key,
        see M(alfred.tee_kms.kms_key)).
      - Replaces the flat options O(public_keys), O(root_certificate), O(nitro_pcrs), O(jwks), O(jwks_url),
        O(issuer), O(audience), O(algorithms) and O(measurement_claim), which are deprecated.
      - C(max_age) applies when O(max_age) is not set.
    type: dict
    suboptions:
      formats:
        description:
          - The evidence formats this trust accepts; evidence of any other format is refused (check C(trust)).
          - For a key, when omitted, the formats it holds an anchor for - C(alfred) with C(public_keys), C(jwt)
            with C(jwks), C(nitro) with C(root_certificate). The AWS Nitro Enclaves root pinned in the collection is
            trusted only by a trust that lists C(nitro) here.
          - For the trust of M(alfred.tee_kms.attestation_verify), when omitted, any format (its C(format) option decides).
        type: list
        elements: str
        choices: [alfred, nitro, jwt]
      public_keys:
        description:
          - Trusted Ed25519 public keys of the enclave runtime, base64 of the raw 32 bytes.
          - Used for C(alfred) evidence; a signature by any listed key is accepted.
        type: list
        elements: str
      root_certificate:
        description:
          - Trusted root certificate for C(nitro) documents, as PEM text or the path of a PEM file
            on the controller. Several PEM certificates may be given; any of them may be the root.
          - When omitted, the AWS Nitro Enclaves Root-G1 certificate pinned in the collection is used
            (SHA-256 fingerprint C(641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B)).
        type: str
      nitro_pcrs:
        description:
          - PCR indexes of C(nitro) documents that make up the measurement. Default C([0]).
          - With one index the measurement is the lowercase hex of that PCR. With several it is the
            lowercase hex SHA-384 of the PCR values concatenated in the order given here, so allow-lists
            must be computed with the same list.
          - Documents whose PCR0, PCR1, PCR2 or any listed PCR is all zero come from debug-mode enclaves and
            are refused; do not list PCRs that are legitimately zero (PCR3 without an IAM role, PCR8 for an
            unsigned image).
        type: list
        elements: int
      jwks:
        description:
          - Trusted keys for C(jwt) tokens, a JSON Web Key Set as a dictionary, JSON text or the path
            of a JSON file on the controller.
          - Mutually exclusive with C(jwks_url).
        type: raw
      jwks_url:
        description:
          - URL of the JSON Web Key Set of the attestation service, fetched once per task.
          - Mutually exclusive with C(jwks). Refused in a trust kept with a key, whose decrypt gate never
            fetches keys from the network; give C(jwks) there.
        type: str
      issuer:
        description:
          - Required C(iss) of C(jwt) tokens. Not checked when omitted.
        type: str
      audience:
        description:
          - Value that the C(aud) claim (string or list) of C(jwt) tokens must contain. Not checked when
            omitted.
        type: str
      login_audience:
        description:
          - The audience of the tokens an enclave presents to its KMS's login (with C(provider=vault), the
            C(bound_audiences) of the key's JWT auth role). An enclave asks for such a token inside itself and
            never hands it out; its public attestation endpoint never issues one.
          - Evidence whose C(aud) contains it is refused (check C(claims)) wherever evidence is verified, since
            a token that anyone who reaches the enclave could fetch must never be a login credential.
          - Required with C(provider=vault); must differ from C(audience).
        type: str
      algorithms:
        description:
          - JWS algorithms accepted for C(jwt) tokens. Default all of the choices.
          - V(none) and the HMAC algorithms are never accepted.
        type: list
        elements: str
        choices: [RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA]
      measurement_claim:
        description:
          - Claim of C(jwt) tokens that holds the measurement, default C(measurement). A dotted path reaches
            into nested claims (V(submods.container.image_digest)); a claim whose name is exactly the value
            wins (V(x-ms-sevsnpvm-launchmeasurement)).
        type: str
      max_age:
        description:
          - Maximum age in seconds of the evidence when it is verified (nitro C(timestamp), jwt C(iat), alfred
            C(evidence_issued_at)).
          - For a task, not checked when omitted. For a key, evidence presented with a decrypt must be at most
            300 seconds old when omitted.
        type: int
  public_keys:
    description:
      - Deprecated, use O(trust.public_keys) (same meaning). Mutually exclusive with O(trust).
    type: list
    elements: str
  root_certificate:
    description:
      - Deprecated, use O(trust.root_certificate) (same meaning). Mutually exclusive with O(trust).
    type: str
  nitro_pcrs:
    description:
      - Deprecated, use O(trust.nitro_pcrs) (same meaning). Mutually exclusive with O(trust).
    type: list
    elements: int
  jwks:
    description:
      - Deprecated, use O(trust.jwks) (same meaning). Mutually exclusive with O(trust).
    type: raw
  jwks_url:
    description:
      - Deprecated, use O(trust.jwks_url) (same meaning). Mutually exclusive with O(trust).
    type: str
  issuer:
    description:
      - Deprecated, use O(trust.issuer) (same meaning). Mutually exclusive with O(trust).
    type: str
  audience:
    description:
      - Deprecated, use O(trust.audience) (same meaning). Mutually exclusive with O(trust).
    type: str
  algorithms:
    description:
      - Deprecated, use O(trust.algorithms) (same meaning). Mutually exclusive with O(trust).
    type: list
    elements: str
    choices: [RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA]
  measurement_claim:
    description:
      - Deprecated, use O(trust.measurement_claim) (same meaning). Mutually exclusive with O(trust).
    type: str
"""

    # The trust kept with a key. Use as alfred.tee_kms.attestation.key_trust (kms_key, rotation_inputs)
    KEY_TRUST = r"""
options:
  attestation_trust:
    description:
      - Trust anchors the key's decrypt gate uses to verify the attestation evidence presented with a
        decrypt request (the local provider; AWS KMS verifies Nitro evidence itself, the aws provider
        uses C(nitro_pcrs) for its key policy condition and the anchors for its local pre-check).
      - The same fields as the O(alfred.tee_kms.attestation_verify#module:trust) option of
        M(alfred.tee_kms.attestation_verify); C(jwks_url) is refused here.
    type: dict
    suboptions:
      formats:
        description:
          - The evidence formats this trust accepts; evidence of any other format is refused (check C(trust)).
          - For a key, when omitted, the formats it holds an anchor for - C(alfred) with C(public_keys), C(jwt)
            with C(jwks), C(nitro) with C(root_certificate). The AWS Nitro Enclaves root pinned in the collection is
            trusted only by a trust that lists C(nitro) here.
          - For the trust of M(alfred.tee_kms.attestation_verify), when omitted, any format (its C(format) option decides).
        type: list
        elements: str
        choices: [alfred, nitro, jwt]
      public_keys:
        description:
          - Trusted Ed25519 public keys of the enclave runtime, base64 of the raw 32 bytes.
          - Used for C(alfred) evidence; a signature by any listed key is accepted.
        type: list
        elements: str
      root_certificate:
        description:
          - Trusted root certificate for C(nitro) documents, as PEM text or the path of a PEM file
            on the controller. Several PEM certificates may be given; any of them may be the root.
          - When omitted, the AWS Nitro Enclaves Root-G1 certificate pinned in the collection is used
            (SHA-256 fingerprint C(641A0321A3E244EFE456463195D606317ED7CDCC3C1756E09893F3C68F79BB5B)).
        type: str
      nitro_pcrs:
        description:
          - PCR indexes of C(nitro) documents that make up the measurement. Default C([0]).
          - With one index the measurement is the lowercase hex of that PCR. With several it is the
            lowercase hex SHA-384 of the PCR values concatenated in the order given here, so allow-lists
            must be computed with the same list.
          - Documents whose PCR0, PCR1, PCR2 or any listed PCR is all zero come from debug-mode enclaves and
            are refused; do not list PCRs that are legitimately zero (PCR3 without an IAM role, PCR8 for an
            unsigned image).
        type: list
        elements: int
      jwks:
        description:
          - Trusted keys for C(jwt) tokens, a JSON Web Key Set as a dictionary, JSON text or the path
            of a JSON file on the controller.
          - Mutually exclusive with C(jwks_url).
        type: raw
      jwks_url:
        description:
          - URL of the JSON Web Key Set of the attestation service, fetched once per task.
          - Mutually exclusive with C(jwks). Refused in a trust kept with a key, whose decrypt gate never
            fetches keys from the network; give C(jwks) there.
        type: str
      issuer:
        description:
          - Required C(iss) of C(jwt) tokens. Not checked when omitted.
        type: str
      audience:
        description:
          - Value that the C(aud) claim (string or list) of C(jwt) tokens must contain. Not checked when
            omitted.
        type: str
      login_audience:
        description:
          - The audience of the tokens an enclave presents to its KMS's login (with C(provider=vault), the
            C(bound_audiences) of the key's JWT auth role). An enclave asks for such a token inside itself and
            never hands it out; its public attestation endpoint never issues one.
          - Evidence whose C(aud) contains it is refused (check C(claims)) wherever evidence is verified, since
            a token that anyone who reaches the enclave could fetch must never be a login credential.
          - Required with C(provider=vault); must differ from C(audience).
        type: str
      algorithms:
        description:
          - JWS algorithms accepted for C(jwt) tokens. Default all of the choices.
          - V(none) and the HMAC algorithms are never accepted.
        type: list
        elements: str
        choices: [RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA]
      measurement_claim:
        description:
          - Claim of C(jwt) tokens that holds the measurement, default C(measurement). A dotted path reaches
            into nested claims (V(submods.container.image_digest)); a claim whose name is exactly the value
            wins (V(x-ms-sevsnpvm-launchmeasurement)).
        type: str
      max_age:
        description:
          - Maximum age in seconds of the evidence when it is verified (nitro C(timestamp), jwt C(iat), alfred
            C(evidence_issued_at)).
          - For a task, not checked when omitted. For a key, evidence presented with a decrypt must be at most
            300 seconds old when omitted.
        type: int
"""

    # Freshness: binding evidence to a nonce and to a time.
    # Use as alfred.tee_kms.attestation.freshness
    FRESHNESS = r"""
options:
  nonce:
    description:
      - Nonce the O(document) or O(document_path) evidence must carry.
      - For O(format=nitro) a hex value is compared as bytes, anything else as its UTF-8 bytes; for
        O(format=alfred) it is the C(challenge_nonce); for O(format=jwt) the C(eat_nonce) or C(nonce) claim.
      - With O(endpoints) a fresh random nonce is generated for every request; this option is then refused.
    type: str
  max_age:
    description:
      - Maximum age in seconds of the evidence at verification time (nitro C(timestamp), jwt C(iat),
        alfred C(evidence_issued_at)). Not checked when omitted.
    type: int
  verification_time:
    description:
      - Verify as of this time (ISO 8601, for example V(2024-09-07T14:37:39Z)) instead of now, to check
        archived evidence as of its capture. Certificates, token lifetimes and O(max_age) use it.
      - Only for O(document) and O(document_path); refused with O(endpoints).
    type: str
  clock_skew:
    description:
      - Seconds of clock difference tolerated when checking token and challenge lifetimes.
    type: int
    default: 60
"""
