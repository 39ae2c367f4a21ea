# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Canary and enforcement probes through the attested decrypt path.

Private module_utils: the API may change without notice between releases.

A probe proves the KMS policy does what the allow-list says, with real calls: encrypt a
random canary, fetch fresh evidence from a live enclave and ask the KMS to decrypt with it.
Canary plaintexts are random and never returned; only their digests are.
"""

from __future__ import annotations

import hashlib
import os

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.client import fetch_evidence
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import AttestationError
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import AccessDeniedError, InputError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.rules import decrypt_purpose, purpose_nonce

PROBES = ("canary", "allowed_decrypt", "disallowed_denied", "unattested_denied", "decrypt")


def token_context(key_id: str, version) -> dict:
    """The encryption context tokens are bound to (also used by the canary of providers whose KMS decrypts for the enclave)."""
    return {"token_key_id": key_id, "token_version": str(version)}


def evidence_from(url: str, fmt: str, timeout: float, purpose: str) -> dict:
    """Fresh evidence for one decrypt; ``purpose`` is the key's ``rules.decrypt_purpose``."""
    try:
        document, request = fetch_evidence(url, fmt, timeout=timeout, operation_purpose=purpose, nonce=purpose_nonce(purpose))
    except AttestationError as exc:
        raise InputError("fetch attestation evidence from", f"enclave {url}", str(exc)) from None
    attestation = {"format": fmt, "document": document}
    if fmt == "alfred":
        attestation["request"] = request
    else:
        attestation["nonce"] = request["nonce"]
    return attestation


def _denied(provider, key_id, ciphertext, context, attestation) -> tuple:
    try:
        provider.decrypt(key_id, ciphertext, context, attestation)
    except AccessDeniedError as exc:
        return True, exc.cause
    return False, "the KMS decrypted it"


def run_probe(provider, probe: str, key_id: str, version, enclave_url=None, fmt="alfred", timeout=5.0,
              ciphertext=None, context=None):
    """Return ``{name, passed, detail, ...}``; raise TeeKmsError only for unusable inputs."""
    purpose = decrypt_purpose(key_id)
    if probe == "decrypt":
        if not ciphertext or not enclave_url:
            raise InputError("run", "the decrypt probe", "ciphertext and enclave_url are required")
        plaintext = provider.decrypt(key_id, ciphertext, context or {}, evidence_from(enclave_url, fmt, timeout, purpose))
        return {"name": probe, "passed": True, "detail": "decrypted through the attested path",
                "plaintext_sha256": hashlib.sha256(plaintext).hexdigest()}

    context = token_context(key_id, version)
    canary = os.urandom(32)
    ciphertext = provider.encrypt(key_id, canary, context, version=version)
    row = {"name": probe, "version": version, "ciphertext": ciphertext, "context": context,
           "canary_sha256": hashlib.sha256(canary).hexdigest()}
    if probe in ("canary", "allowed_decrypt"):
        if not enclave_url:
            raise InputError("run", f"the {probe} probe", "enclave_url of a live, allowed enclave is required")
        try:
            plaintext = provider.decrypt(key_id, ciphertext, context, evidence_from(enclave_url, fmt, timeout, purpose))
        except AccessDeniedError as exc:
            return dict(row, passed=False, detail=f"an allowed enclave was refused: {exc.cause}")
        passed = plaintext == canary
        return dict(row, passed=passed, detail="decrypted through the attested path" if passed else "decrypted to different bytes")
    if probe == "unattested_denied":
        denied, detail = _denied(provider, key_id, ciphertext, context, None)
        return dict(row, passed=denied, detail=f"denied: {detail}" if denied else "an unattested caller could decrypt")
    if probe == "disallowed_denied":
        if enclave_url:
            denied, detail = _denied(provider, key_id, ciphertext, context, evidence_from(enclave_url, fmt, timeout, purpose))
            return dict(row, passed=denied, method="probe_enclave",
                        detail=f"denied: {detail}" if denied else "an enclave outside the allow-list could decrypt")
        # No probe enclave runs a disallowed image: ask the policy about a random measurement.
        measurement = os.urandom(48).hex()
        allowed = provider.evaluate_policy(key_id, measurement)
        return dict(row, passed=not allowed, method="policy_evaluation",
                    detail="policy denies an unknown measurement" if not allowed else "policy allows an unknown measurement")
    raise InputError("run", f"probe '{probe}'", f"it is not one of {', '.join(PROBES)}")
