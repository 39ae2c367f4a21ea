# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Canary and enforcement probes through the attested decrypt path.

Private module_utils: the API may change without notice between releases.

A probe proves the KMS policy does what the allow-list says, with real calls: encrypt a
random canary, fetch fresh evidence from a live enclave and ask the KMS to decrypt with it.
Canary plaintexts are random and never returned; only their digests are.

On AWS with Nitro enclaves (a provider with ``decrypt_at_kms`` and format ``nitro``) the
controller cannot see a plaintext: KMS answers CiphertextForRecipient, which only the enclave
opens. There the probes ask KMS itself (no local pre-check) and pass on KMS's answer:
CiphertextForRecipient for an allowed document, AccessDenied for a disallowed or missing
one; plaintext is never compared. The decrypt itself is proven by the enclave through its
canary endpoint (docs/attestation.md): it decrypts the canary with its own document and
returns SHA-256(nonce || plaintext) for a nonce the controller chose. An enclave without the
endpoint gives ``result: kms_accepted_only``, which says that no decrypt was proven.

On Vault/OpenBao (a provider with ``enclave_login``) only the enclave can log in: the tokens
its public endpoint hands to anyone are refused by the key's JWT role, so the controller never
holds a credential that decrypts. There every decrypt probe goes through the enclave's canary
endpoint (the enclave logs in with its own login token), a disallowed enclave must be refused
at its own login, and the unattested probe also shows that a public attestation token does not
log in.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation import registry
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.client import fetch_evidence, http_request, new_session
from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import AttestationError, loads_json
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import AccessDeniedError, InputError, ProviderError
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.printable import escape_controls
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.rules import decrypt_purpose, purpose_nonce

PROBES = ("canary", "allowed_decrypt", "disallowed_denied", "unattested_denied", "decrypt")
CANARY_PATH = "/v1/kms/canary"
# Every probe canary is encrypted under this context entry as well; an enclave's canary endpoint
# decrypts nothing without it (docs/attestation.md), so it is no oracle on real tokens.
CANARY_CONTEXT = {"tee_kms_purpose": "canary"}


def token_context(key_id: str, version) -> dict:
    """The encryption context tokens are bound to (also used by the canary of providers whose KMS decrypts for the enclave)."""
    return {"token_key_id": key_id, "token_version": str(version)}


def canary_context(key_id: str, version) -> dict:
    """The encryption context of a probe canary: the token context, marked as a canary."""
    return dict(token_context(key_id, version), **CANARY_CONTEXT)


def evidence_from(url: str, fmt: str, timeout: float, purpose: str) -> dict:
    """Fresh evidence for one decrypt; ``purpose`` is the key's ``rules.decrypt_purpose``."""
    try:
        document, request = fetch_evidence(url, fmt, timeout=timeout, operation_purpose=purpose, nonce=purpose_nonce(purpose))
    except AttestationError as exc:
        raise InputError("fetch attestation evidence from", f"enclave {url}", str(exc)) from None
    # What binds it to the request for the decrypt gate: the challenge sent (alfred) or the nonce.
    return registry.attestation_format(fmt).bind({"format": fmt, "document": document}, request)


def _denied(provider, key_id, ciphertext, context, attestation) -> tuple:
    try:
        provider.decrypt(key_id, ciphertext, context, attestation)
    except AccessDeniedError as exc:
        return True, exc.cause
    return False, "the KMS decrypted it"


def _recipient_flow(provider, fmt) -> bool:
    return fmt == "nitro" and hasattr(provider, "decrypt_at_kms")


def _kms_answer(provider, key_id, ciphertext, context, attestation) -> tuple:
    """("denied", cause), ("recipient", envelope answer) or ("plaintext", bytes): KMS's own word."""
    try:
        answer = provider.decrypt_at_kms(key_id, ciphertext, context, attestation)
    except AccessDeniedError as exc:
        return "denied", exc.cause
    return ("plaintext", answer) if isinstance(answer, bytes) else ("recipient", answer)


def _quoted(text) -> str:
    """The enclave's own words, shortened and with control characters escaped (not dropped)."""
    return escape_controls(str(text)[:200], lines=False)


