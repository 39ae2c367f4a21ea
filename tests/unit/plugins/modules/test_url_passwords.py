# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A URL argument carrying credentials (user:password@host, sent as Basic authentication): the
password is in no part of the module's result, its echoed arguments (``invocation``, what -vvv
and AWX job events show) included; the rest of the URL stays readable there."""

from __future__ import annotations

import socket

from ansible_collections.alfred.tee_kms.plugins.modules import attestation_verify, health_check

SECRET = "s3cr%40t-Pw9"  # percent-encoded in the URL: "s3cr@t-Pw9" once decoded


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _assert_hidden(run) -> None:
    for form in (SECRET, "s3cr@t-Pw9"):
        assert form not in run.output
    # The echoed arguments, masked (ansible-core 2.21 no longer returns them from an in-process run).
    if "invocation" in run.result:
        assert "svc:********@127.0.0.1" in run.output


def test_health_check_url_password(run_module):
    url = f"http://svc:{SECRET}@127.0.0.1:{_closed_port()}/healthz"
    run = run_module(health_check, store_path=None, name="api", url=url, retries=0, delay=0)
    assert run.failed and run.result["healthy"] is False, run.result
    _assert_hidden(run)


def test_attestation_endpoint_password(run_module):
    url = f"http://svc:{SECRET}@127.0.0.1:{_closed_port()}/enclaves/e1"
    run = run_module(attestation_verify, store_path=None, endpoints=[url, "http://127.0.0.1:9/e2"], format="alfred",
                     trust={"public_keys": ["N/wp/XL4Wu84ZTqXSJ1SBZcLfKWrUozrV08RVcybmhQ="]}, fail_on_invalid=False, timeout=2)
    assert not run.failed, run.result
    assert [row["verified"] for row in run.result["results"]] == [False, False]
    assert run.result["results"][0]["source"] == url.replace(f"svc:{SECRET}@", "")
    _assert_hidden(run)
