# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller side of the Nitro Recipient flow against the strict KMS and Nitro-format
enclaves: probes pass on KMS's answers, the enclave proves the decrypt, and every bad answer
stops with a clear error that changes nothing."""

from __future__ import annotations

import sys

import pytest

from aws_support import M1, M2, REPO, aws_env, new_alias

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import ProviderError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.aws import RecipientCiphertext
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.rules import decrypt_purpose
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.probes import canary_context, canary_proof, evidence_from, run_probe, token_context

sys.path.insert(0, str(REPO / "tools" / "enclave_sim"))
from fleet import SimulatorFleet  # noqa: E402


@pytest.fixture(scope="module")
def fleet(strict_kms, tmp_path_factory):
    enclaves = [{"name": "ok", "measurement": M1}, {"name": "other", "measurement": M2},
                {"name": "off", "measurement": M1, "canary": False}, {"name": "liar", "measurement": M1, "mode": "wrong-nonce"},
                {"name": "slow", "measurement": M1}]
    with SimulatorFleet(tmp_path_factory.mktemp("sim"), enclaves=enclaves, kms_endpoint=strict_kms.url, env=aws_env()) as running:
        strict_kms.set_root(running.trust["nitro_root_certificate"])
        yield running


@pytest.fixture
def through_strict(provider_for, strict_kms, fleet):
    return provider_for(strict_kms.url)


@pytest.fixture
def nitro_key(provider, fleet):
    alias = new_alias()
    provider.create_key(alias, [M1], attestation_trust={"root_certificate": fleet.trust["nitro_root_certificate"], "nitro_pcrs": [0]})
    return alias


def probe(provider, name, alias, url=None, version=1):
    return run_probe(provider, name, alias, version, url, "nitro", 20.0)


def test_probes_pass_on_kms_answers_and_the_enclaves_proof(through_strict, nitro_key, fleet):
    canary = probe(through_strict, "canary", nitro_key, fleet.urls["ok"])
    assert canary["passed"] is True and canary["result"] == "decrypt_proven", canary
    allowed = probe(through_strict, "allowed_decrypt", nitro_key, fleet.urls["ok"])
    assert allowed["passed"] is True and allowed["result"] == "decrypt_proven"
    denied = probe(through_strict, "disallowed_denied", nitro_key, fleet.urls["other"])
    assert denied["passed"] is True and denied["result"] == "kms_denied" and "AccessDeniedException" in denied["detail"]
    unattested = run_probe(through_strict, "unattested_denied", nitro_key, 1, None, "nitro")
    assert unattested["passed"] is True and "AccessDeniedException" in unattested["detail"]
    # An enclave outside the list is refused by KMS, not by a local pre-check.
    refused = probe(through_strict, "canary", nitro_key, fleet.urls["other"])
    assert refused["passed"] is False and refused["result"] == "kms_denied"


def test_an_enclave_without_the_canary_endpoint_is_only_kms_accepted(through_strict, nitro_key, fleet):
    row = probe(through_strict, "canary", nitro_key, fleet.urls["off"])
    assert row["passed"] is True and row["result"] == "kms_accepted_only"
    assert "no decrypt" in row["detail"] and "decrypted" not in row["detail"]


def test_bad_answers_stop_with_a_clear_error_and_change_nothing(through_strict, provider, nitro_key, fleet, strict_kms):
    before = provider.describe_key(nitro_key)
    with pytest.raises(ProviderError, match="Could not check the canary proof from the canary endpoint of enclave .*liar.*"
                                            "not SHA-256\\(nonce \\|\\| canary\\)"):
        probe(through_strict, "canary", nitro_key, fleet.urls["liar"])
    ciphertext = through_strict.encrypt(nitro_key, b"c" * 32, canary_context(nitro_key, 1))
    blob = through_strict.parse_ciphertext(ciphertext)[1]
    fleet.configure("slow", mode="slow", slow_seconds=3)
    with pytest.raises(ProviderError, match="canary endpoint of enclave .*slow.*did not answer within 1s"):
        canary_proof(fleet.urls["slow"], blob, canary_context(nitro_key, 1), b"c" * 32, 1.0)
    for tamper, cause in (("no_envelope", "without CiphertextForRecipient"), ("garbled", "not the CMS envelope KMS sends")):
        strict_kms.tamper = tamper
        try:
            with pytest.raises(ProviderError, match=f"Could not decrypt a ciphertext under version 1 of key .*{cause}"):
                probe(through_strict, "canary", nitro_key, fleet.urls["ok"])
        finally:
            strict_kms.tamper = None
    assert provider.describe_key(nitro_key) == before


def test_provider_decrypt_sends_nitro_as_recipient_and_refuses_a_lenient_kms(through_strict, provider, nitro_key, fleet):
    ciphertext = through_strict.encrypt(nitro_key, b"token", token_context(nitro_key, 1))
    evidence = evidence_from(fleet.urls["ok"], "nitro", 10, decrypt_purpose(nitro_key))
    answer = through_strict.decrypt(nitro_key, ciphertext, token_context(nitro_key, 1), evidence)
    assert isinstance(answer, RecipientCiphertext) and answer != b"token"
    # moto alone ignores Recipient and returns Plaintext: a KMS that does that enforces nothing.
    with pytest.raises(ProviderError, match="answered a Recipient request with Plaintext"):
        provider.decrypt(nitro_key, ciphertext, token_context(nitro_key, 1), evidence_from(fleet.urls["ok"], "nitro", 10, decrypt_purpose(nitro_key)))
