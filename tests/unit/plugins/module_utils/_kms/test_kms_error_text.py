# -*- coding: utf-8 -*-
# Copyright (c) 2026, Alfred security engineering
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 22 item 8: the error text a hostile KMS endpoint answers (a real loopback HTTP server that
speaks the KMS JSON protocol's error form to botocore) is quoted with its control characters escaped."""

from __future__ import annotations

import json

import pytest

from ansible_collections.alfred.tee_kms.plugins.module_utils._common.errors import AccessDeniedError
from ansible_collections.alfred.tee_kms.plugins.module_utils._kms.aws_client import AwsSession

from hostile_answers import HostileServer

HOSTILE = "\x1b]8;;https://evil.example\x07click\x1b]8;;\x07\x9b2J\r\nKMS: all allowed"


def test_a_hostile_kms_error_message_is_escaped_where_it_is_quoted(monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    body = json.dumps({"__type": "AccessDeniedException", "message": HOSTILE}).encode()
    with HostileServer(body, "application/x-amz-json-1.1", status=400) as server:
        session = AwsSession({"region": "us-east-1", "endpoint_url": server.url, "access_key": "AKIDEXAMPLE",
                              "secret_key": "not-a-real-secret"})
        with pytest.raises(AccessDeniedError) as info:
            session.call("kms", "describe_key", "describe", "key 'tokens/refresh'", KeyId="alias/tokens/refresh")
    cause = info.value.cause
    assert "\\x1b]8;;https://evil.example\\x07click\\x1b]8;;\\x07\\x9b2J\\x0d\\x0aKMS: all allowed" in cause
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in str(info.value)), str(info.value)