def canary_proof(url: str, ciphertext_blob: bytes, context: dict, canary: bytes, timeout: float, key_id=None) -> dict:
    """Ask the enclave to decrypt the canary through KMS itself; check its nonce-bound proof."""
    obj = f"the canary endpoint of enclave {url}"
    nonce = secrets.token_bytes(32)
    body = {"ciphertext_blob": base64.b64encode(ciphertext_blob).decode("ascii"), "encryption_context": context,
            "nonce": nonce.hex()}
    if key_id is not None:
        body["key_id"] = key_id
    session = new_session()
    try:
        status, dummy, raw = http_request(session, "POST", url.rstrip("/") + CANARY_PATH, timeout, json=body)
    except AttestationError as exc:
        raise ProviderError("check the canary proof from", obj, f"it did not answer within {timeout:g}s or could not be "
                            f"reached ({exc.detail})") from None
    finally:
        session.close()
    if status == 404:
        return {"passed": True, "result": "kms_accepted_only",
                "detail": "KMS answered CiphertextForRecipient for the enclave's attestation document; the enclave has no "
                          "canary endpoint, so no decrypt by the enclave is proven"}
    try:
        answer = loads_json(raw, "its body")  # nesting capped: json.loads alone raised RecursionError
    except AttestationError as exc:
        raise ProviderError("check the canary proof from", obj, f"it answered HTTP {status} with a body that is not a JSON "
                            f"object ({exc.detail})") from None
    if not isinstance(answer, dict):
        raise ProviderError("check the canary proof from", obj, f"it answered HTTP {status} with a body that is not a JSON object")
    if status == 502 and answer.get("kms_error"):
        return {"passed": False, "result": "kms_denied",
                "detail": f"KMS refused the enclave's own decrypt of the canary ({_quoted(answer['kms_error'])})"}
    if status != 200:
        raise ProviderError("check the canary proof from", obj, f"it answered HTTP {status}: {_quoted(answer.get('error'))}")
    if answer.get("nonce") != nonce.hex():
        raise ProviderError("check the canary proof from", obj, "the proof is for another nonce than this probe sent")
    if answer.get("proof") != hashlib.sha256(nonce + canary).hexdigest():
        raise ProviderError("check the canary proof from", obj, "the proof is not SHA-256(nonce || canary): the enclave "
                            "bound it to another nonce or decrypted other bytes")
    return {"passed": True, "result": "decrypt_proven",
            "detail": "the enclave decrypted the canary through KMS with its own attestation document (proof bound to "
                      "this probe's nonce)"}


def _recipient_probe(provider, probe, key_id, row, enclave_url, fmt, timeout, canary):
    """The probes on AWS with Nitro enclaves: KMS's answer decides, the enclave proves the decrypt."""
    ciphertext, context = row["ciphertext"], row["context"]
    purpose = f"kms-probe-{probe}"
    if probe in ("canary", "allowed_decrypt"):
        if not enclave_url:
            raise InputError("run", f"the {probe} probe", "enclave_url of a live, allowed enclave is required")
        said, answer = _kms_answer(provider, key_id, ciphertext, context, evidence_from(enclave_url, fmt, timeout, purpose))
        if said != "recipient":
            return dict(row, passed=False, result="kms_denied", detail=f"KMS refused an allowed enclave's document: {answer}")
        return dict(row, **canary_proof(enclave_url, provider.parse_ciphertext(ciphertext)[1], context, canary, timeout))
    if probe == "unattested_denied":
        said, answer = _kms_answer(provider, key_id, ciphertext, context, None)
        passed = said == "denied"
        return dict(row, passed=passed, result="kms_denied" if passed else "kms_allowed",
                    detail=f"KMS denied it: {answer}" if passed else "KMS decrypted for a caller without attestation")
    said, answer = _kms_answer(provider, key_id, ciphertext, context, evidence_from(enclave_url, fmt, timeout, purpose))
    passed = said == "denied"
    leak = "KMS answered CiphertextForRecipient for an enclave outside the allow-list"
    return dict(row, passed=passed, method="probe_enclave", result="kms_denied" if passed else "kms_allowed",
                detail=f"KMS denied it: {answer}" if passed else leak)


