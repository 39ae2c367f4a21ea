#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: health_check
short_description: Check an API or enclave health endpoint with bounded retries
version_added: 0.1.0
description:
  - Sends C(GET) to O(url) until it answers O(status) (and, for enclaves, C({"status":"ok"})),
    at most O(retries) + 1 times with O(delay) seconds between attempts.
  - Read-only; runs for real in check mode, because a rehearsal must know whether the
    services are healthy.
author:
  - Alfred security engineering (@alfred-security)
extends_documentation_fragment:
  - alfred.tee_kms.attributes.info
options:
  name:
    description: What is checked, recorded in the evidence (for example V(api) or V(enclave)).
    type: str
    required: true
  url:
    description: The URL to check. Credentials in the URL are never returned.
    type: str
    required: true
  status:
    description: The HTTP status that means healthy.
    type: int
    default: 200
  expect_status_ok:
    description: Also require a JSON body with C(status) equal to C(ok) (the enclave C(/healthz) contract).
    type: bool
    default: false
  retries:
    description: Extra attempts after a failed one.
    type: int
    default: 3
  delay:
    description: Seconds between attempts.
    type: float
    default: 2
  timeout:
    description: Seconds per attempt.
    type: float
    default: 5
  validate_certs:
    description: Verify TLS certificates.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: API is healthy before the rotation
  alfred.tee_kms.health_check:
    name: api
    url: "{{ api_healthcheck_url }}"
"""

RETURN = r"""
healthy:
  description: Whether the endpoint answered as expected.
  type: bool
  returned: always
attempts:
  description: How many requests were sent.
  type: int
  returned: always
http_status:
  description: The last HTTP status, or null when no answer came.
  type: int
  returned: always
detail:
  description: Why the last attempt failed, or a confirmation.
  type: str
  returned: always
"""

import time
from urllib.parse import urlsplit, urlunsplit

from ansible_collections.alfred.tee_kms.plugins.module_utils._attestation.common import AttestationError, loads_json
from ansible_collections.alfred.tee_kms.plugins.module_utils._common import deps
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import TeeKmsError
from ansible_collections.alfred.tee_kms.plugins.module_utils._common.module_base import TeeKmsModule
from ansible_collections.alfred.tee_kms.plugins.module_utils._evidence import audit


class Unhealthy(TeeKmsError):
    code = "unhealthy"


def safe_url(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


# Larger than any health answer: a body beyond it is not read (a hostile endpoint could send gigabytes).
MAX_BODY_BYTES = 64 * 1024


def attempt(session, p):
    """(HTTP status or None, detail); one request, bounded by ``timeout`` for the answer and MAX_BODY_BYTES."""
    import requests

    deadline = time.monotonic() + p["timeout"]
    try:
        with session.get(p["url"], timeout=p["timeout"], verify=p["validate_certs"], allow_redirects=False,
                         stream=True) as response:
            if response.status_code != p["status"]:
                return response.status_code, f"answered HTTP {response.status_code}, expected {p['status']}"
            body = bytearray()
            if p["expect_status_ok"]:
                for chunk in response.iter_content(16 * 1024):
                    body += chunk
                    if len(body) > MAX_BODY_BYTES:
                        return response.status_code, f"answered more than {MAX_BODY_BYTES} bytes"
                    if time.monotonic() > deadline:
                        return response.status_code, f"did not finish its answer within {p['timeout']}s"
    except requests.Timeout:
        return None, f"no answer within {p['timeout']}s"
    except requests.RequestException as exc:
        return None, f"could not connect ({exc.__class__.__name__})"
    if p["expect_status_ok"]:
        try:
            ok = loads_json(bytes(body), "the health answer").get("status") == "ok"  # nesting capped: no RecursionError
        except (AttestationError, AttributeError):
            ok = False
        if not ok:
            return response.status_code, 'did not report {"status": "ok"}'
    return response.status_code, "healthy"


def handle(mod):
    import requests

    p = mod.params
    shown = safe_url(p["url"])
    with requests.Session() as session:
        for number in range(1, p["retries"] + 2):
            status, detail = attempt(session, p)
            if detail == "healthy" or number > p["retries"]:
                break
            time.sleep(p["delay"])
    healthy = detail == "healthy"
    result = {"changed": False, "healthy": healthy, "attempts": number, "http_status": status, "detail": f"{shown} {detail}",
              "audit": audit.health(p["name"], shown, status, healthy)}
    if not healthy:
        mod.fail(Unhealthy("confirm the health of", f"{p['name']} endpoint {shown}", f"{detail} after {number} attempt(s)"),
                 **{k: v for k, v in result.items() if k != "changed"})
    return result


def main():
    TeeKmsModule(dict(
        name=dict(type="str", required=True),
        url=dict(type="str", required=True),
        status=dict(type="int", default=200),
        expect_status_ok=dict(type="bool", default=False),
        retries=dict(type="int", default=3),
        delay=dict(type="float", default=2),
        timeout=dict(type="float", default=5),
        validate_certs=dict(type="bool", default=True),
    ), requirements=(deps.REQUESTS,)).run(handle)


if __name__ == "__main__":
    main()
