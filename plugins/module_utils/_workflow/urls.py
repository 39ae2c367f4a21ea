# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The URLs a rotation calls: the health checks of the runbook's inputs, and the https rule for
enclave URLs (plain http refused in production unless the operator allows it by name).

Private module_utils: the API may change without notice between releases.

An enclave URL carries the attestation challenge, the canary ciphertext and its proof, the
enclave health answer and any credentials in the URL (Basic authentication). Over plain http
anyone on the path reads or answers them, so a production run refuses such a URL before any
change unless ``allow_http_enclaves=true`` (recorded in the evidence); a staging run warns.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.client import safe_source
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import InputError

ALLOWANCE = "allow_http_enclaves"
SHOWN = 5  # URLs named in a warning; the evidence lists every one


def plain_http(urls) -> list:
    """The URLs among ``urls`` whose scheme is http, as recorded (no userinfo, query or fragment)."""
    found = []
    for url in urls or []:
        text = str(url or "").strip()
        if text and urlsplit(text).scheme.lower() == "http" and safe_source(text) not in found:
            found.append(safe_source(text))
    return found


def _listed(urls: list) -> str:
    more = f" and {len(urls) - SHOWN} more" if len(urls) > SHOWN else ""
    return ", ".join(urls[:SHOWN]) + more


def check_enclave_urls(env: str, urls, allowed: bool, action: str = "attest", obj: str = "enclave") -> tuple:
    """``(http_urls, warnings)`` for enclave URLs of a run; raise InputError for a production run that has
    a plain-http URL and no allowance. ``action`` and ``obj`` say what the refused URL is for."""
    http = plain_http(urls)
    if not http:
        return [], []
    if env == "production" and not allowed:
        others = f" ({len(http) - 1} other enclave URL(s) use http too)" if len(http) > 1 else ""
        raise InputError(action, f"{obj} {http[0]}", f"production enclave URLs must use https{others} "
                         f"(set {ALLOWANCE}=true to allow it; the run records it)")
    if env == "production":
        return http, [f"Enclave URL(s) {_listed(http)} use plain http, allowed in production by {ALLOWANCE}=true "
                      "(recorded in the evidence): attestation, canary and health answers and any credentials in the "
                      "URLs travel unencrypted"]
    return http, [f"Enclave URL(s) {_listed(http)} use plain http: attestation, canary and health answers and any "
                  f"credentials in the URLs travel unencrypted (allowed in {env or 'this run'}; a production run refuses "
                  f"them unless {ALLOWANCE}=true)"]


def health_checks(api_url, enclave_url) -> list:
    """The health checks of the runbook's two URLs (``ALFRED_ROTATION_API_HEALTHCHECK_URL`` must answer
    200; ``ALFRED_ROTATION_ENCLAVE_HEALTHCHECK_URL`` also ``{"status": "ok"}``); an empty URL is no check."""
    return ([{"name": "api", "url": api_url}] if api_url else []) + \
        ([{"name": "enclave", "url": enclave_url, "expect_status_ok": True}] if enclave_url else [])