def _enclave_login_probe(provider, probe, key_id, row, enclave_url, fmt, timeout, canary):
    """The probes where only the enclave can log in (Vault): the enclave decrypts, the server refuses."""
    def proof(url):
        return canary_proof(url, row["ciphertext"].encode("ascii"), row["context"], canary, timeout, key_id=key_id)

    if probe in ("canary", "allowed_decrypt"):
        if not enclave_url:
            raise InputError("run", f"the {probe} probe", "enclave_url of a live, allowed enclave is required")
        shown = proof(enclave_url)
        if shown["result"] == "kms_accepted_only":
            return dict(row, passed=False, result="unproven",
                        detail="the enclave has no canary endpoint: with this provider only the enclave can log in, so no decrypt "
                               "is proven without it")
        return dict(row, **shown)
    if probe == "unattested_denied":
        denied, detail = _denied(provider, key_id, row["ciphertext"], row["context"], None)
        row = dict(row, passed=denied, detail=f"denied without a token: {detail}" if denied else "an unattested caller could decrypt")
        if denied and enclave_url:
            # What anyone who reaches an enclave can fetch must not log in either.
            public = evidence_from(enclave_url, "jwt", timeout, decrypt_purpose(key_id))
            refused, cause = provider.login_refused(key_id, public)
            row = dict(row, passed=refused, public_token_refused=refused,
                       detail=row["detail"] + ("; a token from the enclave's public attestation endpoint was refused at login: "
                                               f"{cause}" if refused else
                                               "; but a token from the enclave's public attestation endpoint logged in"))
        return row
    if enclave_url:  # disallowed_denied with a probe enclave: it must be refused at its own login
        shown = proof(enclave_url)
        if shown["result"] == "kms_denied":
            return dict(row, passed=True, method="probe_enclave", result="kms_denied", detail=f"denied: {shown['detail']}")
        if shown["result"] == "decrypt_proven":
            return dict(row, passed=False, method="probe_enclave", result="kms_allowed",
                        detail="an enclave outside the allow-list decrypted the canary")
    return None  # no probe enclave (or one without a canary endpoint): the policy is evaluated


def run_probe(provider, probe: str, key_id: str, version, enclave_url=None, fmt="alfred", timeout=5.0,
              ciphertext=None, context=None):
    """Return ``{name, passed, detail, ...}``; raise TeeKmsError only for unusable inputs."""
    purpose = decrypt_purpose(key_id)
    if probe == "decrypt":
        if not ciphertext or not enclave_url:
            raise InputError("run", "the decrypt probe", "ciphertext and enclave_url are required")
        if getattr(provider, "enclave_login", False):
            raise InputError("run", "the decrypt probe", f"with the {provider.name} provider only the enclave can log in and "
                             "decrypt; use the canary or allowed_decrypt probe, which the enclave proves")
        plaintext = provider.decrypt(key_id, ciphertext, context or {}, evidence_from(enclave_url, fmt, timeout, purpose))
        if not isinstance(plaintext, bytes):
            raise InputError("run", "the decrypt probe", "KMS answered CiphertextForRecipient, which only the enclave can open: "
                             "with nitro enclaves on AWS use the canary or allowed_decrypt probe")
        return {"name": probe, "passed": True, "detail": "decrypted through the attested path",
                "plaintext_sha256": hashlib.sha256(plaintext).hexdigest()}

    context = canary_context(key_id, version)
    canary = os.urandom(32)
    ciphertext = provider.encrypt(key_id, canary, context, version=version)
    row = {"name": probe, "version": version, "ciphertext": ciphertext, "context": context,
           "canary_sha256": hashlib.sha256(canary).hexdigest()}
    if _recipient_flow(provider, fmt) and (probe != "disallowed_denied" or enclave_url):
        return _recipient_probe(provider, probe, key_id, row, enclave_url, fmt, timeout, canary)
    if getattr(provider, "enclave_login", False):
        shown = _enclave_login_probe(provider, probe, key_id, row, enclave_url, fmt, timeout, canary)
        if shown is not None:
            return shown
        enclave_url = None
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


KMS_ONLY_ALLOWANCE = "allow_kms_accepted_only"


def judge_kms_accepted_only(row: dict, env=None, allowed: bool = False) -> dict:
    """Whether a ``kms_accepted_only`` result (KMS answered for the enclave's document, but no decrypt by
    the enclave is proven: it has no canary endpoint) passes: in production only when the operator allows
    it by name (``accepted_by`` records it); elsewhere it passes with a warning. Other results are unchanged."""
    if row.get("result") != "kms_accepted_only":
        return row
    if env == "production" and not allowed:
        return dict(row, passed=False, detail=f"{row['detail']}; a production run needs that proof (set {KMS_ONLY_ALLOWANCE}=true "
                                              "to accept KMS's answer alone; the run records it)")
    by = KMS_ONLY_ALLOWANCE if allowed else f"env {env}" if env else "no env given"
    warning = (f"The {row['name']} probe passed on KMS's answer alone (kms_accepted_only): the enclave has no canary endpoint, "
               f"so no decrypt by the enclave is proven (accepted by {by}" +
               ("; a production run refuses it unless " + KMS_ONLY_ALLOWANCE + "=true)" if env != "production" else ", recorded)"))
    return dict(row, accepted_by=by, warnings=list(row.get("warnings") or []) + [warning])
