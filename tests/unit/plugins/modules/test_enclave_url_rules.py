# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 22 items 13 and 7a at the module level: plain-http enclave URLs (enclaves, probe enclaves,
the enclave health check) are refused by rotation_inputs in production unless allowed by name,
warned about in staging; kms_probe refuses an http enclave URL in production before it encrypts
anything; a kms_accepted_only probe result passes in production only when allowed by name."""

from __future__ import annotations

import socket

import pytest
from ansible.module_utils.common import warnings as module_warnings
from module_testlib import M1, warning_texts

from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.local import LocalKmsProvider
from ansible_collections.alfred.tee_kms.plugins.module_utils._workflow.probes import judge_kms_accepted_only
from ansible_collections.alfred.tee_kms.plugins.modules import kms_probe, rotation_inputs

KEY = "tokens/refresh"
HTTPS = ["https://enclave-1.prod.example:8443", "https://enclave-2.prod.example:8443"]
ALLOW = "(set allow_http_enclaves=true to allow it; the run records it)"


@pytest.fixture(autouse=True)
def _own_warnings(monkeypatch):
    """Module runs in one process share ansible-core's warning list: each test reads only its own."""
    for name in ("_global_warnings", "_global_deprecations"):
        monkeypatch.setattr(module_warnings, name, type(getattr(module_warnings, name))())


def inputs(run_module, env="production", **extra):
    args = dict(store_path=None, env=env, action="all", confirm_production=env == "production", key_id=KEY, current_version=1,
                next_version=2, allowed_measurements=[M1], enclave_urls=HTTPS)
    args.update(extra)
    return run_module(rotation_inputs, **args)


def test_production_refuses_http_enclave_urls_and_names_them_without_credentials(run_module):
    probe = "http://svc:Pw-7c9b1e@probe-1.prod.example/enclaves/probe-1?token=x"
    refused = inputs(run_module, enclave_urls=HTTPS + [probe])
    assert refused.failed
    assert refused.result["msg"] == ("Could not attest enclave http://probe-1.prod.example/enclaves/probe-1: production enclave "
                                     f"URLs must use https {ALLOW}")
    assert "Pw-7c9b1e" not in refused.output and "token=x" not in refused.result["msg"]

    health = inputs(run_module, health_check_urls={"api": "http://api.prod.example/healthz", "enclave": "HTTP://lb.prod.example/healthz"})
    assert health.failed
    assert health.result["msg"] == ("Could not check the health of the enclaves at http://lb.prod.example/healthz: production "
                                    f"enclave URLs must use https {ALLOW}")


def test_production_with_https_only_passes_and_the_api_health_url_is_not_an_enclave(run_module):
    run = inputs(run_module, health_check_urls={"api": "http://api.prod.example/healthz", "enclave": "https://lb.prod.example/healthz"})
    assert not run.failed, run.result
    plan = run.result["rotation"]
    assert plan["allow_http_enclaves"] is False and plan["http_enclave_urls"] == []
    assert plan["health_checks"] == [{"name": "api", "url": "http://api.prod.example/healthz"},
                                     {"name": "enclave", "url": "https://lb.prod.example/healthz", "expect_status_ok": True}]
    assert warning_texts(run.result) == [] and "warnings" not in run.result["audit"]


@pytest.mark.parametrize("env, allowed, expected", [
    ("production", True, "allowed in production by allow_http_enclaves=true (recorded in the evidence)"),
    ("staging", False, "(allowed in staging; a production run refuses them unless allow_http_enclaves=true)"),
])
def test_allowed_http_enclaves_are_recorded_and_warned_about(run_module, env, allowed, expected):
    http = ["http://enclave-1.example/enclaves/e1", "http://enclave-2.example/enclaves/e2"]
    run = inputs(run_module, env=env, enclave_urls=http, allow_http_enclaves=allowed)
    assert not run.failed, run.result
    context = run.result["audit"]
    assert context["kind"] == "run_context" and context["allow_http_enclaves"] is allowed
    assert context["http_enclave_urls"] == http == run.result["rotation"]["http_enclave_urls"]
    [warning] = context["warnings"]
    assert warning.startswith(f"Enclave URL(s) {', '.join(http)} use plain http") and expected in warning
    assert warning_texts(run.result) == [warning]


def test_hook_allow_list_is_the_normalised_target_else_the_input_as_given(run_module):
    run = inputs(run_module, allowed_measurements=f"api-v42={M1.upper()}")
    assert run.result["rotation"]["hook_allowed_measurements"] == M1
    rollback = inputs(run_module, action="rollback", current_version=None, next_version=None, allowed_measurements="as,given")
    assert rollback.result["rotation"]["hook_allowed_measurements"] == "as,given"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_kms_probe_refuses_an_http_enclave_in_production_before_encrypting(run_module, store_path):
    LocalKmsProvider(store_path).create_key(KEY, [M1], "sha384", {"public_keys": ["N/wp/XL4Wu84ZTqXSJ1SBZcLfKWrUozrV08RVcybmhQ="]})
    url = f"http://127.0.0.1:{_closed_port()}/enclaves/e1"
    refused = run_module(kms_probe, key_id=KEY, probe="canary", version=1, enclave_url=url, env="production")
    assert refused.failed and "probe" not in refused.result
    assert refused.result["msg"] == f"Could not run the canary probe against enclave {url}: production enclave URLs must use https {ALLOW}"
    # Allowed by name, the probe gets as far as the enclave (which is not there).
    allowed = run_module(kms_probe, key_id=KEY, probe="canary", version=1, enclave_url=url, env="production", allow_http_enclaves=True,
                         timeout=2)
    assert allowed.failed and "Could not fetch attestation evidence from enclave" in allowed.result["msg"]


KMS_ONLY = {"name": "canary", "passed": True, "result": "kms_accepted_only",
            "detail": "KMS answered CiphertextForRecipient for the enclave's attestation document; the enclave has no canary "
                      "endpoint, so no decrypt by the enclave is proven"}


def test_kms_accepted_only_passes_in_production_only_when_allowed_by_name():
    refused = judge_kms_accepted_only(KMS_ONLY, "production", False)
    assert refused["passed"] is False and "accepted_by" not in refused
    assert refused["detail"].endswith("a production run needs that proof (set allow_kms_accepted_only=true to accept KMS's answer "
                                      "alone; the run records it)")
    allowed = judge_kms_accepted_only(KMS_ONLY, "production", True)
    assert allowed["passed"] is True and allowed["accepted_by"] == "allow_kms_accepted_only"
    assert allowed["warnings"] == ["The canary probe passed on KMS's answer alone (kms_accepted_only): the enclave has no canary "
                                   "endpoint, so no decrypt by the enclave is proven (accepted by allow_kms_accepted_only, recorded)"]
    staging = judge_kms_accepted_only(KMS_ONLY, "staging", False)
    assert staging["passed"] is True and staging["accepted_by"] == "env staging"
    assert staging["warnings"][0].endswith("(accepted by env staging; a production run refuses it unless allow_kms_accepted_only=true)")
    proven = dict(KMS_ONLY, result="decrypt_proven")
    assert judge_kms_accepted_only(proven, "production", False) == proven
